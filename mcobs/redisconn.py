"""Redis clients from one URL: a single server, a Redis Cluster, or a master behind Sentinel.

    redis://[user:password@]host:port[/db]                 one server (also rediss://, unix://)
    redis+cluster://[user:password@]host:port[,host:port...]
                                                           Redis Cluster; the hosts are seeds
    redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]
                                                           the master Sentinel names `service`

`rediss+cluster://` and `rediss+sentinel://` use TLS. The user and password
are the data nodes'; Sentinels that need their own take `?sentinel_username=`
and `?sentinel_password=`. `connect` gives every kind the same fail-fast
settings: `timeout` bounds connecting and each reply, and a broken connection
is retried once at once on a fresh one (a Cluster client first re-reads the
slot map, so a promoted replica is found; a Sentinel client first asks the
Sentinels for the master). Passwords never reach a log line or an error
message: `redact` shows a URL without them.

Pub/sub differs by kind, and `Subscription` hides the difference. On one
server or a Sentinel master a change is `PUBLISH`ed and read with `SUBSCRIBE`
(through Sentinel, a reconnect finds the new master). On a Redis Cluster a
plain `PUBLISH` is broadcast to every node over the cluster bus; mcobs uses
sharded pub/sub instead (Redis 7: `SPUBLISH` / `SSUBSCRIBE`), which keeps a
channel on the nodes of its hash slot. A channel that shares its keys' hash
tag is published from the same Lua script that writes them, and
`Subscription` reads it on a connection to the master that owns that slot;
after a failover (the connection breaks, or the node sends `sunsubscribe`
when it loses the slot) the caller opens a new `Subscription`, which re-reads
the slot map and follows the promoted replica.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

from redis.asyncio import Redis, RedisCluster, Sentinel
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

log = logging.getLogger(__name__)

AnyRedis: TypeAlias = Redis | RedisCluster
"""What every Redis-backed store in mcobs accepts."""

Kind = Literal["single", "cluster", "sentinel"]

REDIS_ERRORS: Final = (RedisError, RedisClusterException, OSError)
"""What a Redis call may raise when Redis is unreachable or misbehaves.

A cluster client raises `RedisClusterException` (not a `RedisError`) when no
seed answers or a slot has no node, so stores catch this tuple, not `RedisError`.
"""

SINGLE_SCHEMES: Final = ("redis", "rediss", "unix")
CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES: Final = ("redis+sentinel", "rediss+sentinel")
SCHEMES: Final = (*SINGLE_SCHEMES, *CLUSTER_SCHEMES, *SENTINEL_SCHEMES)
SENTINEL_OPTIONS: Final = ("sentinel_username", "sentinel_password")
DEFAULT_PORT: Final = 6379
DEFAULT_SENTINEL_PORT: Final = 26379
DEFAULT_TIMEOUT: Final = 2.0


class RedisUrlError(ValueError):
    """A URL `connect` cannot use; the message never contains its password."""

    def __init__(self, url: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"{redact(url)}: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed `redis+cluster://` or `redis+sentinel://` URL (single servers: see `url`)."""

    kind: Kind
    url: str = field(repr=False)
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return redact(self.url)


def redact(url: str) -> str:
    """`url` with its password (in the user part or a `*password` option) replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable redis URL>"
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    netloc = f"{userinfo}@{hosts}" if at else hosts
    query = "&".join(
        f"{name}=***" if "password" in name.lower() else f"{name}={quote(value, safe='')}"
        for name, values in parse_qs(parts.query, keep_blank_values=True).items()
        for value in values
    )
    if "://" not in url:
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def kind_of(url: str) -> Kind:
    """Which kind of deployment `url` names; `RedisUrlError` for an unknown scheme."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in SINGLE_SCHEMES:
        return "single"
    if scheme in CLUSTER_SCHEMES:
        return "cluster"
    if scheme in SENTINEL_SCHEMES:
        return "sentinel"
    raise RedisUrlError(url, [f"the scheme must be one of {', '.join(s + '://' for s in SCHEMES)}"])


def _host_port(text: str, default_port: int, problems: list[str]) -> tuple[str, int] | None:
    if text.startswith("["):  # [IPv6]:port
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            problems.append(f"bad host {text!r}")
            return None
    else:
        host, _, port_text = text.partition(":")
    if not host:
        problems.append(f"bad host {text!r}: no name")
        return None
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        problems.append(f"bad port in {text!r}")
        return None
    return host, int(port_text)


def parse_url(url: str) -> RedisTarget:
    """Check a URL of any supported kind; every problem is reported at once."""
    kind = kind_of(url)
    if kind == "single":
        return RedisTarget("single", url)
    scheme, _, rest = url.partition("://")
    netloc, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
    problems: list[str] = []
    userinfo, at, host_list = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    default_port = DEFAULT_SENTINEL_PORT if kind == "sentinel" else DEFAULT_PORT
    hosts = []
    for item in host_list.split(",") if host_list else ():
        if not item:
            problems.append("empty host in the host list")
            continue
        parsed = _host_port(item, default_port, problems)
        if parsed is not None:
            hosts.append(parsed)
    if not host_list:
        problems.append("no host")
    options = parse_qs(query, keep_blank_values=True)
    allowed = SENTINEL_OPTIONS if kind == "sentinel" else ()
    for name in options:
        if name not in allowed:
            problems.append(f"unknown option {name!r}")
    segments = [unquote(s) for s in path.split("/")] if path else []
    service, db = "", 0
    if kind == "cluster":
        if segments not in ([], ["0"], [""]):
            problems.append("a Redis Cluster has only database 0 (use no path or /0)")
    else:
        if not segments or not segments[0]:
            problems.append("the Sentinel service name is missing (…/service_name[/db])")
        else:
            service = segments[0]
        if len(segments) > 2:
            problems.append("too many path segments (…/service_name[/db])")
        elif len(segments) == 2 and segments[1]:
            if segments[1].isdigit():
                db = int(segments[1])
            else:
                problems.append("the database must be a number")
    if problems:
        raise RedisUrlError(url, problems)

    def option(name: str) -> str | None:
        values = options.get(name)
        return values[-1] if values else None

    return RedisTarget(
        kind,
        url,
        hosts=tuple(hosts),
        service=service,
        db=db,
        tls=scheme.lower().startswith("rediss"),
        username=username,
        password=password,
        sentinel_username=option("sentinel_username"),
        sentinel_password=option("sentinel_password"),
    )


def _retry() -> Retry:
    # One immediate retry on a fresh connection: a pooled connection may have died
    # with a restarted or failed-over Redis. No retry on timeouts: fail fast.
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


class SentinelRedis(Redis):
    """The master client of a Sentinel URL; closing it closes its Sentinel connections too."""

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        sentinel, self.sentinel_manager = self.sentinel_manager, None
        if sentinel is not None:
            await sentinel.aclose()


def connect(
    url: str, *, timeout: float = DEFAULT_TIMEOUT, decode_responses: bool = False
) -> AnyRedis:
    """A client for `url` (see the module docstring), not yet connected.

    `RedisUrlError` for a URL it cannot use. Close the client with `aclose()`.
    """
    target = parse_url(url)
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "decode_responses": decode_responses,
    }
    if target.kind == "single":
        try:
            return Redis.from_url(url, retry=_retry(), **common)
        except ValueError as error:  # redis-py's messages may quote the URL
            raise RedisUrlError(url, [type(error).__name__]) from None
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
            # One re-read of the slot map and one more try after a connection error.
            retry=Retry(NoBackoff(), 1),
            ssl=target.tls,
            **auth,
            **common,
        )
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "username": target.sentinel_username,
        "password": target.sentinel_password,
        "retry": _retry(),
    }
    if target.tls:
        sentinel_kwargs["ssl"] = True
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # untyped in redis-py
        list(target.hosts), sentinel_kwargs=sentinel_kwargs
    )
    client = sentinel.master_for(
        target.service,
        redis_class=SentinelRedis,
        db=target.db,
        retry=_retry(),
        ssl=target.tls,
        **auth,
        **common,
    )
    assert isinstance(client, SentinelRedis)
    client.sentinel_manager = sentinel
    return client


def is_cluster(client: AnyRedis) -> bool:
    return isinstance(client, RedisCluster)


def publish_command(client: AnyRedis) -> str:
    """The command that announces a change on `client`'s deployment (see the module docstring)."""
    return "SPUBLISH" if is_cluster(client) else "PUBLISH"


_SUBSCRIBED: Final = frozenset({"subscribe", "ssubscribe"})
_UNSUBSCRIBED: Final = frozenset({"unsubscribe", "sunsubscribe"})
_MESSAGE: Final = frozenset({"message", "smessage"})


class SubscriptionLost(RedisConnectionError):
    """The server ended the subscription (e.g. its node lost the channel's slot)."""


class Subscription:
    """One channel, read the way `publish_command(client)` writes it.

    `start()` subscribes; `get_message` returns `{"type": "subscribe" | "message",
    "data": ...}` (sharded replies are named like plain ones) or None after
    `within` seconds of silence, and raises `SubscriptionLost` when the server
    unsubscribed us. redis-py resubscribes by itself after a reconnect to the
    same server (announced by another "subscribe"); when that fails, `aclose()`
    and open a new `Subscription`, which finds the channel's current node.
    """

    def __init__(self, client: AnyRedis, channel: str) -> None:
        self._client = client
        self.channel = channel
        self._pubsub: PubSub | None = None
        self._pool: ConnectionPool | None = None
        self.node: str | None = None
        """host:port of the cluster node read from (None: not a cluster)."""

    async def start(self, *, refresh: bool = False) -> None:
        """Subscribe. `refresh`: re-read a cluster's slot map first (after a failure)."""
        client = self._client
        if isinstance(client, RedisCluster):
            await client.initialize()
            if refresh:
                await client.nodes_manager.initialize()
            node = client.get_node_from_key(self.channel)
            if node is None:  # pragma: no cover - redis-py raises SlotNotCoveredError
                raise RedisConnectionError(f"no node serves channel {self.channel!r}")
            self.node = node.name
            self._pool = ConnectionPool(
                connection_class=node.connection_class, **node.connection_kwargs
            )
            self._pubsub = PubSub(self._pool, encoder=client.get_encoder())
            await self._pubsub.ssubscribe(self.channel)
        else:
            self._pubsub = client.pubsub()
            await self._pubsub.subscribe(self.channel)

    @property
    def _live(self) -> PubSub:
        if self._pubsub is None:
            raise RedisConnectionError("subscription not started or closed")
        return self._pubsub

    async def get_message(self, within: float) -> dict[str, Any] | None:
        message: dict[str, Any] | None = await self._live.get_message(timeout=within)
        if message is None:
            return None
        kind = message["type"]
        if isinstance(kind, bytes):
            kind = kind.decode()
        if kind in _UNSUBSCRIBED:
            raise SubscriptionLost(f"the server unsubscribed {self.channel!r}")
        if kind in _SUBSCRIBED:
            return {**message, "type": "subscribe"}
        if kind in _MESSAGE:
            return {**message, "type": "message"}
        return message

    async def ping(self) -> None:
        await self._live.ping()

    async def aclose(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        pool, self._pool = self._pool, None
        try:
            if pubsub is not None:
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
        finally:
            if pool is not None:
                await pool.disconnect()
