"""Elementwise operators: unary maps, broadcasting and variadic ops, comparisons, Where and casts."""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, ClassVar, NamedTuple

import torch
import z3

from fuzzer.core.dtypes import ALL, FLOATS, NUMERIC, dtype
from specs.base import AbsTensor, OpSpec, Symbols, any_rank, broadcast_requires, broadcast_shape, register, same_dtype
from specs.values import ZERO, Need, exactly
from specs.values import Values as V

Loss = Callable[..., torch.Tensor]
MARGIN = 0.05
LOG_MIN = 0.1
POW_BASE_MIN = 0.1
TRUTH = V(0, 1, integral=True, piled=frozenset({0.0, 1.0}))  # a comparison's: many zeros and many ones
UNIT = Need(-1 + MARGIN, 1 - MARGIN)
NONZERO = Need(nonzero=True)
FRACTIONAL = Need(fractional=True)
WHOLE = V(integral=True)
FINITE_CHECK = exactly(0)  # IsNaN, IsInf: always false on the finite values the search keeps
SIGNED = ("float32", "float64", "float16", "int8", "int32", "int64")


def above(x: torch.Tensor, bound: float) -> torch.Tensor:
    """Loss that is zero once every element of x exceeds `bound`."""
    return torch.relu(bound - x).sum()


def below(x: torch.Tensor, bound: float) -> torch.Tensor:
    return torch.relu(x - bound).sum()


def unsigned(x: torch.Tensor) -> torch.Tensor:
    """|x| with slope 1 at 0 (abs has 0 there), so a value exactly on a boundary is still pushed off it."""
    return torch.where(x >= 0, x, -x)


def away_from_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(MARGIN - unsigned(x)).sum()


def off_zero(x: torch.Tensor) -> torch.Tensor:
    """Exact zeros are safe; tiny nonzero values flip sign or truth under rounding noise."""
    return (torch.relu(MARGIN - x.abs()) * (x != 0)).sum()


def away_from_integers(x: torch.Tensor) -> torch.Tensor:
    """Floor/Ceil/truncation flip on rounding noise next to an integer; keep a gap."""
    return torch.relu(MARGIN - unsigned(x - torch.round(x))).sum()


def away_from_halves(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(MARGIN - unsigned(x - torch.floor(x) - 0.5)).sum()


def inside_unit_interval(x: torch.Tensor) -> torch.Tensor:
    """asin, acos and atanh are NaN (or infinite) outside (-1, 1)."""
    return below(x.abs(), 1 - MARGIN)


def away_from_poles(x: torch.Tensor) -> torch.Tensor:
    """tan blows up where cos is zero; keep |tan| around 10 at most."""
    return torch.relu(2 * MARGIN - torch.cos(x).abs()).sum()


def between_tan_poles(x: V) -> tuple[float, float]:
    """Tan rises between its poles at -pi/2 and pi/2: bounds inside them map to bounds (else NaN: none)."""
    if -math.pi / 2 < x.low and x.high < math.pi / 2:
        return math.tan(x.low), math.tan(x.high)
    return math.nan, math.nan


def through_turns(f: Callable[[float], float], first_turn: float) -> Callable[[V], tuple[float, float]]:
    """Sin or Cos over finite bounds: f at the bounds and at each crest or trough between them (one every
    pi from `first_turn`); bounds a full period apart or unbounded say nothing (NaN)."""

    def interval(x: V) -> tuple[float, float]:
        if not (math.isfinite(x.low) and math.isfinite(x.high)) or x.high - x.low >= 2 * math.pi:
            return math.nan, math.nan
        turn = first_turn + math.ceil((x.low - first_turn) / math.pi) * math.pi
        points = [x.low, x.high, *(t for t in (turn, turn + math.pi) if t <= x.high)]
        held = [f(point) for point in points]
        return min(held), max(held)

    return interval


EXP_HEADROOM = 10.0  # e^10 ~ 22026: room for the ops after an Exp in float32 and float64


def exp_limit(float_type: torch.dtype) -> float:
    """Keep exp(x) well inside the dtype, leaving headroom for the ops after it."""
    return min(EXP_HEADROOM, math.log(torch.finfo(float_type).max) / 2)


def no_exp_overflow(x: torch.Tensor) -> torch.Tensor:
    return below(x, exp_limit(x.dtype))


EXP_LIMITS = tuple((name, exp_limit(dtype(name).torch)) for name in FLOATS)
BELOW_EXP_LIMIT = Need(high=EXP_HEADROOM, dtype_high=EXP_LIMITS)
WITHIN_EXP_LIMITS = Need(
    -EXP_HEADROOM, EXP_HEADROOM, dtype_low=tuple((name, -limit) for name, limit in EXP_LIMITS), dtype_high=EXP_LIMITS
)


def floats_only(loss: Loss) -> Loss:
    """Integers are exact, so a margin against rounding noise applies to float inputs only."""

    def guarded(x: torch.Tensor, *rest: Any, **params: Any) -> torch.Tensor:
        return loss(x, *rest, **params) if x.is_floating_point() else torch.zeros(())

    return guarded


def representable(exact: torch.Tensor, target: torch.dtype) -> torch.Tensor:
    """Zero while a result computed in float64 fits `target`: compilers may wrap, saturate or
    exploit integer overflow as undefined, and a float overflow leaves no room for later ops."""
    if target.is_floating_point:
        return below(exact.abs(), torch.finfo(target).max / 4)
    info = torch.iinfo(target)
    return above(exact, info.min) + below(exact, info.max)


def no_overflow(fn: Callable[..., torch.Tensor]) -> Loss:
    """Domain of an arithmetic op: its exact result (float64) fits the operands' dtype."""

    def loss(*xs: torch.Tensor) -> torch.Tensor:
        return representable(fn(*(x.double() for x in xs)), xs[0].dtype)

    return loss


class Param(NamedTuple):
    """A float or int attribute: ONNX's default (used when the attribute is left out) and other values."""

    default: float
    choices: tuple[float, ...]


class TableOp(OpSpec):
    """An op declared as a table row: f, its domain and its params; the family base gives shapes.

    Each param is drawn from its choices or left out (None), in which case ONNX uses its
    default and so does the torch lowering, so frontends' handling of defaults is exercised."""

    torch_fn: ClassVar[Callable[..., torch.Tensor]]
    domain: ClassVar[Loss | None] = None
    params: ClassVar[dict[str, Param]] = {}
    image: ClassVar[V] = V()  # bounds of f whatever its inputs
    keeps_zero: ClassVar[bool] = False  # f is zero where an input is, so forced zeros survive it
    keeps_sign: ClassVar[bool] = False  # f(x) has the sign of x (or its opposite): mixed signs stay mixed
    monotone: ClassVar[int] = 0  # 1: f never decreases in any input (for every param choice), -1: never increases
    pole: ClassVar[float | None] = None  # where a monotone f jumps (Reciprocal at 0): it is monotone on each side
    falling: ClassVar[tuple[int, ...]] = ()  # inputs in which a monotone f runs the other way (Sub's subtrahend)
    valley: ClassVar[float | None] = None  # where f, falling before and rising after, is lowest (Mish, HardSwish)
    interval: ClassVar[Callable[[V, V], tuple[float, float]] | None] = None  # f's bounds from two inputs' bounds
    exact_in_float64: ClassVar[bool] = True  # f of a float64 value is f of that value in each dtype f takes

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {name: rng.choice((None, *param.choices)) for name, param in cls.params.items()}

    def params_filled(self) -> dict[str, float]:
        """Every param's effective value, defaults filled in."""
        return {
            name: param.default if self.attrs[name] is None else self.attrs[name]
            for name, param in type(self).params.items()
        }

    def onnx_attrs(self) -> dict[str, Any]:
        return dict(self.attrs)

    def to_torch(self, *xs: torch.Tensor) -> torch.Tensor:
        return type(self).torch_fn(*xs, **self.params_filled())

    def values(self, inputs: list[V]) -> list[V]:
        cls = type(self)
        if cls.moves_values:
            return [inputs[0]]
        steered = all(v.steered for v in inputs)
        centered = cls.keeps_sign and inputs[0].centered
        forced, piled = (
            self._carried(inputs, [v.forced for v in inputs]),
            self._carried(inputs, [v.piled for v in inputs]),
        )
        out = replace(cls.image, forced=forced, centered=centered, steered=steered, piled=cls.image.piled | piled)
        if self.direction() and not (cls.pole is not None and inputs[0].low <= cls.pole <= inputs[0].high):
            out = replace(out, **self._mapped_bounds(inputs))
        if cls.valley is not None:
            out = replace(out, **self._valley_bounds(inputs[0], cls.valley))
        if cls.interval is not None:
            out = replace(out, **self._within_image(*cls.interval(*inputs)))
        return [out]

    def _carried(self, inputs: list[V], held: list[frozenset[float]]) -> frozenset[float]:
        """What f makes of values its inputs hold (forced or piled): f of each, where every other input
        holds one value everywhere (Exp of a padding's zeros is ones, 0 - an exclusive CumSum's zeros
        is zero), else the zeros a zero-keeping f keeps (a product's)."""
        cls = type(self)
        if not any(held):
            return frozenset()
        varying = [i for i, x in enumerate(inputs) if x.one_value is None]
        if len(varying) <= 1 and cls.exact_in_float64:
            position = varying[0] if varying else 0
            return self.mapped(held[position], {i: x.low for i, x in enumerate(inputs) if i != position})
        return ZERO if (cls.keeps_zero or cls.keeps_sign) and any(0.0 in values for values in held) else frozenset()

    def direction(self) -> int:
        """1 where f never decreases in any input, -1 where it never increases, 0 where neither, for
        these params."""
        return type(self).monotone

    def _mapped_bounds(self, inputs: list[V]) -> dict[str, float]:
        """A monotone f maps its inputs' bounds to bounds of f (Sinh of a LogSoftmax stays <= 0, so
        does a Max of LogSoftmaxes); where f is undefined at a bound (Log of -inf, inf - inf), the
        image's bound stays."""
        corners = [[x.high, x.low] if i in type(self).falling else [x.low, x.high] for i, x in enumerate(inputs)]
        ends = self.to_torch(*(torch.tensor(corner, dtype=torch.float64) for corner in corners)).tolist()
        return self._within_image(*(ends if self.direction() > 0 else ends[::-1]))

    def _valley_bounds(self, x: V, valley: float) -> dict[str, float]:
        """Bounds of an f that falls to its lowest at `valley` and rises after (Mish of x >= 0 is >= 0)."""
        left, right, bottom = self.to_torch(torch.tensor([x.low, x.high, valley], dtype=torch.float64)).tolist()
        if x.low >= valley:
            return self._within_image(left, right)
        if x.high <= valley:
            return self._within_image(right, left)
        return self._within_image(bottom, math.nan if math.isnan(left) else max(left, right))

    def _within_image(self, low: float, high: float) -> dict[str, float]:
        """Bounds computed at the inputs' bounds, inside the image; NaN (Log of -inf, inf - inf) says nothing."""
        image = type(self).image
        return {
            "low": image.low if math.isnan(low) else max(image.low, low),
            "high": image.high if math.isnan(high) else min(image.high, high),
        }

    def domain_loss(self, *xs: torch.Tensor) -> torch.Tensor | None:
        domain = type(self).domain
        return domain(*xs, **self.params_filled()) if domain else None


# Where a monotone f is evaluated to invert it: zero and +-1e-4 .. 1e4, log-spaced.
_MAGNITUDES = torch.logspace(-4, 4, 2000, dtype=torch.float64)
_GRID = torch.cat([-_MAGNITUDES.flip(0), torch.zeros(1, dtype=torch.float64), _MAGNITUDES])


@functools.cache
def _preimage(cls: type[TableOp], params: tuple[tuple[str, float], ...], need: Need) -> Need:
    """The x (on a fine grid) where a monotone f(x) meets `need`, as a need on x; the grid point
    inside the preimage stands for its edge, so the need asked of x is never looser than the true one.
    Across a pole the preimage of a need on both sides of it is two rays: their hull asks nothing."""
    held = cls.torch_fn(_GRID, **dict(params))
    inside = (held >= need.low) & (held <= need.high)  # NaN is never inside
    if cls.pole is not None:
        inside &= torch.ne(_GRID, cls.pole)
    if not bool(inside.any()):
        return Need(math.inf, -math.inf)  # nothing meets it
    points = _GRID[inside]
    low = -math.inf if bool(inside[0]) else float(points.min())
    high = math.inf if bool(inside[-1]) else float(points.max())
    return Need(low, high)


def declare(
    base: type[TableOp], name: str, torch_fn: Callable[..., torch.Tensor], domain: Loss | None, **fields: Any
) -> type[OpSpec]:
    """Make and register one table row's spec class."""
    attrs = {"onnx_op": name, "torch_fn": staticmethod(torch_fn), "domain": staticmethod(domain) if domain else None}
    return register(type(name, (base,), attrs | fields))


class Unary(TableOp):
    """y = f(x, **params), same shape."""

    ranks = any_rank(1)
    dtypes = same_dtype(1, FLOATS)
    out_dtype: ClassVar[str | None] = None  # None: same as the input

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), type(self).out_dtype or inputs[0].dtype)]

    def pulled_need(self, need: Need) -> Need | None:
        cls = type(self)
        bends = cls.valley is not None  # the preimage's hull: what x must hold, not all it may
        if cls.moves_values or not (self.direction() or bends) or need.nonzero:  # f(x) != 0 is no interval of x
            return super().pulled_need(need)
        return _preimage(cls, tuple(sorted(self.params_filled().items())), need)


def unary(
    name: str,
    torch_fn: Callable[..., torch.Tensor],
    dtypes: Sequence[str] = FLOATS,
    domain: Loss | None = None,
    out_dtype: str | None = None,
    params: dict[str, Param] | None = None,
    image: V = V(),
    keeps_zero: bool = False,
    keeps_sign: bool = False,
    need: Need | None = None,
    **fields: Any,
) -> type[OpSpec]:
    """Declare and register one unary elementwise spec; `need` mirrors `domain` for the generator."""
    return declare(
        Unary,
        name,
        torch_fn,
        domain,
        dtypes=same_dtype(1, dtypes),
        out_dtype=out_dtype,
        params=params or {},
        image=image,
        keeps_zero=keeps_zero,
        keeps_sign=keeps_sign,
        needs={0: need} if need else {},
        **fields,
    )


def is_inf(x: torch.Tensor, detect_positive: int, detect_negative: int) -> torch.Tensor:
    positive = torch.isposinf(x) if detect_positive else torch.zeros_like(x, dtype=torch.bool)
    negative = torch.isneginf(x) if detect_negative else torch.zeros_like(x, dtype=torch.bool)
    return positive | negative


unary("Relu", torch.relu, SIGNED, image=V(0, piled=ZERO), keeps_zero=True, monotone=1)
unary("Sigmoid", torch.sigmoid, image=V(0, 1), monotone=1)
unary("Tanh", torch.tanh, image=V(-1, 1), keeps_sign=True, monotone=1)
unary("Exp", torch.exp, domain=no_exp_overflow, image=V(0), need=BELOW_EXP_LIMIT, monotone=1)
unary("Log", torch.log, domain=lambda x: above(x, LOG_MIN), need=Need(LOG_MIN), monotone=1)
unary("Sqrt", torch.sqrt, domain=lambda x: above(x, MARGIN), image=V(0), keeps_zero=True, need=Need(MARGIN), monotone=1)
unary("Abs", torch.abs, NUMERIC, domain=no_overflow(torch.abs), image=V(0), keeps_zero=True)
unary("Neg", torch.neg, SIGNED, domain=no_overflow(torch.neg), keeps_sign=True, monotone=-1)
unary(
    "Sign",
    torch.sign,
    NUMERIC,
    domain=floats_only(off_zero),
    image=V(-1, 1, integral=True),
    keeps_sign=True,
    monotone=1,
)
unary("Sin", torch.sin, image=V(-1, 1), keeps_zero=True, interval=through_turns(math.sin, math.pi / 2))
unary("Cos", torch.cos, image=V(-1, 1), interval=through_turns(math.cos, 0.0))
unary("Tan", torch.tan, domain=away_from_poles, keeps_zero=True, interval=between_tan_poles)
unary("Asin", torch.asin, domain=inside_unit_interval, image=V(-2, 2), keeps_sign=True, need=UNIT, monotone=1)
unary("Acos", torch.acos, domain=inside_unit_interval, image=V(0, 4), need=UNIT, monotone=-1)
unary("Atan", torch.atan, image=V(-2, 2), keeps_sign=True, monotone=1)
unary(
    "Sinh", torch.sinh, domain=lambda x: no_exp_overflow(x.abs()), keeps_sign=True, need=WITHIN_EXP_LIMITS, monotone=1
)
unary("Cosh", torch.cosh, domain=lambda x: no_exp_overflow(x.abs()), image=V(1), need=WITHIN_EXP_LIMITS)
unary("Asinh", torch.asinh, keeps_sign=True, monotone=1)
unary("Acosh", torch.acosh, domain=lambda x: above(x, 1 + MARGIN), image=V(0), need=Need(1 + MARGIN), monotone=1)
unary("Atanh", torch.atanh, domain=inside_unit_interval, keeps_sign=True, need=UNIT, monotone=1)
unary("Erf", torch.erf, image=V(-1, 1), keeps_sign=True, monotone=1)
unary("Floor", torch.floor, domain=away_from_integers, image=WHOLE, keeps_zero=True, need=FRACTIONAL, monotone=1)
unary("Ceil", torch.ceil, domain=away_from_integers, image=WHOLE, keeps_zero=True, need=FRACTIONAL, monotone=1)
unary("Round", torch.round, domain=away_from_halves, image=WHOLE, keeps_zero=True, monotone=1)
unary("Reciprocal", torch.reciprocal, domain=away_from_zero, need=NONZERO, monotone=-1, pole=0.0)
unary("Identity", torch.clone, ALL, moves_values=True, copies_inputs=True)
unary("IsNaN", torch.isnan, out_dtype="bool", image=FINITE_CHECK)
unary(
    "IsInf",
    is_inf,
    ("float32", "float64"),
    out_dtype="bool",
    image=FINITE_CHECK,
    params={"detect_positive": Param(1, (0, 1)), "detect_negative": Param(1, (0, 1))},
)


class Broadcasting(OpSpec):
    """Ops whose inputs broadcast numpy-style to one output shape."""

    ranks = any_rank(2)
    out_dtype: ClassVar[str | None] = None  # None: same as the inputs

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return broadcast_requires([t.shape for t in inputs])

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        out_dtype = type(self).out_dtype or inputs[-1].dtype
        return [AbsTensor(broadcast_shape([t.shape for t in inputs]), out_dtype)]


class Elementwise(TableOp, Broadcasting):
    """y = f(*xs) over broadcast inputs; a table row gives f, its arities, dtypes and domain."""


def binary(
    name: str,
    torch_fn: Callable[..., torch.Tensor],
    dtypes: Sequence[str] = FLOATS,
    domain: Loss | None = None,
    out_dtype: str | None = None,
    arities: Sequence[int] = (2,),
    needs: dict[int, Need] | None = None,
    keeps_zero: bool = False,
    monotone: int = 0,
    falling: tuple[int, ...] = (),
    interval: Callable[[V, V], tuple[float, float]] | None = None,
    image: V = V(),
    exact_in_float64: bool = True,
    subtracts: bool = False,
    joint_domain: bool = False,
) -> type[OpSpec]:
    """Declare and register one broadcasting spec (binary, or variadic over several arities)."""
    ranks = tuple(r for n in arities for r in any_rank(n))
    dtype_sets = tuple(d for n in arities for d in same_dtype(n, dtypes))
    fields = {
        "needs": needs or {},
        "keeps_zero": keeps_zero,
        "monotone": monotone,
        "falling": falling,
        "image": image,
        "exact_in_float64": exact_in_float64,
        "subtracts": subtracts,
        "joint_domain": joint_domain,
    }
    if interval is not None:
        fields["interval"] = staticmethod(interval)
    return declare(Elementwise, name, torch_fn, domain, ranks=ranks, dtypes=dtype_sets, out_dtype=out_dtype, **fields)


def interval_product(a: V, b: V) -> tuple[float, float]:
    """Bounds of a * b: the extreme corner products, 0 * inf taken as 0 (bounds hold real values only)."""
    corners = [0.0 if 0 in (x, y) else x * y for x in (a.low, a.high) for y in (b.low, b.high)]
    return min(corners), max(corners)


def interval_quotient(a: V, b: V) -> tuple[float, float]:
    """Bounds of a / b for a divisor kept off zero: a times 1/b where b keeps one sign, else unknown
    (a Softplus over a LogSoftmax stays negative)."""
    if b.low >= 0:
        return interval_product(a, V(1 / b.high if b.high else math.inf, 1 / b.low if b.low else math.inf))
    if b.high <= 0:
        return interval_product(a, V(1 / b.high if b.high else -math.inf, 1 / b.low if b.low else -math.inf))
    return -math.inf, math.inf


def pow_domain(base: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """Positive base (a fractional power of a negative is NaN) and no overflow."""
    magnitude = exponent * torch.log(base.clamp_min(1e-3))
    return above(base, POW_BASE_MIN) + below(magnitude.abs(), exp_limit(base.dtype))


def comparison_margin(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Unequal operands closer than rounding noise compare differently across compilers."""
    gap = (a - b).abs().to(torch.float32) if a.dtype.is_floating_point else None
    if gap is None:
        return torch.zeros(())
    near = (gap > 0) & (gap < MARGIN)
    return (torch.relu(MARGIN - gap) * near).sum()


def fold(pairwise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A variadic op from its pairwise form; a single input is copied through."""
    return lambda *xs: functools.reduce(pairwise, xs[1:], xs[0].clone())


total = fold(torch.add)


def mean(*xs: torch.Tensor) -> torch.Tensor:
    return total(*xs) / len(xs)


VARIADIC = (1, 2, 3, 4)

# Integer arithmetic is bounded by `no_overflow`: leaves are small (|x| <= 5) and a case whose
# intermediate values would wrap is out of domain, never compared.
binary("Add", torch.add, NUMERIC, domain=no_overflow(torch.add), monotone=1)
binary("Sub", torch.sub, NUMERIC, domain=no_overflow(torch.sub), monotone=1, falling=(1,), subtracts=True)
binary("Mul", torch.mul, NUMERIC, domain=no_overflow(torch.mul), keeps_zero=True, interval=interval_product)
binary("Pow", torch.pow, domain=pow_domain, needs={0: Need(POW_BASE_MIN)})
binary("Sum", total, FLOATS, domain=no_overflow(total), arities=VARIADIC, monotone=1)
binary("Mean", mean, FLOATS, domain=no_overflow(total), arities=VARIADIC, monotone=1)  # torch sums first
binary("Max", fold(torch.maximum), NUMERIC, arities=VARIADIC, monotone=1)
binary("Min", fold(torch.minimum), NUMERIC, arities=VARIADIC, monotone=1)
for name, compare, operands in (
    ("Equal", torch.eq, ALL),
    ("Greater", torch.gt, NUMERIC),
    ("Less", torch.lt, NUMERIC),
    ("GreaterOrEqual", torch.ge, NUMERIC),
    ("LessOrEqual", torch.le, NUMERIC),
):
    # the margin keeps each pair of elements apart: x against its own maximum ties
    binary(name, compare, operands, out_dtype="bool", domain=comparison_margin, image=TRUTH, joint_domain=True)


@register
class Where(Broadcasting):
    onnx_op = "Where"
    ranks = any_rank(3)
    dtypes = tuple(("bool", t, t) for t in ALL)

    def to_torch(self, cond: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(cond, a, b)

    def values(self, inputs: list[V]) -> list[V]:
        """One branch where the condition holds one value everywhere (IsNaN of finite values), else both."""
        condition, then, otherwise = inputs
        return [{1: then, 0: otherwise}.get(condition.one_value, then.union(otherwise))]


def cast_domain(x: torch.Tensor, target: torch.dtype) -> torch.Tensor:
    """Out-of-range conversions are undefined (float to int) or wrap (int to int); float to int
    truncates, so it flips next to integers; to bool, next to zero."""
    if target == torch.bool:
        return floats_only(off_zero)(x)
    loss = representable(x.double(), target)
    if x.is_floating_point() and not target.is_floating_point:
        loss = loss + away_from_integers(x)
    return loss


def cast_values(x: V, target: str) -> V:
    """Truncation to an integer keeps bounds but turns (-1, 1) into zeros; bool keeps only zeros."""
    if dtype(target).is_bool:
        forced, piled = (frozenset(float(v != 0) for v in values) for values in (x.forced, x.piled))
        return V(0, 1, forced, fixed=x.fixed, integral=True, piled=piled)
    if dtype(target).is_float:
        return x
    if x.low > -1 and x.high < 1:
        return V(0, 0, ZERO, fixed=True, integral=True)
    low = math.trunc(x.low) if math.isfinite(x.low) else x.low
    forced, piled = (frozenset(float(math.trunc(v)) for v in values) for values in (x.forced, x.piled))
    return V(low, x.high, forced, fixed=x.fixed, integral=True, piled=piled)


@register
class Cast(OpSpec):
    onnx_op = "Cast"
    ranks = any_rank(1)
    dtypes = tuple((t,) for t in ALL)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"to": rng.choice([t for t in ALL if t != inputs[0].dtype])}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), self.attrs["to"])]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"to": dtype(self.attrs["to"]).onnx}

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(dtype(self.attrs["to"]).torch)

    def values(self, inputs: list[V]) -> list[V]:
        return [cast_values(inputs[0], self.attrs["to"])]

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        return cast_domain(x, dtype(self.attrs["to"]).torch)


@register
class CastLike(OpSpec):
    """Cast to the element type of a second tensor, whose shape and values do not matter."""

    onnx_op = "CastLike"
    ranks = any_rank(2)
    dtypes = tuple(itertools.product(ALL, repeat=2))

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[1].dtype)]

    def to_torch(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return x.to(like.dtype)

    def values(self, inputs: list[V]) -> list[V]:
        return [functools.reduce(V.join, (cast_values(inputs[0], target) for target in ALL))]

    def domain_loss(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor | None:
        return cast_domain(x, like.dtype)
