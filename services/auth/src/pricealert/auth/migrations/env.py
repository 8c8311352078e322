"""Alembic environment of the auth service."""

from pricealert.auth.models import Base
from pricealert.common.migrations import run_migrations

run_migrations(Base.metadata)
