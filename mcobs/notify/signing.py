"""Standard Webhooks signatures (pure).

A secret is `whsec_` + base64 of 24 to 64 random bytes. Each request carries

    webhook-id:        the event id (the same on every attempt: de-duplicate by it)
    webhook-timestamp: Unix seconds of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">

so any Standard Webhooks library verifies it (`standardwebhooks.Webhook(secret)
.verify(body, headers)`). The key never appears in a repr, a log or an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
from collections.abc import Mapping
from typing import Final

SECRET_PREFIX: Final = "whsec_"
MIN_KEY_BYTES: Final = 24
MAX_KEY_BYTES: Final = 64
DEFAULT_TOLERANCE: Final = 300.0


class SigningKey:
    """The decoded bytes of a `whsec_` secret; prints as `SigningKey(***)`."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise ValueError(
                f"a webhook secret must hold {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, "
                f"this one holds {len(key)}"
            )
        self._key = key

    @classmethod
    def from_secret(cls, secret: str) -> SigningKey:
        """Parse `whsec_<base64>`; the ValueError never quotes the secret."""
        secret = secret.strip()
        if not secret.startswith(SECRET_PREFIX):
            raise ValueError(f"a webhook secret must start with {SECRET_PREFIX!r}")
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"a webhook secret is {SECRET_PREFIX} + standard base64") from None
        return cls(key)

    def hmac(self, message: bytes) -> bytes:
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "SigningKey(***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SigningKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._key).digest())


def new_secret(rng: random.Random, size: int = 32) -> str:
    """A fresh `whsec_` secret from `rng` (use `random.SystemRandom()` for real ones)."""
    return SECRET_PREFIX + base64.b64encode(rng.randbytes(size)).decode()


def signature(key: SigningKey, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` over `{msg_id}.{timestamp}.{body}`."""
    digest = key.hmac(f"{msg_id}.{timestamp}.".encode() + body)
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(key: SigningKey, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, msg_id, timestamp, body),
    }


def verify(
    key: SigningKey,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Whether `headers` sign `body` with `key`, at a timestamp within `tolerance` of `now`."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id", "")
    raw_timestamp = lower.get("webhook-timestamp", "")
    if not msg_id or not (raw_timestamp.isascii() and raw_timestamp.isdigit()):
        return False
    timestamp = int(raw_timestamp)
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(key, msg_id, timestamp, body).encode()
    return any(
        hmac.compare_digest(expected, candidate.encode())
        for candidate in lower.get("webhook-signature", "").split()
    )
