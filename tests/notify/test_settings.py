from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mcobs.notify.payloads import PayloadFormat
from mcobs.notify.settings import WebhookDefaults, WebhookSettings, consumers
from mcobs.notify.signing import SigningKey
from tests.notify.conftest import SECRET


def _problems(error: ValidationError) -> list[str]:
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]


def _settings(**fields: Any) -> WebhookSettings:
    base: dict[str, Any] = {"name": "pager", "url": "https://hooks.example.com/x", "secret": SECRET}
    return WebhookSettings.model_validate({**base, **fields})


def test_a_consumer_takes_unset_fields_from_the_defaults() -> None:
    defaults = WebhookDefaults(timeout=3, max_age=7200, deny_private=True,
                               external_url="https://mcobs.example.com/")  # fmt: skip
    (consumer,) = consumers([_settings(events=["cluster.*"], max_attempts=5)], defaults)
    assert consumer.timeout == 3
    assert consumer.retry.max_age == 7200
    assert consumer.retry.max_attempts == 5
    assert consumer.deny_private
    assert consumer.external_url == "https://mcobs.example.com"
    assert consumer.key == SigningKey.from_secret(SECRET)
    assert consumer.wants("cluster.state_changed")
    assert not consumer.wants("service.failover")
    assert consumer.format is PayloadFormat.STANDARD


def test_the_secret_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    monkeypatch.setenv("PAGER_SECRET", SECRET)
    expected = SigningKey.from_secret(SECRET)
    assert _settings(secret=None, secret_file=str(path)).key == expected
    assert _settings(secret=None, secret_env="PAGER_SECRET").key == expected


def test_every_problem_is_reported_with_its_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        WebhookSettings.model_validate(
            {
                "name": "Pager!",
                "url": "ftp://user:pw@hooks.example.com/x#frag",
                "secret": SECRET,
                "events": ["cluster.exploded"],
                "format": "slack",
                "timeout": 0,
            }
        )
    problems = "\n".join(_problems(caught.value))
    assert "name: Value error, must be 1-63 of a-z" in problems
    assert (
        "url: Value error, must be an http:// or https:// URL; must not carry user:password"
        in problems
    )
    assert "must not have a #fragment" in problems
    assert "events: Value error, unknown event type 'cluster.exploded'" in problems
    assert "format: Input should be 'standard' or 'alertmanager'" in problems
    assert "timeout: Input should be greater than 0" in problems


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"secret": None}, "give exactly one of secret, secret_file, secret_env"),
        ({"secret_env": "X"}, "(got secret, secret_env)"),
        ({"secret": None, "secret_env": "MCOBS_TEST_UNSET"}, "environment variable is not set"),
        ({"secret": None, "secret_file": "/nonexistent/s"}, "cannot read: No such file"),
        ({"secret": "whsec_c2hvcnQ="}, "secret: a webhook secret must hold 24 to 64 bytes"),
    ],
)
def test_secret_problems_are_clear(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _settings(**fields)


def test_the_secret_and_url_never_print() -> None:
    settings = _settings(url="https://hooks.example.com/services/T0/B0/tokentoken")
    (consumer,) = consumers([settings])
    for text in (repr(settings), str(settings), str(settings.model_dump()), repr(consumer)):
        assert SECRET not in text
        assert SECRET.removeprefix("whsec_") not in text
        assert "tokentoken" not in text
    assert consumer.host == "hooks.example.com"


def test_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="repeated: pager"):
        consumers([_settings(), _settings()])
