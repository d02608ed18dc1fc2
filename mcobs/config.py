"""Load and validate the YAML configuration into frozen settings.

Every problem is reported at once, each with the path of the bad field
(`clusters[1].prometheus_url: ...`), so one run of `mcobs check-config` is
enough to fix a file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mcobs.api.tls import tls_problems
from mcobs.notify.settings import WebhookDefaults, WebhookSettings, duplicate_names
from mcobs.redisconn import RedisUrlError
from mcobs.redisconn import parse_url as parse_redis_url

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOST = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every reason with its path."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Seconds = Annotated[float, Field(gt=0, le=3600)]


def normalise_zone(value: str) -> str:
    """`Global.Example.com` -> `global.example.com.`; raises ValueError when not a domain."""
    name = value.strip().lower().rstrip(".")
    if not _HOST.fullmatch(name) or len(name) > 200:
        raise ValueError(f"{value!r} is not a valid domain name")
    return name + "."


class NameserverSettings(_Frozen):
    name: str
    addresses: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalise_zone(value)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(ipaddress.ip_address(a)) for a in value)


class RateLimitSettings(_Frozen):
    """Response rate limiting per client prefix, so mcobs can't amplify traffic."""

    enabled: bool = True
    responses_per_second: float = Field(200.0, gt=0)
    window: float = Field(5.0, ge=0)
    slip: int = Field(2, ge=0, description="every Nth limited query is answered truncated")
    ipv4_prefix: int = Field(24, ge=0, le=32)
    ipv6_prefix: int = Field(56, ge=0, le=128)
    exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    @field_validator("exempt")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value


class DnsSettings(_Frozen):
    host: str = "0.0.0.0"
    port: int = Field(53, ge=0, le=65535)
    default_ttl: int = Field(
        5, ge=0, le=86400, description="TTL of answers unless a Service sets mcobs.io/ttl"
    )
    negative_ttl: int = Field(30, ge=0, le=86400, description="SOA minimum (RFC 2308)")
    nameservers: tuple[NameserverSettings, ...] = ()
    hostmaster: str | None = None
    strategy: Literal["weighted", "failover", "geo", "all"] = Field(
        "weighted", description="routing strategy unless a Service sets mcobs.io/strategy"
    )
    max_answers: int | None = Field(None, ge=1, le=64)
    min_healthy_percent: float = Field(0.0, ge=0, le=100)
    last_resort: Literal["serve-all", "nxdomain", "servfail"] = "serve-all"
    rate_limit: RateLimitSettings = RateLimitSettings()
    workers: int = Field(1, ge=1, le=64, description="DNS processes sharing the port")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value


class GeoSettings(_Frozen):
    """Where clients are (by address) and how far apart regions are."""

    cidrs: Mapping[str, str] = Field(default_factory=dict, description="CIDR -> region")
    distances: Mapping[str, Mapping[str, float]] = Field(
        default_factory=dict, description="region -> region -> distance (symmetric)"
    )
    maxmind: Path | None = Field(None, description="a MaxMind (GeoIP2/GeoLite2) database")
    countries: Mapping[str, str] = Field(default_factory=dict, description="ISO code -> region")
    continents: Mapping[str, str] = Field(default_factory=dict, description="code -> region")

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        bad = []
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as error:
                bad.append(f"{cidr!r} ({error})")
        if bad:
            raise ValueError("not a network: " + ", ".join(bad))
        return value

    @property
    def regions(self) -> tuple[str, ...]:
        named = (
            set(self.cidrs.values())
            | set(self.distances)
            | set(self.countries.values())
            | set(self.continents.values())
        )
        for row in self.distances.values():
            named |= set(row)
        return tuple(sorted(named))


class TlsSettings(_Frozen):
    """Serve the HTTP API over HTTPS (TLS 1.2+); both files are checked while validating."""

    cert_file: Path = Field(description="PEM: the server certificate, then any intermediates")
    key_file: Path = Field(description="PEM: its private key, unencrypted")

    @model_validator(mode="after")
    def _loadable(self) -> Self:
        problems = tls_problems(self.cert_file, self.key_file)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class HttpSettings(_Frozen):
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)
    token_file: Path | None = Field(
        None, description="bearer token for mutating calls (MCOBS_API_TOKEN overrides)"
    )
    protect_reads: bool = Field(False, description="ask the token of read calls too")
    tls: TlsSettings | None = Field(None, description="HTTPS with this certificate and key")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value


class RedisSettings(_Frozen):
    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://, rediss://, unix://, redis+cluster://h:p[,h:p...] "
        "or redis+sentinel://h:p[,h:p...]/service[/db]",
    )
    prefix: str = Field("mcobs", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parse_redis_url(value)
        except RedisUrlError as error:  # its problems never quote a password
            raise ValueError("; ".join(error.problems)) from None
        return value


class ShardSettings(_Frozen):
    """Split collection between replicas (each cluster collected by one live replica)."""

    enabled: bool = Field(False, description="collect only the clusters this replica leases")
    lease_ttl: float = Field(
        10.0, ge=1, le=300, description="a dead replica's clusters move after this"
    )
    replica_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.:-]{1,128}$",
        description="unique per replica (default: <hostname>-<pid>-<random>)",
    )


class DecideSettings(_Frozen):
    lease_ttl: float = Field(
        10.0, ge=1, le=300, description="a dead leader's lease runs out after this; then a takeover"
    )
    events_maxlen: int = Field(
        100_000, ge=100, le=10_000_000, description="decision events kept (about)"
    )


class SignalSettings(_Frozen):
    """A PromQL expression evaluated per cluster; its first sample is the signal value."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    query: str = Field(min_length=1)
    healthy_min: float | None = Field(None, description="below this: degraded")
    healthy_max: float | None = Field(None, description="above this: degraded")
    down_min: float | None = Field(None, description="below this: down")
    down_max: float | None = Field(None, description="above this: down")


DEFAULT_SIGNALS = (SignalSettings(name="targets_up", query="sum(up) / count(up)", healthy_min=0.9),)


class CollectSettings(_Frozen):
    interval: Seconds = Field(3.0, description="seconds between health sweeps of a cluster")
    signal_interval: Seconds = Field(
        15.0,
        description="seconds between reads of a cluster's Prometheus signals while its "
        "health is settled (Prometheus scrapes every 15-60 s)",
    )
    max_sweeps_per_second: float = Field(
        100.0,
        gt=0,
        le=10000,
        description="most API probes a replica makes a second; with more clusters than "
        "interval x this, each cluster's interval stretches (never beyond stale_after / 3)",
    )
    max_signal_reads_per_second: float = Field(
        50.0,
        gt=0,
        le=10000,
        description="most Prometheus reads a replica makes a second; with more clusters "
        "than signal_interval x this, signal_interval stretches",
    )
    timeout: Seconds = Field(3.0, description="timeout of one request to a cluster")
    down_after_failures: int = Field(2, ge=1, le=100, description="bad sweeps in a row: down")
    up_after_successes: int = Field(2, ge=1, le=100, description="good sweeps in a row: back")
    min_down_seconds: float = Field(5.0, ge=0, le=3600, description="least time spent down")
    flap_limit: int = Field(4, ge=2, le=100, description="downs within flap_window that...")
    flap_window: Seconds = Field(300.0, description="...hold a scope down for hold_down")
    hold_down: float = Field(300.0, ge=0, le=86400)
    stale_after: Seconds = Field(30.0, description="a cluster that has not reported is down")
    slow_api_seconds: Seconds = Field(1.0, description="API latency above this: degraded")
    signals: tuple[SignalSettings, ...] = DEFAULT_SIGNALS
    service_signals: tuple[SignalSettings, ...] = Field(
        (),
        description="PromQL per service, with $namespace, $service and $cluster; a Service "
        "opts in with mcobs.io/signals",
    )
    probes: bool = Field(True, description="run the probes Services ask for (mcobs.io/probe)")

    @model_validator(mode="after")
    def _stale_after_interval(self) -> Self:
        if self.stale_after <= self.interval:
            raise ValueError("stale_after must be longer than interval")
        names = [s.name for s in (*self.signals, *self.service_signals)]
        if len(names) != len(set(names)):
            raise ValueError("signal names must be unique across signals and service_signals")
        return self


class ClusterSettings(_Frozen):
    name: str
    region: str = Field("default", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    labels: Mapping[str, str] = Field(default_factory=dict)
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    prometheus_url: AnyHttpUrl | None = None
    weight: float = Field(1.0, ge=0, le=1000)
    priority: int = Field(0, ge=0, le=65535)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _LABEL.fullmatch(value):
            raise ValueError("must be a DNS label: lower-case letters, digits and '-', 1-63 long")
        return value

    @model_validator(mode="after")
    def _one_credential_source(self) -> Self:
        if self.in_cluster and (self.kubeconfig or self.context):
            raise ValueError("in_cluster excludes kubeconfig and context")
        return self


class AlertSettings(_Frozen):
    down_severities: frozenset[str] = Field(
        frozenset({"critical"}), description="severities that take a scope down (others degrade)"
    )


class QuerySettings(_Frozen):
    """The global PromQL fan-out (`/api/v1/query`)."""

    cluster_timeout: Seconds = 15.0
    deadline: Seconds = 30.0
    concurrency: int = Field(64, ge=1, le=1024)


class GrafanaSettings(_Frozen):
    """Push failover and recovery events to Grafana as annotations."""

    url: AnyHttpUrl
    token_file: Path = Field(description="a Grafana service account token")


class Settings(_Frozen):
    zone: str
    dns: DnsSettings = DnsSettings()
    http: HttpSettings = HttpSettings()
    geo: GeoSettings = GeoSettings()
    alerts: AlertSettings = AlertSettings()
    query: QuerySettings = QuerySettings()
    webhook_defaults: WebhookDefaults = WebhookDefaults()
    webhooks: tuple[WebhookSettings, ...] = ()
    grafana: GrafanaSettings | None = None
    redis: RedisSettings = RedisSettings()
    decide: DecideSettings = DecideSettings()
    shard: ShardSettings = ShardSettings()
    collect: CollectSettings = CollectSettings()
    clusters: tuple[ClusterSettings, ...]

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return normalise_zone(value)

    @field_validator("clusters")
    @classmethod
    def _some_clusters(cls, value: tuple[ClusterSettings, ...]) -> tuple[ClusterSettings, ...]:
        if not value:
            raise ValueError("list at least one cluster")
        return value

    @model_validator(mode="after")
    def _unique_webhooks(self) -> Self:
        dupes = duplicate_names(self.webhooks)
        if dupes:
            raise ValueError(f"webhook names must be unique; repeated: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _unique_clusters(self) -> Self:
        names = [c.name for c in self.clusters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"cluster names must be unique; repeated: {', '.join(dupes)}")
        return self

    @property
    def nameservers(self) -> tuple[NameserverSettings, ...]:
        """Configured nameservers, or `ns1.<zone>` without glue."""
        return self.dns.nameservers or (NameserverSettings(name="ns1." + self.zone),)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "value_error")):
            out += f".{part}" if out else part
    return out or "(top level)"


def _describe(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{_location(tuple(item['loc']))}: {message}")
    return problems


def parse_settings(data: Any, source: str = "<config>") -> Settings:
    """Validate already-loaded YAML/JSON data; raises ConfigError with every problem."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, ["(top level): must be a mapping"])
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(source, _describe(error)) from None


TOKEN_ENV = "MCOBS_API_TOKEN"


def api_token(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The API bearer token: the environment wins over `http.token_file`."""
    if environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV].strip()
    path = settings.http.token_file
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError("http.token_file", [f"cannot read: {error.strerror}"]) from None
    if len(token) < 16:
        raise ConfigError("http.token_file", ["the token must be at least 16 characters"])
    return token


def load_settings(path: Path) -> Settings:
    """Read and validate a YAML file; raises ConfigError with every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), [f"cannot read: {error.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(str(path), [f"not valid YAML: {error}"]) from None
    return parse_settings(data, str(path))
