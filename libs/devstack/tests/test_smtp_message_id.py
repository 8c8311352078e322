"""The local SMTP server reads a mail's Message-ID as the email parser does, without parsing the mail."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from pricealert.devstack.smtp import message_id

MAILS = [
    b"From: a@example.com\r\nMessage-ID: <trigger.1@pricealert>\r\nSubject: x\r\n\r\nbody\r\n",
    b"From: a@example.com\nmessage-id:   <lower.case@host>  \nSubject: x\n\nbody\n",
    b"From: a@example.com\r\nMessage-ID:\r\n <folded.onto.the.next.line@host>\r\n\r\nbody\r\n",
    b"From: a@example.com\r\nSubject: none\r\n\r\nMessage-ID: <in.the.body@host>\r\n",
]


@pytest.mark.parametrize("raw", MAILS)
def test_message_id_matches_the_email_parser(raw: bytes) -> None:
    expected = str(message_from_bytes(raw, policy=policy.default).get("Message-ID", "")).strip()
    assert message_id(raw) == expected
