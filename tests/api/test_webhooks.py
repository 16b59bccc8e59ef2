"""The webhook's signature, checked by the Standard Webhooks reference package; its secret."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from streaming.api.webhooks import decode_secret, http_url_problem, signature
from tests.support.webhook_receiver import SECRET

BODY = '{"id":"3f1c","status":"completed","note":"caf\u00e9"}'.encode()


def test_the_reference_package_verifies_our_signature() -> None:
    now = int(datetime.now(UTC).timestamp())
    header = signature(decode_secret(SECRET), webhook_id="msg_1", timestamp=now, body=BODY)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": header}

    assert Webhook(SECRET).verify(BODY, headers) == {
        "id": "3f1c",
        "status": "completed",
        "note": "café",
    }
    assert header.startswith("v1,")


@pytest.mark.parametrize(
    ("field", "value"),
    [("webhook-id", "msg_2"), ("webhook-timestamp", "-1"), ("body", b"{}")],
)
def test_a_signature_does_not_verify_anything_else(field: str, value: object) -> None:
    now = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": signature(
            decode_secret(SECRET), webhook_id="msg_1", timestamp=now, body=BODY
        ),
    }
    body = BODY
    if field == "body":
        body = value  # type: ignore[assignment]
    elif field == "webhook-timestamp":
        headers[field] = str(now - 1)
    else:
        headers[field] = str(value)

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, headers)


def test_the_spec_example_signature() -> None:
    # The example of the spec's reference implementations' tests.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert (
        signature(key, webhook_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body)
        == expected
    )


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+ZwyFfrV1hI=", "does not start with 'whsec_'"),
        ("whsec_not base64!", "is not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "holds 5 bytes"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "holds 65 bytes"),
    ],
)
def test_a_malformed_secret_is_refused(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decode_secret(secret)


def test_a_secret_in_the_spec_form_decodes_to_its_bytes() -> None:
    assert len(decode_secret(SECRET)) == 32


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example/x", None),
        ("http://127.0.0.1:8080/x?y=1", None),
        ("ftp://hooks.example/x", "the scheme must be http or https"),
        ("hooks.example/x", "the scheme must be http or https"),
        ("https:///x", "it names no host"),
        ("http://[::1/x", "not a URL (Invalid IPv6 URL)"),
    ],
)
def test_only_http_urls_with_a_host_are_targets(url: str, problem: str | None) -> None:
    assert http_url_problem(url) == problem
