"""With ENV=production every service refuses unsafe settings at start-up: one clear line naming the setting,
no traceback, no secret; the same settings made safe are accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from pricealert.alerts.settings import AlertsSettings
from pricealert.auth.keys import generate_key
from pricealert.auth.rootkey import ensure_root_key, root_public_path
from pricealert.auth.settings import AuthSettings
from pricealert.ingest.settings import IngestSettings
from pricealert.notifier.settings import NotifierSettings

SECRET = "s3cret-never-shown"
BASE = {"ENV": "production", "REDIS_URL": f"redis://:{SECRET}@127.0.0.1:1/0"}
POSTGRES = f"postgresql://svc:{SECRET}@postgres:5432/db"
AUTH_BASE = {"AUTH_DATABASE_URL": POSTGRES, "ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": f"{SECRET}-admin"}

# (service module, settings class, unsafe environment, the setting the refusal must name, the same made safe)
CASES = {
    "auth on SQLite": (
        "auth",
        AuthSettings,
        {**AUTH_BASE, "AUTH_DATABASE_URL": "sqlite:///var/auth.db"},
        "AUTH_DATABASE_URL",
        {"AUTH_DATABASE_URL": POSTGRES},
    ),
    "auth on SQLite via DATABASE_URL": (
        "auth",
        AuthSettings,
        {"DATABASE_URL": "sqlite+aiosqlite:////srv/auth.db"},
        "DATABASE_URL",
        {"DATABASE_URL": POSTGRES},
    ),
    "auth believing anyone's X-Forwarded-For": (
        "auth",
        AuthSettings,
        {**AUTH_BASE, "AUTH_FORWARDED_ALLOW_IPS": "*"},
        "AUTH_FORWARDED_ALLOW_IPS",
        {"AUTH_FORWARDED_ALLOW_IPS": "10.0.0.2"},
    ),
    "alerts on a SQLite file": (
        "alerts",
        AlertsSettings,
        {"ALERTS_DATABASE_URL": "sqlite:////srv/alerts.db"},
        "ALERTS_DATABASE_URL",
        {"ALERTS_DATABASE_URL": POSTGRES},
    ),
    "SMTP password in clear": (
        "notifier",
        NotifierSettings,
        {"SMTP_TLS": "none", "SMTP_USERNAME": "mailer", "SMTP_PASSWORD": SECRET},
        "SMTP_PASSWORD",
        {"SMTP_TLS": "starttls"},
    ),
    "SMTP user in clear": (
        "notifier",
        NotifierSettings,
        {"SMTP_USERNAME": "mailer"},
        "SMTP_USERNAME",
        {"SMTP_TLS": "tls"},
    ),
    "exchange stream in clear": (
        "ingest",
        IngestSettings,
        {"BINANCE_WS_URL": "ws://exchange:9443"},
        "BINANCE_WS_URL",
        {"BINANCE_WS_URL": "wss://exchange:9443"},
    ),
    "exchange REST in clear": (
        "ingest",
        IngestSettings,
        {"BINANCE_REST_URL": "http://exchange"},
        "BINANCE_REST_URL",
        {"BINANCE_REST_URL": "https://exchange"},
    ),
}


def _names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads."""
    found = {name.upper() for name in settings.model_fields}
    for field in settings.model_fields.values():
        alias = field.validation_alias
        found.update(str(a) for a in getattr(alias, "choices", [alias]) if a)
    return found


SETTING_NAMES = set().union(*(_names(c) for c in (AuthSettings, AlertsSettings, NotifierSettings, IngestSettings)))


def _settings_environment(tmp_path: Path, values: dict[str, str]) -> dict[str, str]:
    """ENV=production, a Redis URL with a password, what `pricealert keys ensure` leaves (a signing key and the
    root key, whose public half alerts reads), and `values`."""
    keys = tmp_path / "keys"
    if not keys.exists():
        generate_key(keys)
        ensure_root_key(keys, allow_generate=True)
    return {**BASE, "AUTH_KEY_DIR": str(keys), "TOKEN_ROOT_PUBLIC_KEY_FILE": str(root_public_path(keys)), **values}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_service_refuses_to_start_and_names_the_setting(case: str, tmp_path: Path) -> None:
    service, _, unsafe, setting, _ = CASES[case]
    kept = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env = {**kept, **_settings_environment(tmp_path, unsafe)}

    # A service that starts despite the setting runs until the timeout: that is the failure.
    result = subprocess.run(
        [sys.executable, "-m", f"pricealert.{service}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert setting in result.stderr and "refusing to start" in result.stderr, output
    assert "Traceback" not in output and SECRET not in output


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_same_settings_made_safe_are_accepted(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, settings_class, unsafe, _, safe = CASES[case]
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in _settings_environment(tmp_path, {**unsafe, **safe}).items():
        monkeypatch.setenv(name, value)

    assert settings_class().env == "production"
