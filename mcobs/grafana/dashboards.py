"""The mcobs dashboards, generated with Grafana's typed builders.

Five dashboards, each with a stable uid, the `$datasource` variable (the
Prometheus that scrapes mcobs' `/metrics`) and links to the others. Panels
about the member clusters' own metrics read the `mcobs` global-query
datasource (mcobs' fan-out PromQL API), selecting one cluster with
`{cluster="..."}`:

- `mcobs-fleet`     fleet overview: clusters up, health by region
- `mcobs-services`  global services: healthy clusters per service, answer share, endpoints
- `mcobs-dns`       DNS: query rate, rcodes, response time
- `mcobs-failover`  failover timeline: who left which answer when, with annotations
- `mcobs-cluster`   one cluster (`$cluster`): health, collector, services, its own metrics
"""

from __future__ import annotations

import json
from collections.abc import Callable

from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from mcobs.grafana.panels import (
    BLUE,
    DATASOURCE_VARIABLE,
    DS,
    GREEN,
    IN_OUT,
    RED,
    UP_DOWN,
    YELLOW,
    Ids,
    builtin_annotation,
    event_annotation,
    events_panel,
    merge_and_organize,
    query,
    row,
    stat_panel,
    state_panel,
    table_panel,
    timeseries_panel,
)
from mcobs.grafana.stamp import Json, stamp

GLOBAL_DATASOURCE_UID = "mcobs"
"""The uid (and name) of the mcobs global-query datasource (every cluster's Prometheus)."""
GLOBAL = model.DataSourceRef(type_val="prometheus", uid=GLOBAL_DATASOURCE_UID)
NOT_MCOBS_SOURCES = r"/^(?!mcobs$|mcobs .* Prometheus$).*/"
"""`$datasource` offers every Prometheus but the ones mcobs provisions: those hold the
member clusters' metrics, not mcobs' own."""
TAG = "mcobs"
RATE = "[$__rate_interval]"
CLUSTERS_UP = "max by (cluster) (mcobs_cluster_up)"
"""Every replica exposes the same catalog gauges: take one value per cluster before counting."""


def _base(uid: str, title: str, description: str, time_from: str = "now-1h") -> builder.Dashboard:
    return (
        builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .timezone("browser")
        .time(time_from, "now")
        .refresh("30s")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            builder.DatasourceVariable(DATASOURCE_VARIABLE)
            .label("mcobs metrics")
            .description("The Prometheus that scrapes mcobs' /metrics")
            .type("prometheus")
            .regex(NOT_MCOBS_SOURCES)
        )
        .link(
            builder.DashboardLink("mcobs")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .annotation(builtin_annotation())
        .annotation(event_annotation("mcobs failovers", [TAG, "failover"], "red"))
        .annotation(event_annotation("mcobs recoveries", [TAG, "recovery"], "green"))
        .annotation(event_annotation("mcobs last resort", [TAG, "last_resort"], "purple"))
    )


def _query_variable(name: str, label: str, expr: str, *, multi: bool) -> builder.QueryVariable:
    variable = (
        builder.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(expr)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    return variable.all_value(".*") if multi else variable


def fleet() -> builder.Dashboard:
    ids = Ids()
    drill = (
        builder.DashboardLink("Open cluster")
        .url("/d/mcobs-cluster?var-cluster=${__data.fields.cluster}&${datasource:queryparam}")
        .target_blank(False)
    )
    return (
        _base(
            "mcobs-fleet",
            "mcobs / Fleet overview",
            "Every cluster mcobs watches: which are up, their health by region, and their reports.",
        )
        .with_row(row(ids, "Fleet"))
        .with_panel(
            stat_panel(ids, "Clusters", "Clusters in the catalog.", query(f"count({CLUSTERS_UP})"))
        )
        .with_panel(
            stat_panel(
                ids,
                "Clusters up",
                "Clusters that may serve: healthy or degraded, with a fresh report.",
                query(f"sum({CLUSTERS_UP})"),
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Clusters down",
                "Clusters that are down, unknown, or whose report went stale.",
                query(f"count({CLUSTERS_UP} == 0) or vector(0)"),
                steps=((None, GREEN), (1, RED)),
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Services on last resort",
                "Services no cluster can serve; mcobs answers by their last-resort policy.",
                query("sum(max by (namespace, service) (mcobs_service_last_resort)) or vector(0)"),
                steps=((None, GREEN), (1, RED)),
            )
        )
        .with_row(row(ids, "Health by region"))
        .with_panel(
            timeseries_panel(
                ids,
                "Clusters up by region",
                "How many clusters of each region may serve.",
                query(
                    "sum by (region) (max by (cluster, region) (mcobs_cluster_up))", "{{region}}"
                ),
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Health score by region",
                "Average health score (0 to 1) of each region's clusters.",
                query(
                    "avg by (region) (max by (cluster, region) (mcobs_cluster_health_score))",
                    "{{region}}",
                ),
                unit="percentunit",
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            state_panel(
                ids,
                "Clusters up / down",
                "Each cluster over time.",
                query("max by (cluster) (mcobs_cluster_up)", "{{cluster}}"),
                mappings=UP_DOWN,
                steps=((None, RED), (1, GREEN)),
            )
        )
        .with_panel(
            table_panel(
                ids,
                "Clusters",
                "Every cluster now; click a row to open it.",
                query("max by (cluster, region) (mcobs_cluster_up)", instant=True, table=True),
                query(
                    "max by (cluster, region) (mcobs_cluster_health_score)",
                    instant=True,
                    table=True,
                ),
                query(
                    "time() - max by (cluster, region) "
                    "(mcobs_cluster_last_report_timestamp_seconds)",
                    instant=True,
                    table=True,
                ),
                transformations=merge_and_organize(
                    ["Time"],
                    {"Value #A": "Up", "Value #B": "Health score", "Value #C": "Report age (s)"},
                ),
                links=[drill],
            )
        )
        .with_row(_fleet_own(ids))
    )


SERVICE_SELECTOR = '{namespace=~"$namespace", service=~"$service"}'


def services() -> builder.Dashboard:
    ids = Ids()
    sel = SERVICE_SELECTOR
    in_answer = f"max by (namespace, service, cluster) (mcobs_service_in_answer{sel})"
    weight = f"max by (namespace, service, cluster) (mcobs_service_answer_weight{sel})"
    last_resort = f"max by (namespace, service) (mcobs_service_last_resort{sel})"
    answering = (
        f"sum by (namespace, service) (max by (namespace, service, cluster) "
        f"(mcobs_service_in_answer{sel}) * on (namespace, service) group_left () "
        f"(1 - {last_resort}))"
    )
    return (
        _base(
            "mcobs-services",
            "mcobs / Global services",
            "Exported services: how many clusters answer for each, their share of answers, "
            "and their ready endpoints.",
        )
        .with_variable(
            _query_variable(
                "namespace",
                "Namespace",
                "label_values(mcobs_service_info, namespace)",
                multi=True,
            )
        )
        .with_variable(
            _query_variable(
                "service",
                "Service",
                'label_values(mcobs_service_info{namespace=~"$namespace"}, service)',
                multi=True,
            )
        )
        .with_row(row(ids, "Services"))
        .with_panel(
            stat_panel(
                ids,
                "Services",
                "Exported services selected.",
                query(f"count(max by (namespace, service) (mcobs_service_info{sel})) or vector(0)"),
                width=8,
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Served by a single cluster",
                "Services with exactly one healthy cluster in their answer: one failure from "
                "last resort.",
                query(f"count(({answering}) == 1) or vector(0)"),
                steps=((None, GREEN), (1, YELLOW)),
                width=8,
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "On last resort",
                "Services no cluster can serve.",
                query(f"sum({last_resort}) or vector(0)"),
                steps=((None, GREEN), (1, RED)),
                width=8,
            )
        )
        .with_row(row(ids, "Answers"))
        .with_panel(
            timeseries_panel(
                ids,
                "Healthy clusters per service",
                "Clusters in each service's answer (0 while on last resort).",
                query(answering, "{{namespace}}/{{service}}"),
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Answer share",
                "Each cluster's share of a service's answers (weight x health over the sum).",
                query(
                    f"{weight} / on (namespace, service) group_left () "
                    f"sum by (namespace, service) ({weight})",
                    "{{namespace}}/{{service}} @ {{cluster}}",
                ),
                unit="percentunit",
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Ready endpoints",
                "Ready endpoints of each service in each cluster.",
                query(
                    f"max by (namespace, service, cluster) (mcobs_service_ready_endpoints{sel})",
                    "{{namespace}}/{{service}} @ {{cluster}}",
                ),
                min_value=0,
            )
        )
        .with_panel(
            state_panel(
                ids,
                "In answer",
                "Whether each cluster is in each service's answer.",
                query(
                    f"max by (namespace, service, cluster) (mcobs_service_in_answer{sel})",
                    "{{namespace}}/{{service}} @ {{cluster}}",
                ),
                mappings=IN_OUT,
                steps=((None, RED), (1, GREEN)),
                width=12,
            )
        )
        .with_panel(
            table_panel(
                ids,
                "Services now",
                "Strategy, clusters answering, clusters known, last resort.",
                query(
                    f"max by (namespace, service, strategy) (mcobs_service_info{sel})",
                    instant=True,
                    table=True,
                ),
                query(
                    f"sum by (namespace, service) ({in_answer})",
                    instant=True,
                    table=True,
                ),
                query(
                    f"count by (namespace, service) ({in_answer})",
                    instant=True,
                    table=True,
                ),
                query(
                    last_resort,
                    instant=True,
                    table=True,
                ),
                transformations=merge_and_organize(
                    ["Time", "Value #A"],
                    {
                        "Value #B": "Clusters answering",
                        "Value #C": "Clusters",
                        "Value #D": "Last resort",
                    },
                ),
                width=24,
            )
        )
    )


def _rate(name: str, selector: str = "") -> str:
    return f"sum(rate({name}{selector}{RATE}))"


def _quantile(q: float, by: str = "le") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate(mcobs_dns_response_seconds_bucket{RATE})))"


def dns() -> builder.Dashboard:
    ids = Ids()
    return (
        _base(
            "mcobs-dns",
            "mcobs / DNS",
            "The DNS server of every mcobs replica: query rate, response codes, response time.",
        )
        .with_row(row(ids, "Now"))
        .with_panel(
            stat_panel(
                ids,
                "Queries",
                "Queries answered per second, all replicas.",
                query(_rate("mcobs_dns_queries_total")),
                unit="reqps",
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Failed responses",
                "Share of responses with SERVFAIL, REFUSED or FORMERR.",
                query(
                    _rate("mcobs_dns_responses_total", '{rcode=~"SERVFAIL|REFUSED|FORMERR"}')
                    + " / "
                    + _rate("mcobs_dns_responses_total")
                ),
                unit="percentunit",
                steps=((None, GREEN), (0.01, YELLOW), (0.05, RED)),
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "p99 response time",
                "99th percentile of the time to answer one query.",
                query(_quantile(0.99)),
                unit="s",
                steps=((None, GREEN), (0.005, YELLOW), (0.05, RED)),
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Fast path",
                "Share of queries answered from precomputed responses.",
                query(
                    _rate("mcobs_dns_answer_path_total", '{path="fast"}')
                    + " / "
                    + _rate("mcobs_dns_answer_path_total")
                ),
                unit="percentunit",
                steps=((None, BLUE),),
            )
        )
        .with_row(row(ids, "Traffic"))
        .with_panel(
            timeseries_panel(
                ids,
                "Queries by type",
                "Queries per second by question type.",
                query(f"sum by (qtype) (rate(mcobs_dns_queries_total{RATE}))", "{{qtype}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Responses by rcode",
                "Responses per second by response code.",
                query(f"sum by (rcode) (rate(mcobs_dns_responses_total{RATE}))", "{{rcode}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_row(row(ids, "Response time"))
        .with_panel(
            timeseries_panel(
                ids,
                "Response time",
                "Percentiles of the time to answer one query.",
                query(_quantile(0.5), "p50"),
                query(_quantile(0.9), "p90"),
                query(_quantile(0.99), "p99"),
                unit="s",
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "p99 by transport and strategy",
                "99th percentile per transport (udp, tcp) and routing strategy.",
                query(_quantile(0.99, "le, transport, strategy"), "{{transport}} {{strategy}}"),
                unit="s",
                min_value=0,
            )
        )
        .with_row(row(ids, "Problems"))
        .with_panel(
            timeseries_panel(
                ids,
                "Packet problems",
                "Truncated responses, malformed and dropped packets, internal errors, and "
                "queries over the response rate limit.",
                query(_rate("mcobs_dns_truncated_total"), "truncated"),
                query(_rate("mcobs_dns_malformed_total"), "malformed"),
                query(_rate("mcobs_dns_dropped_total"), "dropped"),
                query(_rate("mcobs_dns_internal_errors_total"), "internal errors"),
                query(
                    f"sum by (action) (rate(mcobs_dns_rate_limited_total{RATE}))",
                    "rate limited, {{action}}",
                ),
                unit="pps",
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "TCP connections",
                "Connections accepted, rejected at the limit, and closed for idling.",
                query(_rate("mcobs_dns_tcp_connections_total"), "accepted"),
                query(_rate("mcobs_dns_tcp_rejected_total"), "rejected"),
                query(_rate("mcobs_dns_tcp_timeouts_total"), "timed out"),
                unit="cps",
                min_value=0,
            )
        )
    )


def failover() -> builder.Dashboard:
    ids = Ids()
    in_range = "[$__range]"
    return (
        _base(
            "mcobs-failover",
            "mcobs / Failover timeline",
            "When service answers moved off failed clusters and back, what the failover logic "
            "decided, and how its webhooks went. Decisions are also Grafana annotations "
            "tagged mcobs.",
            time_from="now-24h",
        )
        .with_row(row(ids, "In this time range"))
        .with_panel(
            stat_panel(
                ids,
                "Failovers",
                "A service's answer moved off clusters that could no longer serve it.",
                query(f"sum(increase(mcobs_failovers_total{in_range})) or vector(0)"),
                steps=((None, GREEN), (1, YELLOW)),
                unit="short",
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Recoveries",
                "A service's answer moved back onto its preferred clusters.",
                query(f"sum(increase(mcobs_recoveries_total{in_range})) or vector(0)"),
                unit="short",
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Last resort",
                "Times a service had no cluster able to serve it.",
                query(
                    f'sum(increase(mcobs_decisions_total{{kind="last_resort"}}{in_range})) '
                    "or vector(0)"
                ),
                steps=((None, GREEN), (1, RED)),
                unit="short",
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Latest failover",
                "When the latest failover of any service happened.",
                query("max(mcobs_last_failover_timestamp_seconds) * 1000"),
                unit="dateTimeFromNow",
                steps=((None, BLUE),),
            )
        )
        .with_row(row(ids, "Timeline"))
        .with_panel(
            state_panel(
                ids,
                "Clusters up / down",
                "Each cluster over time.",
                query("max by (cluster) (mcobs_cluster_up)", "{{cluster}}"),
                mappings=UP_DOWN,
                steps=((None, RED), (1, GREEN)),
            )
        )
        .with_panel(
            state_panel(
                ids,
                "Service answers",
                "Whether each cluster is in each service's answer.",
                query(
                    "max by (namespace, service, cluster) (mcobs_service_in_answer)",
                    "{{namespace}}/{{service}} @ {{cluster}}",
                ),
                mappings=IN_OUT,
                steps=((None, RED), (1, GREEN)),
                height=12,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Failovers by service",
                "Failovers per service.",
                query(
                    f"sum by (namespace, service) (increase(mcobs_failovers_total{RATE}))",
                    "{{namespace}}/{{service}}",
                ),
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Decisions by kind",
                "Decisions of the failover logic: failovers, recoveries, last resort, cluster "
                "state changes, drains.",
                query(f"sum by (kind) (increase(mcobs_decisions_total{RATE}))", "{{kind}}"),
                min_value=0,
            )
        )
        .with_row(row(ids, "Events"))
        .with_panel(events_panel(ids, "Decisions", [TAG], width=12))
        .with_panel(
            table_panel(
                ids,
                "Latest failover per service",
                "The time of each service's latest failover.",
                query(
                    "max by (namespace, service) (mcobs_last_failover_timestamp_seconds) * 1000",
                    instant=True,
                    table=True,
                ),
                transformations=merge_and_organize(["Time"], {"Value": "Latest failover"}),
                unit="dateTimeAsIso",
                width=12,
                height=10,
            )
        )
        .with_row(row(ids, "Webhook deliveries"))
        .with_panel(
            timeseries_panel(
                ids,
                "Deliveries by result",
                "Webhook delivery attempts of the decisions above, by result.",
                query(
                    f"sum by (result) (increase(mcobs_webhook_deliveries_total{RATE}))",
                    "{{result}}",
                ),
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Pending deliveries",
                "Deliveries waiting in the outbox, by consumer; and dead letters.",
                query("max by (consumer) (mcobs_webhook_pending_deliveries)", "{{consumer}}"),
                query("max(mcobs_webhook_dead_letters)", "dead letters"),
                min_value=0,
            )
        )
    )


def _cluster_own(ids: Ids) -> builder.Row:
    """A collapsed row of the cluster's own metrics, through the mcobs global query."""
    c = '{cluster="$cluster"}'
    return (
        row(ids, "The cluster's own Prometheus (through the mcobs global query)", collapsed=True)
        .with_panel(
            stat_panel(
                ids,
                "Targets up",
                "Share of the cluster's scrape targets that are up.",
                query(f"sum(up{c}) / count(up{c})", ds=GLOBAL),
                unit="percentunit",
                steps=((None, RED), (0.9, YELLOW), (0.99, GREEN)),
                ds=GLOBAL,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Targets down by job",
                "The cluster's scrape targets that are down, per job.",
                query(f"count by (job) (up{c} == 0)", "{{job}}", ds=GLOBAL),
                min_value=0,
                width=18,
                ds=GLOBAL,
            )
        )
    )


def _fleet_own(ids: Ids) -> builder.Row:
    """A collapsed row over every member cluster's Prometheus (one fan-out per panel)."""
    return row(
        ids, "Member clusters' Prometheus (through the mcobs global query)", collapsed=True
    ).with_panel(
        timeseries_panel(
            ids,
            "Scrape targets up by cluster",
            "Share of each cluster's scrape targets that are up, read from every cluster's "
            "own Prometheus at once.",
            query("sum by (cluster) (up) / count by (cluster) (up)", "{{cluster}}", ds=GLOBAL),
            unit="percentunit",
            min_value=0,
            max_value=1,
            width=24,
            ds=GLOBAL,
        )
    )


def cluster() -> builder.Dashboard:
    ids = Ids()
    c = '{cluster="$cluster"}'
    return (
        _base(
            "mcobs-cluster",
            "mcobs / Cluster",
            "One cluster: its health, its collector, the services it serves, and its own metrics.",
        )
        .with_variable(
            _query_variable(
                "cluster", "Cluster", "label_values(mcobs_cluster_up, cluster)", multi=False
            )
        )
        .annotation(event_annotation("events of $cluster", [TAG, "cluster:$cluster"], "orange"))
        .with_row(row(ids, "Health"))
        .with_panel(
            stat_panel(
                ids,
                "Up",
                "Whether the cluster may serve.",
                query(f"max(mcobs_cluster_up{c})"),
                mappings=UP_DOWN,
                steps=((None, RED), (1, GREEN)),
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Health score",
                "0 (dead) to 1 (perfect).",
                query(f"max(mcobs_cluster_health_score{c})"),
                unit="percentunit",
                steps=((None, RED), (0.5, YELLOW), (0.9, GREEN)),
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Report age",
                "Seconds since the cluster's latest observation reached the catalog.",
                query(f"time() - max(mcobs_cluster_last_report_timestamp_seconds{c})"),
                unit="s",
                steps=((None, GREEN), (10, YELLOW), (30, RED)),
            )
        )
        .with_panel(
            stat_panel(
                ids,
                "Last sweep",
                "Duration of the latest health sweep.",
                query(f"max(mcobs_collector_last_sweep_seconds{c})"),
                unit="s",
                steps=((None, GREEN), (1, YELLOW), (3, RED)),
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Health score",
                "The cluster's health score over time.",
                query(f"max(mcobs_cluster_health_score{c})", "score"),
                unit="percentunit",
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Collector errors",
                "Errors of the cluster's collector, by kind.",
                query(
                    f"sum by (kind) (increase(mcobs_collector_errors_total{c}{RATE}))", "{{kind}}"
                ),
                min_value=0,
            )
        )
        .with_row(row(ids, "Services"))
        .with_panel(
            state_panel(
                ids,
                "Services in answer",
                "Whether this cluster is in each service's answer.",
                query(
                    f"max by (namespace, service) (mcobs_service_in_answer{c})",
                    "{{namespace}}/{{service}}",
                ),
                mappings=IN_OUT,
                steps=((None, RED), (1, GREEN)),
                width=12,
            )
        )
        .with_panel(
            timeseries_panel(
                ids,
                "Ready endpoints",
                "Ready endpoints of each service in this cluster.",
                query(
                    f"max by (namespace, service) (mcobs_service_ready_endpoints{c})",
                    "{{namespace}}/{{service}}",
                ),
                min_value=0,
            )
        )
        .with_panel(events_panel(ids, "Events of this cluster", [TAG, "cluster:$cluster"]))
        .with_row(_cluster_own(ids))
    )


BUILDERS: tuple[Callable[[], builder.Dashboard], ...] = (fleet, services, dns, failover, cluster)


def to_json(dashboard: builder.Dashboard) -> Json:
    """The dashboard as plain JSON values, exactly as Grafana stores it."""
    plain: Json = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    return plain


def build_dashboards() -> list[Json]:
    """Every mcobs dashboard as JSON, stamped with its content revision."""
    return [stamp(to_json(make())) for make in BUILDERS]
