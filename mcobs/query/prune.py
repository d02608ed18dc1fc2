"""Which clusters a PromQL query can touch, and the query each of them is sent.

In the global view every series carries `cluster="<name>"` (mcobs adds it) and a
series' own `cluster` label is renamed `original_cluster`. A member Prometheus
knows neither, so before a query goes to cluster C its selectors are rewritten:

* a selector whose `cluster` matchers all accept C loses them (they hold by
  construction there);
* a selector with a `cluster` matcher that rejects C can match nothing in C: it
  becomes `{__mcobs_cluster__="none"}` (a reserved label no series has);
* `original_cluster` matchers become `cluster` matchers.

A cluster is left out entirely (pruned) only when that is safe: the query has at
least one selector, every selector has a `cluster` matcher, none of them accepts
C, and no function that makes series out of nothing (`vector`, `absent`, `time`,
...) appears. Otherwise every cluster is asked.

The scanner is deliberately simple and conservative: it tokenizes the query and
reads only selectors (`name{...}`, `{...}`, bare metric names), grouping label
lists and function names. When it meets anything it does not understand, the
query is sent unchanged to every cluster, where Prometheus itself judges it.
Grouping clauses (`by (cluster)`, `on (cluster)`) and label functions are never
rewritten. Plain Python, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

CLUSTER = "cluster"
ORIGINAL_CLUSTER = "original_cluster"
NEVER = '__mcobs_cluster__="none"'
"""A matcher no series satisfies: replaces a selector that cannot match in a cluster."""
ANY_NAME = '__name__=~".+"'

# Functions whose result can be non-empty even when no selector matches anything.
FROM_NOTHING = frozenset(
    {
        "absent",
        "absent_over_time",
        "vector",
        "time",
        "scalar",
        "pi",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "hour",
        "minute",
        "month",
        "year",
    }
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "atan2",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]\[]*\])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:[a-zA-Z]+\d*)*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){},=<>@])
    """,
    re.VERBOSE,
)
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}
_CODE_ESCAPE = re.compile(r"x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}")

Op: TypeAlias = Literal["=", "!=", "=~", "!~"]


class Unparsable(ValueError):
    """The scanner does not understand the query (it is then sent unchanged)."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Matcher:
    """One item of a `{...}` list: a label matcher, or (label None) a quoted metric name."""

    label: str | None
    op: Op
    value: str
    text: str
    """Its source text."""
    value_text: str
    """The source text of its quoted value."""

    def accepts(self, actual: str) -> bool:
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    @property
    def non_empty(self) -> bool:
        """Whether it rejects series without the label (Prometheus needs one such)."""
        return self.label is None or not self.accepts("")


@dataclass(frozen=True, slots=True)
class Selector:
    has_name: bool
    """A metric name stands before the braces."""
    matchers: tuple[Matcher, ...]
    span: tuple[int, int] | None
    """Source offsets of `{...}`; None for a bare metric name."""

    @property
    def cluster_matchers(self) -> tuple[Matcher, ...]:
        return tuple(m for m in self.matchers if m.label == CLUSTER)

    def accepts(self, cluster: str) -> bool:
        """Whether its `cluster` matchers let it match series of `cluster`."""
        return all(m.accepts(cluster) for m in self.cluster_matchers)

    @property
    def needs_rewrite(self) -> bool:
        return any(m.label in (CLUSTER, ORIGINAL_CLUSTER) for m in self.matchers)

    def rewritten(self, cluster: str) -> str:
        """The `{...}` text to send to `cluster`."""
        if not self.accepts(cluster):
            return "{" + NEVER + "}"
        kept = [m for m in self.matchers if m.label != CLUSTER]
        parts = [
            f"{CLUSTER}{m.op}{m.value_text}" if m.label == ORIGINAL_CLUSTER else m.text
            for m in kept
        ]
        if not self.has_name and not any(m.non_empty for m in kept):
            parts.append(ANY_NAME)
        return "{" + ", ".join(parts) + "}" if parts else ""


@dataclass(frozen=True, slots=True)
class Scan:
    selectors: tuple[Selector, ...]
    functions: frozenset[str]

    @property
    def prunable(self) -> bool:
        return (
            bool(self.selectors)
            and all(s.cluster_matchers for s in self.selectors)
            and not (self.functions & FROM_NOTHING)
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """What to ask: the expression per cluster, and the clusters left out."""

    queries: Mapping[str, str]
    pruned: tuple[str, ...] = ()
    unparsed: str | None = None
    """Why the query was sent unchanged everywhere, when the scanner gave up."""


def unquote(text: str) -> str:
    """The value of a PromQL string literal (double, single or back quotes)."""
    if text[0] == "`":
        return text[1:-1]
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        code = _CODE_ESCAPE.match(body, i + 1)
        if code is None:
            raise Unparsable(f"unknown escape sequence '\\{nxt}'")
        digits = code.group()
        out.append(chr(int(digits, 8) if digits[0].isdigit() else int(digits[1:], 16)))
        i = code.end()
    return "".join(out)


def _tokens(expr: str) -> list[_Token]:
    found: list[_Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise Unparsable(f"unexpected character {expr[pos]!r} at {pos + 1}")
        if m.lastgroup != "space":
            found.append(_Token(m.lastgroup or "", m.group(), m.start(), m.end()))
        pos = m.end()
    return found


def _is(tok: _Token | None, text: str) -> bool:
    return tok is not None and tok.kind == "op" and tok.text == text


class _Scanner:
    def __init__(self, expr: str) -> None:
        self.tokens = _tokens(expr)
        self.i = 0

    def peek(self, ahead: int = 0) -> _Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise Unparsable("unexpected end of input")
        self.i += 1
        return tok

    def scan(self) -> Scan:
        selectors: list[Selector] = []
        functions: set[str] = set()
        while (tok := self.peek()) is not None:
            nxt = self.peek(1)
            if tok.kind == "ident":
                name = tok.text
                if name in _GROUPING:
                    self.i += 1
                    if _is(nxt, "("):
                        self.label_list()
                elif _is(nxt, "("):
                    functions.add(name)
                    self.i += 1
                elif name in _KEYWORDS or name.lower() in ("inf", "nan"):
                    self.i += 1
                elif _is(nxt, "{"):
                    self.i += 1
                    selectors.append(self.matchers(has_name=True))
                else:
                    self.i += 1
                    selectors.append(Selector(True, (), None))
            elif _is(tok, "{"):
                selectors.append(self.matchers(has_name=False))
            elif _is(tok, "}"):
                raise Unparsable(f"unexpected '}}' at {tok.start + 1}")
            else:
                self.i += 1
        return Scan(tuple(selectors), frozenset(functions))

    def label_list(self) -> None:
        self.take()  # "("
        while not _is(self.peek(), ")"):
            tok = self.take()
            if tok.kind not in ("ident", "string") and not _is(tok, ","):
                raise Unparsable(f"unexpected {tok.text!r} in a label list at {tok.start + 1}")
        self.take()

    def matchers(self, *, has_name: bool) -> Selector:
        opening = self.take()
        found: list[Matcher] = []
        while not _is(self.peek(), "}"):
            label = self.take()
            if label.kind not in ("ident", "string"):
                raise Unparsable(f"expected a label name at {label.start + 1}")
            following = self.peek()
            if label.kind == "string" and (_is(following, ",") or _is(following, "}")):
                value = unquote(label.text)
                found.append(Matcher(None, "=", value, label.text, label.text))
            else:
                found.append(self.matcher(label))
            if _is(self.peek(), ","):
                self.take()
            elif not _is(self.peek(), "}"):
                raise Unparsable(f"expected ',' or '}}' after {found[-1].text!r}")
        closing = self.take()
        return Selector(has_name, tuple(found), (opening.start, closing.end))

    def matcher(self, label: _Token) -> Matcher:
        op = self.take()
        if op.kind != "op" or op.text not in ("=", "!=", "=~", "!~"):
            raise Unparsable(f"expected a label matching operator at {op.start + 1}")
        value = self.take()
        if value.kind != "string":
            raise Unparsable(f"expected a quoted label value at {value.start + 1}")
        name = unquote(label.text) if label.kind == "string" else label.text
        text = unquote(value.text)
        if op.text in ("=~", "!~"):
            try:
                re.compile(text)
            except re.error as exc:
                raise Unparsable(f"regular expression {text!r}: {exc}") from None
        source = f"{label.text}{op.text}{value.text}"
        return Matcher(name, op.text, text, source, value.text)  # type: ignore[arg-type]


def scan(expr: str) -> Scan:
    """The selectors and function names of `expr`; raises Unparsable."""
    return _Scanner(expr).scan()


def _rewrite(expr: str, selectors: Sequence[Selector], cluster: str) -> str:
    out: list[str] = []
    pos = 0
    for selector in selectors:
        if selector.span is None or not selector.needs_rewrite:
            continue
        start, end = selector.span
        out.append(expr[pos:start])
        out.append(selector.rewritten(cluster))
        pos = end
    out.append(expr[pos:])
    return "".join(out)


def plan_query(expr: str, clusters: Iterable[str]) -> Plan:
    """The expression to send to each cluster that can contribute to `expr`."""
    names = sorted(clusters)
    try:
        found = scan(expr)
    except Unparsable as exc:
        return Plan({name: expr for name in names}, unparsed=str(exc))
    if found.prunable:
        asked = [n for n in names if any(s.accepts(n) for s in found.selectors)]
    else:
        asked = names
    pruned = tuple(n for n in names if n not in asked)
    if not any(s.needs_rewrite for s in found.selectors):
        return Plan({name: expr for name in asked}, pruned)
    return Plan({name: _rewrite(expr, found.selectors, name) for name in asked}, pruned)


def plan_matches(matches: Sequence[str], clusters: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The `match[]` selectors to send to each cluster (series, labels, label values).

    Without selectors every cluster is asked without any. A selector is sent only
    to the clusters its `cluster` matchers accept, rewritten for them; a cluster
    that no selector can match is left out. A selector the scanner cannot read
    goes unchanged to every cluster.
    """
    names = sorted(clusters)
    if not matches:
        return {name: () for name in names}
    per_cluster: dict[str, list[str]] = {name: [] for name in names}
    for match in matches:
        try:
            found = scan(match)
        except Unparsable:
            found = None
        for name in names:
            if found is None:
                per_cluster[name].append(match)
            elif all(s.accepts(name) for s in found.selectors):
                per_cluster[name].append(_rewrite(match, found.selectors, name))
    return {name: tuple(sent) for name, sent in per_cluster.items() if sent}
