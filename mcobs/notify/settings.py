"""Webhook configuration (pydantic), to embed in the main settings.

    webhook_defaults:              # optional; every field can be overridden per consumer
      timeout: 10                  # seconds for one attempt
      max_attempts: null           # null: only max_age limits retries
      max_age: 86400               # give up (dead letter) this long after the event
      backoff_base: 2              # first retry within 2s, then 4s, 8s, ... (full jitter)
      backoff_cap: 300             # never wait more than 5 minutes between attempts
      deny_private: false          # refuse targets that resolve to private/loopback/... addresses
      external_url: https://mcobs.example.com   # links in Alertmanager payloads
    webhooks:
      - name: pager                # [a-z0-9_-], used in metrics and the API
        url: https://hooks.example.com/mcobs
        secret_file: /etc/mcobs/pager.secret   # or secret: whsec_..., or secret_env: VAR
        events: ["cluster.*", service.last_resort]   # or ["*"]
        format: standard           # or alertmanager

Secrets are `whsec_` + base64 of 24 to 64 bytes and are read (from the file
or the environment variable) while the settings are validated, so
`mcobs check-config` reports a missing file. They and the URL (its path or query
often holds a token) are `SecretStr`: neither ever prints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from mcobs.notify.consumer import (
    DEFAULT_TIMEOUT,
    NAME,
    Consumer,
    check_event_patterns,
    check_url,
)
from mcobs.notify.payloads import PayloadFormat
from mcobs.notify.retry import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
    DEFAULT_MAX_AGE,
    RetryPolicy,
)
from mcobs.notify.signing import SigningKey

_T = TypeVar("_T")


def pick(value: _T | None, default: _T) -> _T:
    return default if value is None else value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookDefaults(_Frozen):
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, le=300)
    max_attempts: int | None = Field(None, ge=1, le=100_000)
    max_age: float = Field(DEFAULT_MAX_AGE, gt=0, le=30 * 86400)
    backoff_base: float = Field(DEFAULT_BACKOFF_BASE, gt=0, le=3600)
    backoff_cap: float = Field(DEFAULT_BACKOFF_CAP, gt=0, le=86400)
    deny_private: bool = False
    external_url: str = Field("", description="mcobs's own URL, for links in payloads")

    @field_validator("external_url")
    @classmethod
    def _external_url(cls, value: str) -> str:
        if value:
            problems = check_url(value)
            if problems:
                raise ValueError("; ".join(problems))
        return value.rstrip("/")


class WebhookSettings(_Frozen):
    name: str
    url: SecretStr
    """A SecretStr too: webhook URLs often carry a token in the path or query."""
    secret: SecretStr | None = None
    secret_file: Path | None = None
    secret_env: str | None = None
    events: tuple[str, ...] = ("*",)
    format: PayloadFormat = PayloadFormat.STANDARD
    timeout: float | None = Field(None, gt=0, le=300)
    max_attempts: int | None = Field(None, ge=1, le=100_000)
    max_age: float | None = Field(None, gt=0, le=30 * 86400)
    deny_private: bool | None = None
    _key: SigningKey | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("must be 1-63 of a-z, 0-9, '-' and '_', starting and ending alnum")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        problems = check_url(value.get_secret_value())
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError('list at least one event type (or "*")')
        problems = check_event_patterns(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _resolve_secret(self) -> Self:
        sources = [
            name
            for name, value in (
                ("secret", self.secret),
                ("secret_file", self.secret_file),
                ("secret_env", self.secret_env),
            )
            if value is not None
        ]
        if len(sources) != 1:
            raise ValueError(
                "give exactly one of secret, secret_file, secret_env"
                + (f" (got {', '.join(sources)})" if sources else "")
            )
        if self.secret is not None:
            text, where = self.secret.get_secret_value(), "secret"
        elif self.secret_file is not None:
            where = f"secret_file {self.secret_file}"
            try:
                text = self.secret_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
                raise ValueError(f"{where}: cannot read: {reason}") from None
        else:
            assert self.secret_env is not None
            where = f"secret_env {self.secret_env}"
            env = os.environ.get(self.secret_env)
            if env is None:
                raise ValueError(f"{where}: the environment variable is not set")
            text = env
        try:
            self._key = SigningKey.from_secret(text)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        return self

    @property
    def key(self) -> SigningKey:
        assert self._key is not None
        return self._key

    def consumer(self, defaults: WebhookDefaults) -> Consumer:
        """The runtime consumer, with unset fields taken from `defaults`."""

        return Consumer(
            name=self.name,
            url=self.url.get_secret_value(),
            key=self.key,
            events=self.events,
            format=self.format,
            timeout=pick(self.timeout, defaults.timeout),
            retry=RetryPolicy(
                max_attempts=pick(self.max_attempts, defaults.max_attempts),
                max_age=pick(self.max_age, defaults.max_age),
                backoff_base=defaults.backoff_base,
                backoff_cap=defaults.backoff_cap,
            ),
            deny_private=pick(self.deny_private, defaults.deny_private),
            external_url=defaults.external_url,
        )


def duplicate_names(webhooks: Sequence[WebhookSettings]) -> list[str]:
    """Consumer names used more than once (for the main settings' validator)."""
    names = [w.name for w in webhooks]
    return sorted({n for n in names if names.count(n) > 1})


def consumers(
    webhooks: Sequence[WebhookSettings], defaults: WebhookDefaults | None = None
) -> tuple[Consumer, ...]:
    defaults = defaults if defaults is not None else WebhookDefaults()
    dupes = duplicate_names(webhooks)
    if dupes:
        raise ValueError(f"webhook names must be unique; repeated: {', '.join(dupes)}")
    return tuple(w.consumer(defaults) for w in webhooks)
