"""https webhooks connected to the checked address: the certificate is still checked against the URL's host name."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from webhook_testkit import Resolver, channel, firing, new_secret, settings

from pricealert.common.channels import ChannelSecret
from pricealert.notifier import webhookpayload
from pricealert.notifier.sender import SendFailed
from pricealert.notifier.webhook import WebhookSender
from pricealert.testsupport.webhooks import WebhookReceiver

SECRET = new_secret()
PAYLOAD = webhookpayload.firing_payload(firing(), None)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name hook.test only (not for 127.0.0.1), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hook.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hook.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("webhook-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
async def receiver(certificate: tuple[Path, Path]) -> AsyncIterator[WebhookReceiver]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(*certificate)
    async with WebhookReceiver(secrets=[SECRET], tls=tls) as r:
        yield r


async def test_https_to_the_pinned_address_checks_the_certificate_of_the_name(
    receiver: WebhookReceiver, certificate: tuple[Path, Path]
) -> None:
    resolver = Resolver({"hook.test": [["127.0.0.1"]]})
    sender = WebhookSender(settings(webhook_ca_file=str(certificate[0])), resolver)
    url = receiver.url(host="hook.test")
    assert url.startswith("https://hook.test:")
    delivered = await sender.send(channel(url, ChannelSecret(secret=SECRET)), "t1", PAYLOAD)
    await sender.close()
    assert delivered.http_status == 200
    assert [r.verified for r in receiver.requests] == [True]


async def test_a_certificate_for_another_name_is_refused(
    receiver: WebhookReceiver, certificate: tuple[Path, Path]
) -> None:
    resolver = Resolver({"other.test": [["127.0.0.1"]]})
    sender = WebhookSender(settings(webhook_ca_file=str(certificate[0])), resolver)
    with pytest.raises(SendFailed) as caught:
        await sender.send(channel(receiver.url(host="other.test"), ChannelSecret(secret=SECRET)), "t1", PAYLOAD)
    await sender.close()
    assert not caught.value.permanent and "certificate" in caught.value.reason.lower()
    assert receiver.requests == []


async def test_an_untrusted_certificate_is_refused(receiver: WebhookReceiver) -> None:
    sender = WebhookSender(settings(), Resolver({"hook.test": [["127.0.0.1"]]}))
    with pytest.raises(SendFailed) as caught:
        await sender.send(channel(receiver.url(host="hook.test"), ChannelSecret(secret=SECRET)), "t1", PAYLOAD)
    await sender.close()
    assert not caught.value.permanent and "certificate" in caught.value.reason.lower()
    assert receiver.requests == []
