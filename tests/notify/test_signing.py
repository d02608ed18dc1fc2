from __future__ import annotations

import random
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from mcobs.notify.signing import SigningKey, new_secret, verify, webhook_headers
from tests.notify.conftest import SECRET

BODY = b'{"id":"evt_1","type":"cluster.state_changed","data":{}}'


def test_the_standardwebhooks_library_verifies_our_signature() -> None:
    now = int(time.time())
    headers = webhook_headers(SigningKey.from_secret(SECRET), "evt_1", now, BODY)
    assert Webhook(SECRET).verify(BODY, headers) == {
        "id": "evt_1",
        "type": "cluster.state_changed",
        "data": {},
    }
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")


def test_a_changed_body_id_or_secret_fails_verification() -> None:
    now = int(time.time())
    headers = webhook_headers(SigningKey.from_secret(SECRET), "evt_1", now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY.replace(b"evt_1", b"evt_2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, {**headers, "webhook-id": "evt_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret(random.Random(99))).verify(BODY, headers)


def test_our_own_verify_agrees_and_checks_the_timestamp() -> None:
    key = SigningKey.from_secret(SECRET)
    headers = webhook_headers(key, "evt_1", 1000, BODY)
    assert verify(key, headers, BODY, now=1000)
    assert verify(key, {k.upper(): v for k, v in headers.items()}, BODY, now=1299)
    assert not verify(key, headers, BODY, now=1301)
    assert not verify(key, headers, BODY + b" ", now=1000)
    assert not verify(key, {**headers, "webhook-timestamp": "x"}, BODY, now=1000)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "must start with 'whsec_'"),
        ("whsec_not*base64!", "standard base64"),
        ("whsec_c2hvcnQ=", "24 to 64 bytes, this one holds 5"),
    ],
)
def test_bad_secrets_are_refused_without_quoting_them(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        SigningKey.from_secret(secret)
    assert secret.removeprefix("whsec_") not in str(caught.value)


def test_a_key_never_prints() -> None:
    key = SigningKey.from_secret(SECRET)
    assert repr(key) == str(key) == "SigningKey(***)"
    assert key == SigningKey.from_secret(SECRET)
    assert key != SigningKey.from_secret(new_secret(random.Random(1)))
