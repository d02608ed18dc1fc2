"""Every metric mcobs exposes: name, type, help text and labels, in one table.

The collectors take their help text from here, the dashboards are checked
against it, and the metrics reference in `mcobs/grafana/README.md` is checked
against it too, so a metric cannot be added, renamed or relabelled in one place
only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    """The exposed name; counters end in `_total`, durations are in seconds."""
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    source: str = ""
    """What feeds it: the hub state (read on scrape) or the recorder called by other code."""

    @property
    def family(self) -> str:
        """The family name as `prometheus_client` sees it (counters without `_total`)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


HUB = "hub state, read on scrape"
DNS_STATS = "DNS server counters, read on scrape"
OUTBOX = "the webhook outbox (mcobs.notify.stats)"

SPECS: tuple[MetricSpec, ...] = (
    # -- clusters --------------------------------------------------------------
    MetricSpec(
        "mcobs_cluster_up",
        "gauge",
        "1 when the cluster may serve (healthy or degraded, report not stale), else 0.",
        ("cluster", "region"),
        HUB,
    ),
    MetricSpec(
        "mcobs_cluster_health_score",
        "gauge",
        "Health score from 0 (dead) to 1 (perfect); 0 once the report is stale.",
        ("cluster", "region"),
        HUB,
    ),
    MetricSpec(
        "mcobs_cluster_state",
        "gauge",
        "1 for the cluster's current health state (healthy, degraded, down, unknown), else 0.",
        ("cluster", "state"),
        HUB,
    ),
    MetricSpec(
        "mcobs_cluster_last_report_timestamp_seconds",
        "gauge",
        "Unix time of the cluster's latest observation in the catalog.",
        ("cluster",),
        HUB,
    ),
    # -- services ----------------------------------------------------------------
    MetricSpec(
        "mcobs_service_in_answer",
        "gauge",
        "1 when the cluster is in the service's DNS answer (including last resort), else 0.",
        ("namespace", "service", "cluster"),
        HUB,
    ),
    MetricSpec(
        "mcobs_service_ready_endpoints",
        "gauge",
        "Ready endpoints of the service in the cluster.",
        ("namespace", "service", "cluster"),
        HUB,
    ),
    MetricSpec(
        "mcobs_service_endpoints",
        "gauge",
        "All endpoints (ready or not) of the service in the cluster.",
        ("namespace", "service", "cluster"),
        HUB,
    ),
    MetricSpec(
        "mcobs_service_answer_weight",
        "gauge",
        "Weight x health score of the cluster in the service's answer (0 when left out); "
        "a cluster's answer share is its weight over the service's sum.",
        ("namespace", "service", "cluster"),
        HUB,
    ),
    MetricSpec(
        "mcobs_service_last_resort",
        "gauge",
        "1 when no cluster can serve the service and the last-resort policy answers, else 0.",
        ("namespace", "service"),
        HUB,
    ),
    MetricSpec(
        "mcobs_service_info",
        "gauge",
        "Always 1; carries the service's routing strategy.",
        ("namespace", "service", "strategy"),
        HUB,
    ),
    # -- catalog -------------------------------------------------------------------
    MetricSpec(
        "mcobs_catalog_loaded",
        "gauge",
        "1 once this replica holds a catalog snapshot (the /readyz condition), else 0.",
        (),
        HUB,
    ),
    MetricSpec(
        "mcobs_catalog_version",
        "gauge",
        "Version of the catalog snapshot this replica serves.",
        (),
        HUB,
    ),
    MetricSpec(
        "mcobs_dns_zone_serial",
        "gauge",
        "SOA serial of the zone this replica answers with.",
        (),
        HUB,
    ),
    # -- replicas --------------------------------------------------------------------
    MetricSpec(
        "mcobs_shard_owned_clusters",
        "gauge",
        "Clusters this replica collects now (with sharding: those whose lease it holds; "
        "without: every configured cluster).",
        (),
        HUB,
    ),
    MetricSpec(
        "mcobs_shard_members",
        "gauge",
        "Live replicas this replica last saw in its shard group, itself included; 1 when "
        "collection is not sharded.",
        (),
        HUB,
    ),
    MetricSpec(
        "mcobs_decider_leader",
        "gauge",
        "1 while this replica holds the decision lease, else 0.",
        (),
        HUB,
    ),
    MetricSpec(
        "mcobs_catalog_update_lag_seconds",
        "histogram",
        "Time from a cluster's observation to this replica planning answers with it.",
        (),
        "CatalogLag.snapshot_applied()",
    ),
    # -- DNS -------------------------------------------------------------------------
    MetricSpec(
        "mcobs_dns_queries_total",
        "counter",
        "DNS queries answered, by question type (uncommon types count as OTHER).",
        ("qtype",),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_responses_total",
        "counter",
        "DNS responses sent, by rcode.",
        ("rcode",),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_answer_path_total",
        "counter",
        "Queries answered from the precomputed fast path or the full slow path.",
        ("path",),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_cache_misses_total",
        "counter",
        "Fast-path queries whose response had to be rendered (not from the answer cache).",
        (),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_rate_limited_total",
        "counter",
        "UDP queries over the response rate limit, by action (dropped, slipped: answered "
        "empty with TC=1).",
        ("action",),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_truncated_total",
        "counter",
        "Responses sent truncated (TC bit set).",
        (),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_malformed_total",
        "counter",
        "Packets that could not be parsed or broke the protocol.",
        (),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_dropped_total",
        "counter",
        "Packets left without a response.",
        (),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_internal_errors_total",
        "counter",
        "Internal errors while answering (answered SERVFAIL or dropped).",
        (),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_tcp_connections_total",
        "counter",
        "TCP connections accepted.",
        (),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_tcp_rejected_total",
        "counter",
        "TCP connections closed at once because the connection limit was reached.",
        (),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_tcp_timeouts_total",
        "counter",
        "TCP connections closed for idling.",
        (),
        DNS_STATS,
    ),
    MetricSpec(
        "mcobs_dns_response_seconds",
        "histogram",
        "Time to answer one DNS query, from packet in to response out.",
        ("transport", "strategy"),
        "DnsLatency.observe()",
    ),
    # -- decisions ---------------------------------------------------------------------
    MetricSpec(
        "mcobs_decisions_total",
        "counter",
        "Decisions of the failover logic, by kind (failover, recovery, last_resort, "
        "last_resort_ended, cluster_state, drain, undrain, other).",
        ("kind",),
        "DecisionRecorder.record(event)",
    ),
    MetricSpec(
        "mcobs_failovers_total",
        "counter",
        "Failovers: a service's answer moved off clusters that could no longer serve it.",
        ("namespace", "service"),
        "DecisionRecorder.record(event)",
    ),
    MetricSpec(
        "mcobs_recoveries_total",
        "counter",
        "Recoveries: a service's answer moved back onto its preferred clusters.",
        ("namespace", "service"),
        "DecisionRecorder.record(event)",
    ),
    MetricSpec(
        "mcobs_last_failover_timestamp_seconds",
        "gauge",
        "Unix time of the service's latest failover.",
        ("namespace", "service"),
        "DecisionRecorder.record(event)",
    ),
    # -- collectors --------------------------------------------------------------------
    MetricSpec(
        "mcobs_collector_sweep_seconds",
        "histogram",
        "Duration of one health sweep of one cluster (API probe and Prometheus signals).",
        (),
        "CollectorMetrics.sweep()",
    ),
    MetricSpec(
        "mcobs_collector_last_sweep_seconds",
        "gauge",
        "Duration of the cluster's latest health sweep.",
        ("cluster",),
        "CollectorMetrics.sweep()",
    ),
    MetricSpec(
        "mcobs_collector_errors_total",
        "counter",
        "Collector errors, by cluster and kind (api, watch, prometheus, catalog, "
        "credentials, other).",
        ("cluster", "kind"),
        "CollectorMetrics.error()",
    ),
    MetricSpec(
        "mcobs_collector_inconclusive_probes_total",
        "counter",
        "API probes that judged nothing because the hub's event loop stalled during them "
        "(the cluster keeps its health until the next sweep).",
        (),
        "CollectorMetrics.inconclusive()",
    ),
    MetricSpec(
        "mcobs_event_loop_lag_seconds",
        "histogram",
        "How late the hub's event loop ran a timer that fires every 0.1 s; long stalls "
        "delay DNS replies and make probes inconclusive.",
        (),
        "CollectorMetrics.loop_late()",
    ),
    # -- webhooks: registered by the webhook outbox (mcobs.notify.stats), listed here --------
    MetricSpec(
        "mcobs_webhook_deliveries_total",
        "counter",
        "Webhook delivery attempts by consumer and result "
        "(delivered, retried, failed, dead_lettered).",
        ("consumer", "result"),
        OUTBOX,
    ),
    MetricSpec(
        "mcobs_webhook_attempt_failures_total",
        "counter",
        "Failed webhook attempts by consumer and kind "
        "(status, redirect, gone, timeout, connection, refused).",
        ("consumer", "kind"),
        OUTBOX,
    ),
    MetricSpec(
        "mcobs_webhook_attempt_duration_seconds",
        "histogram",
        "Time of one webhook attempt, by consumer.",
        ("consumer",),
        OUTBOX,
    ),
    MetricSpec(
        "mcobs_webhook_events_total",
        "counter",
        "Events put in the webhook outbox, by type.",
        ("type",),
        OUTBOX,
    ),
    MetricSpec(
        "mcobs_webhook_pending_deliveries",
        "gauge",
        "Deliveries waiting in the outbox, by consumer (as last seen by this replica).",
        ("consumer",),
        OUTBOX,
    ),
    MetricSpec(
        "mcobs_webhook_dead_letters",
        "gauge",
        "Deliveries in the dead-letter list (as last seen by this replica).",
        (),
        OUTBOX,
    ),
    MetricSpec(
        "mcobs_webhook_buffered_events",
        "gauge",
        "Events held in this process because the outbox store is unreachable.",
        (),
        OUTBOX,
    ),
)

BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in SPECS}


def spec(name: str) -> MetricSpec:
    """The spec of an exposed metric; KeyError for a name mcobs does not define."""
    return BY_NAME[name]


def markdown_table() -> str:
    """The metrics reference as a Markdown table (README's copy is checked against it)."""
    rows = ["| metric | type | labels | meaning | fed by |", "|---|---|---|---|---|"]
    for item in SPECS:
        labels = ", ".join(f"`{label}`" for label in item.labels) or "-"
        rows.append(f"| `{item.name}` | {item.kind} | {labels} | {item.help} | {item.source} |")
    return "\n".join(rows) + "\n"
