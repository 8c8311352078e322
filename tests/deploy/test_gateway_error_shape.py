"""Every error either gateway answers (nginx and the development gateway), for any unknown path or method,
is the APIs' JSON error shape: never a plain-text or HTML `Not Found`; /docs and its assets pass both."""

from __future__ import annotations

import json

import pytest
from gateway_testkit import Stack

from pricealert.devstack.rawhttp import RawResponse, raw_request

FRONTS = ["nginx", "gateway"]
# (method, path, status): routes nobody serves, at the gateway and in each API behind it.
UNKNOWN = [
    ("GET", b"/nope", 404),
    ("GET", b"/nope/deeper", 404),
    ("POST", b"/nope", 404),
    ("DELETE", b"/metrics", 404),
    ("GET", b"/docs/", 404),
    ("GET", b"/docs/assets/index.html", 404),
    ("GET", b"/docs/assets/", 404),
    ("GET", b"/openapi.json/x", 404),
    ("GET", b"/auth/nope", 404),
    ("GET", b"/auth/", 404),
    ("GET", b"/alerts/x/y/z", 404),
    ("GET", b"/channels/x/y/z", 404),
    ("GET", b"/symbols/x/y", 404),
    ("GET", b"/events/nope", 404),
    ("DELETE", b"/docs", 405),
    ("POST", b"/openapi.json", 405),
    ("PUT", b"/auth/login", 405),
    ("DELETE", b"/alerts", 405),
    ("PATCH", b"/channels", 405),
    ("PUT", b"/events/ticket", 405),
]


def error_code(answer: RawResponse) -> str | None:
    """The `error.code` of a JSON error body, or None when the body is not the APIs' error shape."""
    if not (answer.header("content-type") or "").startswith("application/json"):
        return None
    try:
        return str(json.loads(answer.body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


@pytest.mark.parametrize("front", FRONTS)
async def test_unknown_paths_and_methods_answer_the_json_error_shape(stack: Stack, front: str) -> None:
    host, port = stack.front(front)
    answers = {(m, p): await raw_request(host, port, m, p) for m, p, _ in UNKNOWN}

    expected = {(m, p): (status, "not_found" if status == 404 else "method_not_allowed") for m, p, status in UNKNOWN}
    got = {key: (a.status, error_code(a)) for key, a in answers.items()}
    assert got == expected, "\n".join(f"{k}: {answers[k].status} {answers[k].text[:120]!r}" for k in got)


@pytest.mark.parametrize("front", FRONTS)
async def test_head_of_an_unknown_path_is_a_json_404_without_a_body(stack: Stack, front: str) -> None:
    host, port = stack.front(front)
    answer = await raw_request(host, port, "HEAD", b"/nope")

    assert answer.status == 404
    assert (answer.header("content-type") or "").startswith("application/json")
    assert answer.body == b""


async def test_a_method_nginx_refuses_itself_is_a_json_error(stack: Stack) -> None:
    host, port = stack.front("nginx")
    answers = [await raw_request(host, port, method, b"/alerts") for method in ("TRACE", "FOO")]

    assert [(a.status, error_code(a)) for a in answers] == [
        (405, "method_not_allowed"),
        (405, "method_not_allowed"),
    ], [a.text[:200] for a in answers]


async def test_requests_nginx_refuses_before_routing_are_json_errors(stack: Stack) -> None:
    host, port = stack.front("nginx")
    long_uri = await raw_request(host, port, "GET", b"/alerts/" + b"a" * 9000)
    huge_header = await raw_request(host, port, "GET", b"/alerts", headers=[("x-big", "b" * 9000)])

    assert (long_uri.status, error_code(long_uri)) == (414, "uri_too_long"), long_uri.text[:200]
    assert (huge_header.status, error_code(huge_header)) == (400, "bad_request"), huge_header.text[:200]


@pytest.mark.parametrize("front", FRONTS)
async def test_the_docs_and_their_assets_pass_the_gateway(stack: Stack, front: str) -> None:
    host, port = stack.front(front)
    page = await raw_request(host, port, "GET", b"/docs")
    script = await raw_request(host, port, "GET", b"/docs/assets/swagger-ui-bundle.js")
    initializer = await raw_request(host, port, "GET", b"/docs/assets/swagger-initializer.js")
    style = await raw_request(host, port, "GET", b"/docs/assets/swagger-ui.css")

    assert page.status == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "script-src 'self'" in (page.header("content-security-policy") or "")
    assert "https://" not in page.text and "http://" not in page.text
    assert [(a.status, (a.header("content-type") or "").split(";")[0]) for a in (script, initializer, style)] == [
        (200, "text/javascript"),
        (200, "text/javascript"),
        (200, "text/css"),
    ]
    assert b"SwaggerUIBundle" in script.body and b"/openapi.json" in initializer.body
