"""DNS metrics: the server's counters (read on scrape) and a response-time hook.

The DNS server keeps plain integer counters on its hot path
(`mcobs.dnsserver.stats.DnsStats`); `DnsStatsCollector` turns a snapshot of them
into Prometheus counters when scraped. `DnsLatency.observe()` is the one call
the server makes per answered query to feed the response-time histogram.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping

import dns.rcode
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from mcobs.dnsserver.stats import StatsSnapshot
from mcobs.metrics.labels import BoundedLabel
from mcobs.metrics.spec import spec

OTHER = "OTHER"
QTYPES = frozenset(
    {
        "A",
        "AAAA",
        "ANY",
        "AXFR",
        "CAA",
        "CNAME",
        "DNSKEY",
        "DS",
        "HTTPS",
        "IXFR",
        "MX",
        "NAPTR",
        "NS",
        "PTR",
        "SOA",
        "SRV",
        "SVCB",
        "TXT",
    }
)
"""Question types counted by name; every other type counts as OTHER (bounded labels)."""
RCODES = frozenset(dns.rcode.to_text(code) for code in dns.rcode.Rcode)

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
"""Answers come from memory: most land well under a millisecond."""
TRANSPORTS = ("udp", "tcp")
NO_STRATEGY = "none"
MAX_CACHED_CHILDREN = 64


def _bounded(counts: Mapping[str, int], known: frozenset[str]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for name, value in counts.items():
        out[name if name in known else OTHER] += value
    return dict(sorted(out.items()))


def _counter(name: str) -> CounterMetricFamily:
    found = spec(name)
    return CounterMetricFamily(found.family, found.help, labels=list(found.labels))


_PLAIN = (
    ("mcobs_dns_truncated_total", "truncated"),
    ("mcobs_dns_malformed_total", "malformed"),
    ("mcobs_dns_dropped_total", "dropped"),
    ("mcobs_dns_internal_errors_total", "internal_errors"),
    ("mcobs_dns_tcp_connections_total", "tcp_connections"),
    ("mcobs_dns_tcp_rejected_total", "tcp_rejected"),
    ("mcobs_dns_tcp_timeouts_total", "tcp_timeouts"),
)
_OPTIONAL = (("mcobs_dns_cache_misses_total", "cache_misses"),)
"""Counters of newer DNS servers; skipped when the snapshot has no such field."""
_NAMES = (
    "mcobs_dns_queries_total",
    "mcobs_dns_responses_total",
    "mcobs_dns_answer_path_total",
    "mcobs_dns_rate_limited_total",
    *(name for name, _ in _PLAIN + _OPTIONAL),
)


class DnsStatsCollector:
    """A collector over the DNS server's counters.

    `stats` returns the current snapshot, or None while the server is not
    running (then no DNS counters are exposed).
    """

    def __init__(self, stats: Callable[[], StatsSnapshot | None]) -> None:
        self._stats = stats

    def describe(self) -> Iterator[Metric]:
        for name in _NAMES:
            yield _counter(name)

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        if stats is None:
            return
        queries = _counter("mcobs_dns_queries_total")
        for qtype, value in _bounded(stats.queries, QTYPES).items():
            queries.add_metric([qtype], value)
        responses = _counter("mcobs_dns_responses_total")
        for rcode, value in _bounded(stats.responses, RCODES).items():
            responses.add_metric([rcode], value)
        paths = _counter("mcobs_dns_answer_path_total")
        paths.add_metric(["fast"], stats.fast_path)
        paths.add_metric(["slow"], stats.slow_path)
        yield from (queries, responses, paths)
        dropped = getattr(stats, "rate_limited", None)
        slipped = getattr(stats, "rate_limited_slipped", None)
        if isinstance(dropped, int) and isinstance(slipped, int):
            limited = _counter("mcobs_dns_rate_limited_total")
            limited.add_metric(["dropped"], dropped)
            limited.add_metric(["slipped"], slipped)
            yield limited
        for name, attribute in _PLAIN + _OPTIONAL:
            count = getattr(stats, attribute, None)
            if isinstance(count, int):
                family = _counter(name)
                family.add_metric([], count)
                yield family


class DnsLatency:
    """The response-time histogram; the DNS server calls `observe()` once per response.

    `strategy` is the routing strategy of the answered name when the server
    knows it (else "none"); values are bounded to a few distinct names.
    """

    def __init__(
        self, registry: CollectorRegistry, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> None:
        found = spec("mcobs_dns_response_seconds")
        self._histogram = Histogram(
            found.name, found.help, list(found.labels), registry=registry, buckets=buckets
        )
        self._transport = BoundedLabel(TRANSPORTS)
        self._strategy = BoundedLabel(limit=16)
        self._children: dict[tuple[str, str], Callable[[float], None]] = {}

    def observe(self, seconds: float, *, transport: str = "udp", strategy: str = "") -> None:
        """Record one response that took `seconds`; cheap enough for the hot path."""
        key = (transport, strategy)
        child = self._children.get(key)
        if child is None:
            labels = (self._transport(transport), self._strategy(strategy or NO_STRATEGY))
            child = self._histogram.labels(*labels).observe
            if len(self._children) < MAX_CACHED_CHILDREN:
                self._children[key] = child
        child(seconds)
