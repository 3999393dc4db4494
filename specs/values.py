"""What a tensor's values can be (bounds, structure) and what a reader needs of them: the contract
the generator and the input search share, so no node reads values it can never get."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

NARROW_WIDTH = 2.0  # the widest need only steered values reach: the unit interval's (Asin, Atanh)


@dataclass(frozen=True)
class Values:
    """What input search can make of a tensor's values: bounds it cannot leave, structure it cannot remove.

    Unknown is the default (anything goes); specs narrow it where their output is bounded (Cos in
    [-1, 1]) or carries structure (padding fills, a mean-subtracted tensor, a Range fixed by attributes).
    """

    low: float = -math.inf
    high: float = math.inf
    forced: frozenset[float] = frozenset()  # values some elements hold whatever the inputs: padding, masks, one-hot
    centered: bool = False  # mean-subtracted along some axis: both signs, or all zero
    fixed: bool = False  # set by shapes and attributes alone; no input value moves them
    spread: float = 0.0  # some element of every group lies this far from zero (unit variance: 1)
    integral: bool = False  # whole numbers only (Floor, Sign, a cast to an integer type)
    steered: bool = False  # a graph input or weight, or elementwise maps of them: the search moves each element
    # values many elements hold until the search moves every one off them, one by one: Relu's zeros
    # wherever a convolution is negative, a comparison's zeros and ones
    piled: frozenset[float] = frozenset()

    def meets(self, need: Need) -> bool:
        """Whether the search can bring these values inside `need` (with a positive margin)."""
        admitted = all(need.admits(value) for value in self.forced)
        if self.fixed:
            exact = self.low == self.high and need.low < self.low < need.high
            return exact and admitted and not (need.fractional and self.integral)
        low, high = max(self.low, need.low), min(self.high, need.high)
        if low >= high or (self.integral and not _nonzero_integer_between(low, high)):
            return False
        if need.narrow and not self.steered and not (math.isfinite(self.low) and math.isfinite(self.high)):
            return False  # every element of a sum, a convolution or a normalization inside |x| < 0.95
        if not self.steered and (need.low > 1 > self.low or need.high < -1 < self.high):
            return False  # every element of a normalization, a squashing activation or a mean above 1
        if not self.steered and not all(need.admits(value) for value in self.piled):
            return False  # every element of a convolution positive, under a Relu a divisor reads
        one_signed = need.low >= 0 or need.high <= 0
        if not admitted:
            return False
        if self.integral and need.fractional:
            return False
        if self.spread >= max(-need.low, need.high):
            return False
        return not (self.centered and one_signed)

    @property
    def one_value(self) -> float | None:
        """The value every element holds where the bounds close on one (Clip(x, 0, 0)), else None."""
        return self.low if self.low == self.high and math.isfinite(self.low) else None

    @property
    def zeros(self) -> bool:
        """Exact zeros whatever the inputs (padding, masked triangles, one-hot)."""
        return 0.0 in self.forced

    def within(self, need: Need) -> Values:
        """These values once a reader's need holds: two readers with disjoint needs cannot share a tensor.
        A need for fractional values never holds a whole-number bound (Floor of [0, 1] is 0)."""
        low, high = max(self.low, need.low), min(self.high, need.high)
        if need.fractional:
            low = math.nextafter(low, math.inf) if float(low).is_integer() else low
            high = math.nextafter(high, -math.inf) if float(high).is_integer() else high
        return replace(self, low=low, high=high)

    def union(self, other: Values) -> Values:
        """Values of a tensor that holds elements of both (Concat, Where)."""
        return Values(
            min(self.low, other.low),
            max(self.high, other.high),
            self.forced | other.forced,
            False,
            self.fixed and other.fixed,
            min(self.spread, other.spread),
            self.integral and other.integral,
            self.steered and other.steered,
            self.piled | other.piled,
        )

    def join(self, other: Values) -> Values:
        """Values of a tensor that holds either these or those, not knowing which (a cast to a type the
        spec cannot see): the union's bounds, but only what both guarantee is forced, piled or centered."""
        return replace(
            self.union(other),
            forced=self.forced & other.forced,
            centered=self.centered and other.centered,
            piled=self.piled & other.piled,
        )


LEAF = Values(steered=True)  # a graph input or weight: the search moves each element anywhere
ZERO = frozenset({0.0})  # the forced values of padding, a mask's zeros, an all-zero window


def constant(value: float) -> Values:
    """The values of a fill constant (padding, a mask's zeros)."""
    return Values(value, value, frozenset({float(value)}), integral=float(value).is_integer())


def exactly(value: float) -> Values:
    """The values of a constant no input moves (an optimization pattern's pinned scalar)."""
    return replace(constant(value), fixed=True)


def summed(x: Values) -> Values:
    """Values of sums of one or more elements of x (ReduceSum, a one-operand Einsum, CumSum): each sum has
    the sign its elements share, and no bound on its size; whole numbers stay whole."""
    return Values(
        x.low if x.low >= 0 else -math.inf,
        x.high if x.high <= 0 else math.inf,
        integral=x.integral,
    )


def summed_products(factors: list[Values], bias: Values | None = None) -> Values:
    """A sum of products (MatMul, Gemm, Einsum, a convolution): a factor's forced zeros (padding, a
    one-hot's zeros) can fill whole rows or windows, so its elements pile at zero unless a bias moves them;
    an all-zero factor makes all zeros."""
    if any(factor.one_value == 0 for factor in factors) and (bias is None or bias.one_value == 0):
        return Values(0, 0)
    piled = any(factor.zeros for factor in factors) and (bias is None or bias.zeros)
    return Values(piled=ZERO if piled else frozenset())


def _nonzero_integer_between(low: float, high: float) -> bool:
    """Whether an integer other than zero lies in [low, high]: Atanh of a Sign could only read zeros."""
    positive = high >= 1 and (low <= 1 or math.ceil(low) <= high)
    negative = low <= -1 and (high >= -1 or math.floor(high) >= low)
    return positive or negative


@dataclass(frozen=True)
class Need:
    """The values an input must hold for its op to stay in domain (Log: above 0.1; Div's divisor: nonzero)."""

    low: float = -math.inf
    high: float = math.inf
    nonzero: bool = False
    fractional: bool = False  # no whole numbers (Floor, Ceil): rounding noise next to one flips the result
    dtype_high: tuple[tuple[str, float], ...] = ()  # (dtype, high) where it differs: Exp overflows sooner in float16
    dtype_low: tuple[tuple[str, float], ...] = ()  # (dtype, low) where it differs: Cosh of -6 overflows float16

    def at(self, dtype: str) -> Need:
        """This need for an input of `dtype`: the generator attaches needs to typed tensors."""
        low, high = dict(self.dtype_low).get(dtype, self.low), dict(self.dtype_high).get(dtype, self.high)
        return replace(self, low=low, high=high, dtype_low=(), dtype_high=())

    def admits(self, value: float) -> bool:
        """Whether an element that holds exactly `value` meets this need."""
        inside = self.low <= value <= self.high and not (self.nonzero and value == 0)
        return inside and not (self.fractional and float(value).is_integer())

    @property
    def narrow(self) -> bool:
        """Bounded on both sides to a unit's width (Asin, Acos, Atanh): only values the search steers one by
        one get there; a sum or a convolution shrinks into Cosh's (-10, 10)."""
        return self.high - self.low <= NARROW_WIDTH
