"""A tiny PromQL subset: parse an expression, evaluate it over a `SeriesStore`.

Supported: number literals, instant selectors `name{label="v"}` with `=`, `!=`,
`=~`, `!~` (anchored regular expressions), the aggregations `sum`, `count`,
`avg`, `min`, `max` with `by (...)` / `without (...)`, unary minus and the
arithmetic operators `+ - * /` between scalars and vectors (one-to-one matching
on identical label sets). Anything else is rejected as `bad_data`, the way
Prometheus rejects a query it cannot parse; tests of other PromQL pin the
expression's answer in the `SeriesStore` instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from mcobs.sim.series import SeriesStore

ErrorType: TypeAlias = Literal["bad_data", "execution"]


class PromQLError(Exception):
    """A query Prometheus would refuse; `error_type` is its `errorType`."""

    def __init__(self, message: str, error_type: ErrorType = "bad_data") -> None:
        super().__init__(message)
        self.error_type: ErrorType = error_type


# --- syntax tree -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    value: float


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    def matches(self, actual: str) -> bool:
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True, slots=True)
class Selector:
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True, slots=True)
class Aggregate:
    op: str
    expr: Expr
    labels: tuple[str, ...] = ()
    without: bool = False


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Negate:
    expr: Expr


Expr: TypeAlias = Number | Selector | Aggregate | Binary | Negate

AGGREGATIONS = frozenset({"sum", "count", "avg", "min", "max"})
_UNSUPPORTED_AGGREGATIONS = frozenset(
    {"topk", "bottomk", "quantile", "stddev", "stdvar", "count_values", "group", "limitk"}
)
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool"})

# --- lexer -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){}\[\],=<>@])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int


def _unquote(text: str, pos: int) -> str:
    if text[0] == "`":
        return text[1:-1]
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise _error(pos + i + 1, f"unknown escape sequence '\\{nxt}'")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _error(pos: int, message: str) -> PromQLError:
    return PromQLError(f"1:{pos + 1}: parse error: {message}")


def _tokens(query: str) -> list[_Token]:
    found: list[_Token] = []
    pos = 0
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if m is None:
            raise _error(pos, f"unexpected character: {query[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "space":
            found.append(_Token(kind, m.group(), pos))
        pos = m.end()
    found.append(_Token("eof", "", len(query)))
    return found


# --- parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = _tokens(query)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> _Token:
        if self.tok.text != text or self.tok.kind not in ("op",):
            raise self.unexpected(f'expected "{text}"')
        return self.take()

    def unexpected(self, hint: str = "") -> PromQLError:
        tok = self.tok
        what = "end of input" if tok.kind == "eof" else repr(tok.text)
        return _error(tok.pos, f"unexpected {what}" + (f", {hint}" if hint else ""))

    def parse(self) -> Expr:
        if self.tok.kind == "eof":
            raise _error(0, "no expression found in input")
        expr = self.additive()
        if self.tok.kind != "eof":
            raise self.unexpected()
        return expr

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.take().text
            left = Binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.take().text
            left = Binary(op, left, self.unary())
        self.refuse_unsupported_operator()
        return left

    def refuse_unsupported_operator(self) -> None:
        tok = self.tok
        if tok.kind == "op" and tok.text in ("%", "^", "==", "!=", ">", "<", ">=", "<="):
            raise _error(tok.pos, f"operator {tok.text!r} is not supported by the simulator")
        if tok.kind == "op" and tok.text in ("[", "@"):
            raise _error(tok.pos, "range vectors and modifiers are not supported by the simulator")
        if tok.kind == "ident" and tok.text in ("offset", "and", "or", "unless"):
            raise _error(tok.pos, f"{tok.text!r} is not supported by the simulator")

    def unary(self) -> Expr:
        if self.tok.kind == "op" and self.tok.text in ("-", "+"):
            sign = self.take().text
            inner = self.unary()
            if isinstance(inner, Number):
                return Number(-inner.value if sign == "-" else inner.value)
            return Negate(inner) if sign == "-" else inner
        return self.primary()

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "number":
            self.take()
            return Number(float(tok.text))
        if tok.kind == "op" and tok.text == "(":
            self.take()
            inner = self.additive()
            self.expect(")")
            return inner
        if tok.kind == "op" and tok.text == "{":
            matchers = self.matchers()
            if all(m.matches("") for m in matchers):
                raise _error(tok.pos, "vector selector must contain at least one non-empty matcher")
            return Selector(matchers)
        if tok.kind == "ident":
            return self.ident_expr()
        raise self.unexpected()

    def ident_expr(self) -> Expr:
        tok = self.take()
        name = tok.text
        if name.lower() in ("inf", "nan"):
            return Number(float(name))
        nxt = self.tok
        if name in AGGREGATIONS and nxt.text in ("(", "by", "without"):
            return self.aggregate(name)
        if nxt.kind == "op" and nxt.text == "(":
            if name in _UNSUPPORTED_AGGREGATIONS:
                raise _error(tok.pos, f"aggregation {name!r} is not supported by the simulator")
            raise _error(tok.pos, f"function {name!r} is not supported by the simulator")
        if name in _KEYWORDS:
            raise _error(tok.pos, f"unexpected keyword {name!r}")
        matchers: tuple[Matcher, ...] = ()
        if nxt.kind == "op" and nxt.text == "{":
            matchers = self.matchers()
        if any(m.label == "__name__" for m in matchers):
            raise _error(tok.pos, "metric name must not be set twice")
        return Selector((Matcher("__name__", "=", name), *matchers))

    def matchers(self) -> tuple[Matcher, ...]:
        self.expect("{")
        found: list[Matcher] = []
        while not (self.tok.kind == "op" and self.tok.text == "}"):
            label = self.take()
            if label.kind != "ident" or ":" in label.text:
                self.i -= 1
                raise self.unexpected("expected a label name")
            op = self.take()
            if op.text not in ("=", "!=", "=~", "!~"):
                self.i -= 1
                raise self.unexpected("expected a label matching operator")
            value = self.take()
            if value.kind != "string":
                self.i -= 1
                raise self.unexpected("expected a quoted label value")
            text = _unquote(value.text, value.pos)
            if op.text in ("=~", "!~"):
                try:
                    re.compile(text)
                except re.error as exc:
                    raise _error(value.pos, f"invalid regular expression {text!r}: {exc}") from None
            found.append(Matcher(label.text, op.text, text))  # type: ignore[arg-type]
            if self.tok.kind == "op" and self.tok.text == ",":
                self.take()
            elif not (self.tok.kind == "op" and self.tok.text == "}"):
                raise self.unexpected('expected "," or "}"')
        self.take()
        return tuple(found)

    def grouping(self) -> tuple[bool, tuple[str, ...]]:
        without = self.take().text == "without"
        self.expect("(")
        labels: list[str] = []
        while not (self.tok.kind == "op" and self.tok.text == ")"):
            label = self.take()
            if label.kind != "ident":
                self.i -= 1
                raise self.unexpected("expected a label name")
            labels.append(label.text)
            if self.tok.kind == "op" and self.tok.text == ",":
                self.take()
        self.take()
        return without, tuple(labels)

    def aggregate(self, op: str) -> Aggregate:
        without = False
        labels: tuple[str, ...] = ()
        if self.tok.text in ("by", "without"):
            without, labels = self.grouping()
        self.expect("(")
        inner = self.additive()
        if self.tok.kind == "op" and self.tok.text == ",":
            raise self.unexpected(f"{op} takes one argument")
        self.expect(")")
        if self.tok.kind == "ident" and self.tok.text in ("by", "without"):
            if labels or without:
                raise self.unexpected("grouping given twice")
            without, labels = self.grouping()
        return Aggregate(op, inner, labels, without)


def parse(query: str) -> Expr:
    """The syntax tree of `query`; raises PromQLError (bad_data) when it is not supported."""
    return _Parser(query).parse()


# --- evaluation --------------------------------------------------------------------------

Labels: TypeAlias = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Scalar:
    value: float


@dataclass(frozen=True, slots=True)
class Vector:
    samples: tuple[tuple[Labels, float], ...]
    """(sorted labels including `__name__` where kept, value)."""


Value: TypeAlias = Scalar | Vector


def _divide(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
}


def _drop_name(labels: Labels) -> Labels:
    return tuple(kv for kv in labels if kv[0] != "__name__")


def _select(store: SeriesStore, selector: Selector) -> Vector:
    names = [m.value for m in selector.matchers if m.label == "__name__" and m.op == "="]
    candidates = store.samples(names[0]) if names else store.samples()
    found = []
    for sample in candidates:
        labels: Mapping[str, str] = sample.with_name()
        if all(m.matches(labels.get(m.label, "")) for m in selector.matchers):
            found.append((tuple(sorted(labels.items())), sample.value))
    return Vector(tuple(found))


def _aggregate(node: Aggregate, vector: Vector) -> Vector:
    groups: dict[Labels, list[float]] = {}
    for labels, value in vector.samples:
        if node.without:
            drop = {*node.labels, "__name__"}
            key = tuple(kv for kv in labels if kv[0] not in drop)
        else:
            key = tuple(kv for kv in labels if kv[0] in node.labels)
        groups.setdefault(key, []).append(value)
    out = []
    for key, values in sorted(groups.items()):
        if node.op == "sum":
            result = math.fsum(values)
        elif node.op == "count":
            result = float(len(values))
        elif node.op == "avg":
            result = math.fsum(values) / len(values)
        elif node.op == "min":
            result = min(values)
        else:
            result = max(values)
        out.append((key, result))
    return Vector(tuple(out))


def _binary(op: str, left: Value, right: Value) -> Value:
    fn = _ARITHMETIC[op]
    if isinstance(left, Scalar) and isinstance(right, Scalar):
        return Scalar(fn(left.value, right.value))
    if isinstance(left, Vector) and isinstance(right, Scalar):
        return Vector(tuple((_drop_name(lb), fn(v, right.value)) for lb, v in left.samples))
    if isinstance(left, Scalar) and isinstance(right, Vector):
        return Vector(tuple((_drop_name(lb), fn(left.value, v)) for lb, v in right.samples))
    assert isinstance(left, Vector) and isinstance(right, Vector)
    rights: dict[Labels, float] = {}
    for labels, value in right.samples:
        key = _drop_name(labels)
        if key in rights:
            raise PromQLError(
                "found duplicate series for the match group on the right hand-side of the "
                "operation; many-to-many matching not allowed",
                "execution",
            )
        rights[key] = value
    out: list[tuple[Labels, float]] = []
    seen: set[Labels] = set()
    for labels, value in left.samples:
        key = _drop_name(labels)
        if key not in rights:
            continue
        if key in seen:
            raise PromQLError(
                "many-to-many matching not allowed: matching labels must be unique on one side",
                "execution",
            )
        seen.add(key)
        out.append((key, fn(value, rights[key])))
    return Vector(tuple(out))


def evaluate(expr: Expr, store: SeriesStore) -> Value:
    """The value of `expr` over the current series of `store`."""
    if isinstance(expr, Number):
        return Scalar(expr.value)
    if isinstance(expr, Selector):
        return _select(store, expr)
    if isinstance(expr, Aggregate):
        inner = evaluate(expr.expr, store)
        if not isinstance(inner, Vector):
            raise PromQLError(
                f"expected type instant vector in aggregation expression, got scalar ({expr.op})"
            )
        return _aggregate(expr, inner)
    if isinstance(expr, Negate):
        value = evaluate(expr.expr, store)
        if isinstance(value, Scalar):
            return Scalar(-value.value)
        return Vector(tuple((_drop_name(lb), -v) for lb, v in value.samples))
    return _binary(expr.op, evaluate(expr.left, store), evaluate(expr.right, store))


def query(store: SeriesStore, expr: str) -> Value:
    """Answer `expr`: its pinned value if pinned, else the evaluation of its parse."""
    pin = store.pinned(expr)
    if pin is not None:
        return Vector(() if pin.value is None else (((), pin.value),))
    return evaluate(parse(expr), store)
