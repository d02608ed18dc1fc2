"""`mcobs.redisconn`: URLs of every kind, the clients they build, and passwords kept out of text."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis, RedisCluster

from mcobs.redisconn import (
    RedisTarget,
    RedisUrlError,
    SentinelRedis,
    connect,
    kind_of,
    parse_url,
    publish_command,
    redact,
)


def test_single_server_urls_are_left_to_redis_py() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://h/1", "unix:///run/redis.sock"):
        assert parse_url(url) == RedisTarget("single", url)
        assert kind_of(url) == "single"


def test_a_cluster_url_lists_its_seeds() -> None:
    target = parse_url("redis+cluster://ops:s3cret@10.0.0.1:7000,10.0.0.2,[::1]:7002/0")
    assert target.kind == "cluster"
    assert target.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (target.username, target.password, target.tls) == ("ops", "s3cret", False)
    assert parse_url("rediss+cluster://h:1").tls


def test_a_sentinel_url_names_its_service_and_database() -> None:
    target = parse_url(
        "redis+sentinel://:pw@s1:26380,s2/mymaster/2?sentinel_password=spw&sentinel_username=sen"
    )
    assert target.kind == "sentinel"
    assert target.hosts == (("s1", 26380), ("s2", 26379))
    assert (target.service, target.db) == ("mymaster", 2)
    assert (target.username, target.password) == (None, "pw")
    assert (target.sentinel_username, target.sentinel_password) == ("sen", "spw")
    assert parse_url("redis+sentinel://s1/mymaster").db == 0


@pytest.mark.parametrize(
    ("url", "problems"),
    [
        ("http://h:1", ["the scheme must be one of"]),
        ("h:6379", ["the scheme must be one of"]),
        ("redis+cluster://", ["no host"]),
        ("redis+cluster://h:1,,h:2", ["empty host"]),
        ("redis+cluster://h:99999,:5", ["bad port in 'h:99999'", "bad host ':5'"]),
        ("redis+cluster://h:1/3", ["only database 0"]),
        ("redis+cluster://h:1?sentinel_password=x", ["unknown option 'sentinel_password'"]),
        ("redis+sentinel://s1", ["service name is missing"]),
        ("redis+sentinel://s1/m/x", ["database must be a number"]),
        ("redis+sentinel://s1/m/1/2?color=red", ["too many path", "unknown option 'color'"]),
    ],
)
def test_every_problem_of_a_url_is_reported(url: str, problems: list[str]) -> None:
    with pytest.raises(RedisUrlError) as caught:
        parse_url(url)
    found = caught.value.problems
    assert len(found) == len(problems), found
    for expected in problems:
        assert any(expected in problem for problem in found), (expected, found)


def test_passwords_never_reach_text() -> None:
    url = "redis+sentinel://ops:hunter2@s1:1,s2:2/m/x?sentinel_password=hunter3"
    assert redact(url) == "redis+sentinel://ops:***@s1:1,s2:2/m/x?sentinel_password=***"
    assert redact("redis://:hunter2@h:1/0") == "redis://:***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"
    with pytest.raises(RedisUrlError) as caught:
        connect(url)
    assert "hunter" not in str(caught.value)
    target = parse_url("redis+cluster://u:hunter2@h:1?")
    assert "hunter" not in repr(target) and "hunter" not in str(target)
    with pytest.raises(RedisUrlError) as bad_option:
        connect("redis://:hunter2@h:1/0?socket_timeout=soon")
    assert "hunter" not in str(bad_option.value)


async def test_connect_builds_the_client_of_each_kind() -> None:
    single = connect("redis://127.0.0.1:1/3", timeout=0.5)
    cluster = connect("redis+cluster://127.0.0.1:1,127.0.0.1:2", timeout=0.5)
    sentinel = connect("redis+sentinel://127.0.0.1:1/mymaster/1", timeout=0.5)
    try:
        assert type(single) is Redis and publish_command(single) == "PUBLISH"
        kwargs = single.connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"], kwargs["db"]) == (
            0.5,
            0.5,
            3,
        )
        assert isinstance(cluster, RedisCluster) and publish_command(cluster) == "SPUBLISH"
        assert cluster.connection_kwargs["socket_timeout"] == 0.5
        assert isinstance(sentinel, SentinelRedis) and publish_command(sentinel) == "PUBLISH"
        assert sentinel.connection_pool.connection_kwargs["db"] == 1
    finally:
        await single.aclose()
        await cluster.aclose()
        await sentinel.aclose()
