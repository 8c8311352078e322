"""SMTP over STARTTLS and implicit TLS with authentication, against aiosmtpd with a self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from notifier_testkit import StartNotifier, message_id, publish_triggers, results, retry_key, settings_for
from redis.asyncio import Redis

from pricealert.devstack.ports import free_port
from pricealert.devstack.smtp import MailboxHandler
from pricealert.notifier.settings import SmtpTls
from pricealert.testsupport.polling import eventually

USER, PASSWORD = "alerts", "s3cret"
# aiosmtpd warns on every connection of the implicit-TLS server (see `secure_server`), in its own thread.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers a failure with 535


@pytest.fixture(params=["starttls", "tls"])
def secure_server(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> Iterator[tuple[SmtpTls, int, MailboxHandler]]:
    """An SMTP server that only takes mail over TLS (STARTTLS or implicit) and after a login."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    handler = MailboxHandler()
    port = free_port()
    tls = SmtpTls(request.param)
    # aiosmtpd does not count an implicit TLS connection as TLS for its AUTH check, so that one is off
    # there (every byte of that connection is encrypted anyway).
    extra: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        if tls is SmtpTls.STARTTLS
        else {"ssl_context": context, "auth_require_tls": False}
    )
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=_authenticate, auth_required=True, **extra
    )
    controller.start()
    yield tls, port, handler
    controller.stop()


async def test_mail_goes_out_over_tls_after_login_with_the_certificate_checked(
    redis: Redis,
    notifier: StartNotifier,
    secure_server: tuple[SmtpTls, int, MailboxHandler],
    certificate: tuple[Path, Path],
) -> None:
    tls, port, handler = secure_server
    notifier(
        settings_for(port, smtp_tls=tls, smtp_ca_file=str(certificate[0]), smtp_username=USER, smtp_password=PASSWORD)
    )
    await publish_triggers(redis, [1, 2])

    async def sent() -> bool:
        return len(await results(redis)) == 2

    await eventually(sent)
    assert {r.status for r in await results(redis)} == {"sent"}
    assert sorted(str(m.message["Message-ID"]) for m in handler.mails) == [message_id(1), message_id(2)]


async def test_certificate_checks_can_be_turned_off_for_tests(
    redis: Redis, notifier: StartNotifier, secure_server: tuple[SmtpTls, int, MailboxHandler]
) -> None:
    tls, port, handler = secure_server
    notifier(settings_for(port, smtp_tls=tls, smtp_validate_certs=False, smtp_username=USER, smtp_password=PASSWORD))
    await publish_triggers(redis, [1])

    async def sent() -> bool:
        return len(handler.mails) == 1

    await eventually(sent)


async def test_an_untrusted_certificate_or_a_wrong_password_keeps_mails_for_later(
    redis: Redis,
    notifier: StartNotifier,
    secure_server: tuple[SmtpTls, int, MailboxHandler],
    certificate: tuple[Path, Path],
) -> None:
    tls, port, handler = secure_server

    def last_error_says(text: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            errors = [await redis.hget(retry_key(n), "retry_last_error") or b"" for n in range(2)]
            return all(text.encode() in e for e in errors)

        return check

    untrusted = notifier(settings_for(port, smtp_tls=tls, smtp_username=USER, smtp_password=PASSWORD))
    await publish_triggers(redis, range(2))
    await eventually(last_error_says("certificate verify failed"))
    await untrusted.stop()
    wrong_password = notifier(
        settings_for(
            port, consumer_name="n2", smtp_tls=tls, smtp_validate_certs=False, smtp_username=USER, smtp_password="wrong"
        )
    )
    await eventually(last_error_says("535"))
    await wrong_password.stop()
    assert handler.mails == [] and await results(redis) == []  # not sent, and not given up either
    notifier(
        settings_for(
            port,
            consumer_name="n3",
            smtp_tls=tls,
            smtp_ca_file=str(certificate[0]),
            smtp_username=USER,
            smtp_password=PASSWORD,
        )
    )

    async def all_sent() -> bool:
        return len(await results(redis)) == 2

    await eventually(all_sent)
    assert all(r.status == "sent" and r.attempts >= 3 for r in await results(redis))
    assert len(handler.mails) == 2
