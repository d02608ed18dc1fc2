"""Small helpers over Grafana's typed dashboard builders (grafana-foundation-sdk).

Every panel reads the `$datasource` variable, gets a stable id and lets the
SDK lay it out left to right, top to bottom.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from grafana_foundation_sdk.builders import annotationslist, prometheus, stat, statetimeline
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.builders import table as table_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE_VARIABLE = "datasource"
DS = model.DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VARIABLE + "}")
GRAFANA_DS = model.DataSourceRef(type_val="grafana", uid="-- Grafana --")

GREEN, YELLOW, RED, BLUE = "green", "yellow", "red", "blue"


class Ids:
    """Panel ids: 1, 2, 3... in the order panels are made, so a dashboard's ids are stable."""

    def __init__(self) -> None:
        self._next: Iterator[int] = itertools.count(1)

    def __call__(self) -> int:
        return next(self._next)


def query(
    expr: str,
    legend: str = "",
    *,
    instant: bool = False,
    table: bool = False,
    ds: model.DataSourceRef = DS,
) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).datasource(ds)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if table:
        q = q.format(PromQueryFormat.TABLE)
    return q


def _with_refs(queries: Iterable[prometheus.Dataquery]) -> list[prometheus.Dataquery]:
    return [q.ref_id(chr(ord("A") + i)) for i, q in enumerate(queries)]


def thresholds(*steps: tuple[float | None, str]) -> builder.ThresholdsConfig:
    return (
        builder.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def value_map(**labels: tuple[str, str]) -> list[model.ValueMapping]:
    """`value_map(**{"0": ("down", RED)})`: show values as words with colours."""
    return [
        model.ValueMap(
            options={
                value: model.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, (text, color)) in enumerate(labels.items())
            }
        )
    ]


UP_DOWN = value_map(**{"0": ("down", RED), "1": ("up", GREEN)})
IN_OUT = value_map(**{"0": ("out", RED), "1": ("in", GREEN)})


def stat_panel(
    ids: Ids,
    title: str,
    description: str,
    *queries: prometheus.Dataquery,
    unit: str = "none",
    steps: tuple[tuple[float | None, str], ...] = ((None, GREEN),),
    mappings: list[model.ValueMapping] | None = None,
    width: int = 6,
    height: int = 4,
    ds: model.DataSourceRef = DS,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(ds)
        .targets(list(_with_refs(queries)))
        .unit(unit)
        .thresholds(thresholds(*steps))
        .span(width)
        .height(height)
    )
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def timeseries_panel(
    ids: Ids,
    title: str,
    description: str,
    *queries: prometheus.Dataquery,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    min_value: float | None = None,
    max_value: float | None = None,
    stacked: bool = False,
    ds: model.DataSourceRef = DS,
) -> timeseries_builder.Panel:
    panel = (
        timeseries_builder.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(ds)
        .targets(list(_with_refs(queries)))
        .unit(unit)
        .span(width)
        .height(height)
        .fill_opacity(10)
    )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if stacked:
        panel = panel.stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def state_panel(
    ids: Ids,
    title: str,
    description: str,
    *queries: prometheus.Dataquery,
    mappings: list[model.ValueMapping],
    steps: tuple[tuple[float | None, str], ...],
    width: int = 24,
    height: int = 8,
) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(DS)
        .targets(list(_with_refs(queries)))
        .mappings(mappings)
        .thresholds(thresholds(*steps))
        .color_scheme(builder.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .show_value(common.VisibilityMode.NEVER)
        .span(width)
        .height(height)
    )


def table_panel(
    ids: Ids,
    title: str,
    description: str,
    *queries: prometheus.Dataquery,
    transformations: list[model.DataTransformerConfig] | None = None,
    unit: str = "none",
    width: int = 24,
    height: int = 8,
    links: list[builder.DashboardLink] | None = None,
) -> table_builder.Panel:
    panel = (
        table_builder.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(DS)
        .targets(list(_with_refs(queries)))
        .unit(unit)
        .span(width)
        .height(height)
    )
    if transformations:
        panel = panel.transformations(transformations)
    if links:
        panel = panel.data_links(list(links))
    return panel


def merge_and_organize(
    hide: Iterable[str], rename: dict[str, str]
) -> list[model.DataTransformerConfig]:
    """Join instant table queries on their labels, hide columns and rename value columns."""
    return [
        model.DataTransformerConfig(id_val="merge", options={}),
        model.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {name: True for name in hide},
                "renameByName": rename,
            },
        ),
    ]


def events_panel(
    ids: Ids, title: str, tags: list[str], *, width: int = 24, height: int = 10
) -> annotationslist.Panel:
    """The latest mcobs annotations (failovers, recoveries) with the given tags."""
    return (
        annotationslist.Panel()
        .id(ids())
        .title(title)
        .tags(tags)
        .only_from_this_dashboard(False)
        .only_in_time_range(True)
        .limit(50)
        .show_tags(True)
        .show_time(True)
        .show_user(False)
        .span(width)
        .height(height)
    )


def row(ids: Ids, title: str, *, collapsed: bool = False) -> builder.Row:
    return builder.Row(title).id(ids()).collapsed(collapsed)


def event_annotation(name: str, tags: list[str], color: str) -> builder.AnnotationQuery:
    """A dashboard annotation query over Grafana's own annotations with all of `tags`."""
    return (
        builder.AnnotationQuery()
        .name(name)
        .datasource(GRAFANA_DS)
        .enable(True)
        .icon_color(color)
        .target(builder.AnnotationTarget().type("tags").tags(tags).limit(100).match_any(False))
    )


def builtin_annotation() -> builder.AnnotationQuery:
    return (
        builder.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(GRAFANA_DS)
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
    )
