"""The README's configuration table against the settings classes: every variable listed, every default right."""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

import pytest
from compose_testkit import SETTINGS
from deploy_testkit import REPO
from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from pricealert.cli.redisacl import RedisAclSettings
from pricealert.common.settings import ServiceSettings

CLASSES: list[type[BaseSettings]] = [ServiceSettings, *SETTINGS.values(), RedisAclSettings]
# Defaults the table states in words because the code computes them (the host name).
# DATABASE_URL is the fallback both AUTH_DATABASE_URL and ALERTS_DATABASE_URL read when they are unset.
STATED_IN_WORDS = {"CONSUMER_NAME", "DATABASE_URL"}


def _table_rows() -> dict[str, str]:
    """Each variable of the configuration table and the default given for it (one backticked value, or —)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        variables = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        given = re.sub(r"\(.*?\)", "", cells[1])
        defaults = [m.group(1) if m.group(1) is not None else "—" for m in re.finditer(r"`([^`]*)`|—", given)]
        if not defaults:
            defaults = [cells[1]]
        if len(defaults) == 1:
            defaults *= len(variables)
        assert len(defaults) == len(variables), f"one default per variable, or one for all: {line}"
        rows.update(zip(variables, defaults, strict=True))
    return rows


ROWS = _table_rows()


def _fields() -> dict[str, FieldInfo]:
    found: dict[str, FieldInfo] = {}
    for settings in CLASSES:
        for name, field in settings.model_fields.items():
            alias = field.validation_alias
            names = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else [str(alias or name.upper())]
            for variable in names:
                found.setdefault(variable, field)
    return found


FIELDS = _fields()


def test_settings_name_their_variables_one_way() -> None:
    """Every environment variable is named by `validation_alias` (which AliasChoices needs), never by `alias`."""
    aliased = [f"{s.__name__}.{n}" for s in CLASSES for n, f in s.model_fields.items() if f.alias is not None]
    assert not aliased, f"use validation_alias= for: {aliased}"


def _matches(documented: str, default: Any) -> bool:
    if default is None or default is PydanticUndefined or default == "":  # unset, or set to nothing: the same
        return documented == "—"
    if isinstance(default, bool):
        return documented == str(default).lower()
    if isinstance(default, Enum):
        return documented == str(default.value)
    if isinstance(default, int | float):
        try:
            return float(documented) == float(default)
        except ValueError:
            return False
    return documented == str(default)


def test_every_variable_the_code_reads_is_in_the_table() -> None:
    missing = sorted(set(FIELDS) - set(ROWS))
    assert not missing, f"missing from the README's configuration table: {missing}"


@pytest.mark.parametrize("variable", sorted(set(FIELDS) & set(ROWS) - STATED_IN_WORDS))
def test_the_documented_default_is_the_codes(variable: str) -> None:
    field = FIELDS[variable]
    default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    assert _matches(ROWS[variable], default), f"README says {variable}={ROWS[variable]!r}, the code {default!r}"
