"""What the compose tests share: compose's services and the code each one runs (settings, modules, workers)."""

from __future__ import annotations

from deploy_testkit import (
    DUMMY_SECRETS,
    load_compose,
    service_environment,
)
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from pricealert.alerts import handlers as alerts_handlers
from pricealert.alerts.settings import AlertsSettings
from pricealert.auth.settings import AuthSettings
from pricealert.common import acl
from pricealert.devstack.gateway import GatewaySettings
from pricealert.evaluator import handlers as evaluator_handlers
from pricealert.evaluator.settings import EvaluatorSettings
from pricealert.ingest import handlers as ingest_handlers
from pricealert.ingest.settings import IngestSettings
from pricealert.notifier import handlers as notifier_handlers
from pricealert.notifier.settings import NotifierSettings

SETTINGS: dict[str, type[BaseSettings]] = {
    "auth": AuthSettings,
    "alerts": AlertsSettings,
    "alerts-worker": AlertsSettings,
    "ingest": IngestSettings,
    "evaluator": EvaluatorSettings,
    "notifier": NotifierSettings,
    "docs": GatewaySettings,
}


MODULES = {
    "auth": "pricealert.auth",
    "alerts": "pricealert.alerts",
    "alerts-worker": "pricealert.alerts",
    "ingest": "pricealert.ingest",
    "evaluator": "pricealert.evaluator",
    "notifier": "pricealert.notifier",
    "docs": "pricealert.devstack.gateway",
}


WORKERS = {
    "alerts-worker": alerts_handlers.SERVICE,
    "ingest": ingest_handlers.SERVICE,
    "evaluator": evaluator_handlers.SERVICE,
    "notifier": notifier_handlers.SERVICE,
}


# The arguments after the module (the alerts API and its worker share one module).
COMMANDS = {"alerts": ["serve"], "alerts-worker": ["worker"]}


APIS = {"auth": ("AUTH_HOST", "AUTH_PORT"), "alerts": ("ALERTS_HOST", "ALERTS_PORT"), "docs": ("HOST", "PORT")}


COMPOSE = load_compose()


SERVICES = COMPOSE["services"]


def env_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads (aliases, alias choices, or the field name)."""
    found: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            found.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            found.add(alias)
        else:
            found.add(name.upper())
    return found


def all_settings_variables() -> set[str]:
    """Every variable any service's settings class reads."""
    return set().union(*(env_names(s) for s in SETTINGS.values()))


def compose_environment(name: str) -> dict[str, str | None]:
    """The environment compose gives service `name`, with dummy secrets."""
    return service_environment(SERVICES[name], DUMMY_SECRETS)


def redis_url_of(role: acl.Role) -> str:
    """The REDIS_URL that logs in as `role`'s own Redis user."""
    return f"redis://{role.user}:{DUMMY_SECRETS[role.password_variable]}@redis:6379/0"
