"""Alembic environment of the alerts service."""

from pricealert.alerts.models import Base
from pricealert.common.migrations import run_migrations

run_migrations(Base.metadata)
