"""The retry schedule and the settings that shape it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pricealert.notifier.retry import backoff_s
from pricealert.notifier.settings import NotifierSettings


def test_backoff_doubles_from_the_base_up_to_the_cap_with_jitter() -> None:
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (50, 60.0), (10_000, 60.0)]:
        delays = [backoff_s(attempt, 1.0, 60.0) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len(set(delays)) > 1  # jittered, so replicas that failed together do not retry together


def test_default_schedule_keeps_trying_for_at_least_ten_minutes() -> None:
    settings = NotifierSettings()
    assert settings.retry_for_s >= 600
    assert (settings.backoff_base_s, settings.backoff_max_s) == (1.0, 60.0)
    # Retries go through the notifier's own queue; the stream's delivery cap is only a safety net.
    assert settings.max_deliveries >= 50


def test_backoff_cap_below_the_base_is_refused() -> None:
    with pytest.raises(ValidationError):
        NotifierSettings(backoff_base_s=10, backoff_max_s=1)  # type: ignore[call-arg]


def test_production_refuses_unchecked_certificates() -> None:
    with pytest.raises(ValidationError):
        NotifierSettings(
            env="production",
            redis_url="redis://redis:6379/0",
            smtp_tls="starttls",  # type: ignore[call-arg]
            smtp_validate_certs=False,
        )
    NotifierSettings(env="production", redis_url="redis://redis:6379/0", smtp_tls="starttls")  # type: ignore[call-arg]


def test_production_refuses_smtp_credentials_over_a_plain_connection() -> None:
    production = {"env": "production", "redis_url": "redis://redis:6379/0"}
    for credentials in (
        {"smtp_username": "mailer", "smtp_password": "secret"},
        {"smtp_password": "secret"},
        {"smtp_username": "mailer"},
    ):
        with pytest.raises(ValidationError, match="SMTP_TLS=none"):
            NotifierSettings(**production, smtp_tls="none", **credentials)  # type: ignore[arg-type]
        NotifierSettings(**production, smtp_tls="starttls", **credentials)  # type: ignore[arg-type]
        NotifierSettings(smtp_tls="none", **credentials)  # type: ignore[arg-type]  # development: a local relay
    NotifierSettings(**production, smtp_tls="none")  # type: ignore[arg-type]  # no credentials: nothing to leak


def test_smtp_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SMTP_TLS": "starttls",
        "SMTP_USERNAME": "u",
        "SMTP_PASSWORD": "p",
        "SMTP_PORT": "587",
        "SMTP_VALIDATE_CERTS": "false",
        "NOTIFIER_RETRY_FOR_S": "1200",
    }.items():
        monkeypatch.setenv(name, value)
    settings = NotifierSettings()
    assert settings.smtp_tls == "starttls" and settings.smtp_username == "u" and settings.smtp_port == 587
    assert settings.smtp_password is not None and settings.smtp_password.get_secret_value() == "p"
    assert not settings.smtp_validate_certs and settings.retry_for_s == 1200
