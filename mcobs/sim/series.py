"""The Prometheus series of one simulated cluster, and expressions pinned to a value.

Series have no history: each holds its current value, and every query sees it
at whatever time it asks about. Plain Python, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeAlias

LabelSet: TypeAlias = tuple[tuple[str, str], ...]
"""Sorted (name, value) pairs, without `__name__`."""

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    """Without `__name__`."""
    value: float

    def with_name(self) -> dict[str, str]:
        return {"__name__": self.name, **self.labels}


@dataclass(frozen=True, slots=True)
class Pin:
    """A pinned query answer: one sample without labels, or no data when `value` is None."""

    value: float | None


def label_problems(name: str, labels: Mapping[str, str]) -> list[str]:
    problems = []
    if not METRIC_NAME.fullmatch(name):
        problems.append(f"metric name {name!r} is not a valid Prometheus metric name")
    for label in labels:
        if not LABEL_NAME.fullmatch(label) or label.startswith("__"):
            problems.append(f"label name {label!r} is not valid")
    return problems


class SeriesStore:
    """Current values by metric name and label set, plus pinned expression answers."""

    __slots__ = ("_pins", "_series")

    def __init__(self) -> None:
        self._series: dict[str, dict[LabelSet, float]] = {}
        self._pins: dict[str, Pin] = {}

    def set(self, name: str, labels: Mapping[str, str], value: float | None) -> None:
        """Set a series; None removes it. Raises ValueError for invalid names."""
        problems = label_problems(name, labels)
        if problems:
            raise ValueError("; ".join(problems))
        key: LabelSet = tuple(sorted(labels.items()))
        if value is None:
            by_labels = self._series.get(name, {})
            by_labels.pop(key, None)
            if not by_labels:
                self._series.pop(name, None)
            return
        self._series.setdefault(name, {})[key] = float(value)

    def value(self, name: str, labels: Mapping[str, str]) -> float | None:
        return self._series.get(name, {}).get(tuple(sorted(labels.items())))

    def names(self) -> list[str]:
        return sorted(self._series)

    def samples(self, name: str | None = None) -> list[Sample]:
        """Every sample of metric `name` (all metrics when None), sorted."""
        names = self.names() if name is None else [name]
        return [
            Sample(n, MappingProxyType(dict(key)), value)
            for n in names
            for key, value in sorted(self._series.get(n, {}).items())
        ]

    def pin(self, expr: str, value: float | None) -> None:
        """Answer the exact expression `expr` with `value` (None: an empty result)."""
        self._pins[expr.strip()] = Pin(value)

    def unpin(self, expr: str) -> bool:
        return self._pins.pop(expr.strip(), None) is not None

    def pinned(self, expr: str) -> Pin | None:
        return self._pins.get(expr.strip())

    def pins(self) -> dict[str, float | None]:
        return {expr: pin.value for expr, pin in sorted(self._pins.items())}


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: `1`, `0.25`, `NaN`, `+Inf`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(store: SeriesStore) -> str:
    """Every series in the Prometheus text format (version 0.0.4)."""
    lines: list[str] = []
    for name in store.names():
        kind = "counter" if name.endswith("_total") else "gauge"
        lines.append(f"# TYPE {name} {kind}")
        for sample in store.samples(name):
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
            selector = f"{name}{{{labels}}}" if labels else name
            lines.append(f"{selector} {format_value(sample.value)}")
    return "\n".join(lines) + "\n"
