"""Reductions over a set of axes: the opset-18 Reduce* family."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

import torch
import z3

from specs.base import MAX_RANK, AbsTensor, OnnxEmitter, OpSpec, Symbols, product, register, sample_axes, spell_axis
from specs.elementwise import LOG_MIN, above, below
from specs.values import ZERO, Need, Values, summed

POSITIVE_RANKS = tuple((r,) for r in range(1, MAX_RANK + 1))
FLOATS = ("float32", "float64", "float16")
ORDERED = (*FLOATS, "int8", "uint8", "int32", "int64")
SUMMABLE = (*FLOATS, "int32", "int64")
HEADROOM = 16.0  # results stay this far below the dtype's largest value, for the ops after them
MAX_INT_PRODUCT_COUNT = 8  # |x| <= 5 from the value sampler: 5**8 fits int32 with headroom
# A float product of n elements stays finite only while the search holds each near magnitude 1; past 16
# (a vector register of float32) it rarely can, and wider groups test no other kernel path.
MAX_FLOAT_PRODUCT_COUNT = 16

ReduceFn = Callable[[torch.Tensor, list[int], bool], torch.Tensor]
ReduceDomain = Callable[[torch.Tensor, list[int]], torch.Tensor]


def magnitude_limit(dtype: torch.dtype) -> float:
    """The largest result magnitude a spec lets through without a domain loss."""
    info = torch.finfo(dtype) if dtype.is_floating_point else torch.iinfo(dtype)
    return float(info.max) / HEADROOM


def total(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    """Sum over `axes`, where no axes means each element on its own (torch.sum would sum all)."""
    return x.sum(axes, keepdim=True) if axes else x


def reduced_count(x: torch.Tensor, axes: list[int]) -> int:
    return math.prod([x.shape[a] for a in axes])


def sum_fits(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    """Sums of magnitudes bound every partial sum, whatever order a backend adds in."""
    return below(total(x.double().abs(), axes), magnitude_limit(x.dtype))


def squares_fit(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    return below(total(x.double().square(), axes), magnitude_limit(x.dtype))


def product_fits(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    log_magnitude = total(x.double().abs().clamp_min(1e-30).log(), axes)
    return below(log_magnitude, math.log(magnitude_limit(x.dtype)))


def positive_sum(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    return above(total(x, axes), LOG_MIN) + sum_fits(x, axes)


def exp_sum_fits(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    """Keep |x| small enough that even Log(ReduceSum(Exp(x))), ONNX's own definition, is finite."""
    bound = math.log(magnitude_limit(x.dtype) / reduced_count(x, axes))
    return below(x.abs(), min(10.0, bound))


def mean(x: torch.Tensor, dims: list[int], keepdim: bool) -> torch.Tensor:
    """Integer means truncate toward zero, as ONNX Runtime and the ONNX reference (numpy) do."""
    if x.dtype.is_floating_point:
        return torch.mean(x, dims, keepdim=keepdim)
    return torch.div(torch.sum(x, dims, keepdim=keepdim), reduced_count(x, dims), rounding_mode="trunc")


def prod(x: torch.Tensor, dims: list[int], keepdim: bool) -> torch.Tensor:
    """torch.prod reduces one dim at a time."""
    for dim in dims:
        x = torch.prod(x, dim, keepdim=True)
    return x if keepdim else x.squeeze(dims)


class Reduce(OpSpec):
    """Opset-18 reductions: axes as a constant input, omitted or empty to reduce everything.

    With noop_with_empty_axes=1 and no axes, each element is reduced on its own: the identity for
    ReduceSum, but |x|, x² or log x for ReduceL1, ReduceSumSquare or ReduceLogSum. The ONNX text
    says so since onnx/onnx#7137 (onnx 1.23 reads that way); ONNX Runtime and the reference agree.
    """

    ranks = POSITIVE_RANKS
    torch_fn: ClassVar[ReduceFn]
    domain: ClassVar[ReduceDomain | None] = None
    int_count_limit: ClassVar[int | None] = None  # most elements one integer result may combine
    float_count_limit: ClassVar[int | None] = None  # most elements one float result may combine
    keeps_bounds: ClassVar[bool] = False  # the result lies between the smallest and largest input
    keeps_zero: ClassVar[bool] = False  # a group of zeros reduces to zero
    keeps_sign: ClassVar[bool] = False  # a sum: the result has the sign its group shares
    # the piled values a group's result holds when one of its elements does (a product's zeros)
    kept_piles: ClassVar[Callable[[Values], frozenset[float]] | None] = None
    alone_is_itself: ClassVar[bool] = False  # one element reduces to itself (a sum, a mean, a max; not |x|)
    extreme: ClassVar[int] = 0  # -1: a minimum, +1: a maximum; of every element, it lies past each forced value
    at_least_smallest: ClassVar[bool] = False  # the result is at least its group's smallest element (a log-sum-exp)
    image: ClassVar[Values] = Values()

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axes = sample_axes(rng, rank, allow_empty=True)
        return {
            "axes": axes,
            "onnx_axes": [spell_axis(rng, a, rank) for a in axes],
            "keepdims": rng.randint(0, 1),
            "noop_with_empty_axes": int(not axes and rng.random() < 0.5),
            "empty_axes_input": not axes and rng.random() < 0.5,
        }

    def copies(self) -> bool:
        return bool(self.attrs["noop_with_empty_axes"]) and type(self).alone_is_itself

    def selects(self) -> bool:
        return bool(type(self).extreme)

    def reduced_axes(self, rank: int) -> list[int]:
        if self.attrs["noop_with_empty_axes"]:
            return []
        return self.attrs["axes"] or list(range(rank))

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        x, cls = inputs[0], type(self)
        limit = cls.float_count_limit if x.dtype.startswith("float") else cls.int_count_limit
        if limit is None:
            return []
        return [product([x.shape[a] for a in self.reduced_axes(x.rank)]) <= limit]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x = inputs[0]
        axes = self.reduced_axes(x.rank)
        if self.attrs["keepdims"]:
            shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
        else:
            shape = [d for i, d in enumerate(x.shape) if i not in axes]
        return [AbsTensor(shape, x.dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        operands = [inputs[0]]
        if self.attrs["axes"] or self.attrs["empty_axes_input"]:
            operands.append(emit.const(self.attrs["onnx_axes"]))
        emit.node(
            self.onnx_op,
            operands,
            outputs,
            keepdims=self.attrs["keepdims"],
            noop_with_empty_axes=self.attrs["noop_with_empty_axes"] or None,
        )

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        axes, keepdim = self.reduced_axes(x.dim()), bool(self.attrs["keepdims"])
        if not axes:  # noop_with_empty_axes: each element is reduced alone, over a new unit axis
            x, axes, keepdim = x.unsqueeze(-1), [x.dim()], False
        result = type(self).torch_fn(x, axes, keepdim)
        return result.to(x.dtype)  # torch widens int32 sums and products to int64; ONNX keeps the type

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        domain = type(self).domain
        return domain(x, self.reduced_axes(x.dim())) if domain else None

    def values(self, inputs: list[Values]) -> list[Values]:
        cls, x = type(self), inputs[0]
        zeros = cls.keeps_zero and x.one_value == 0
        if cls.keeps_bounds or zeros:
            out = Values(x.low, x.high)
        elif cls.keeps_sign:
            out = summed(x)
        else:
            out = cls.image
        if cls.at_least_smallest:
            out = replace(out, low=max(out.low, x.low))
        if cls.extreme and x.forced and not self.attrs["axes"] and not self.attrs["noop_with_empty_axes"]:
            if cls.extreme < 0:
                out = replace(out, high=min(out.high, *x.forced))
            else:
                out = replace(out, low=max(out.low, *x.forced))
        return [replace(out, piled=cls.kept_piles(x)) if cls.kept_piles else out]


def reduce_op(
    name: str,
    torch_fn: ReduceFn,
    dtypes: tuple[str, ...],
    domain: ReduceDomain | None = None,
    int_count_limit: int | None = None,
    need: Need | None = None,
    **fields: Any,
) -> type[OpSpec]:
    """Declare and register one Reduce* spec; `need` mirrors `domain` for the generator."""
    attrs = {
        "onnx_op": name,
        "torch_fn": staticmethod(torch_fn),
        "dtypes": tuple((t,) for t in dtypes),
        "domain": staticmethod(domain) if domain else None,
        "int_count_limit": int_count_limit,
        "needs": {0: need} if need else {},
        **fields,
        "__module__": __name__,
    }
    return register(type(name, (Reduce,), attrs))


def l1(x: torch.Tensor, dims: list[int], keepdim: bool) -> torch.Tensor:
    return x.abs().sum(dims, keepdim=keepdim)


def l2(x: torch.Tensor, dims: list[int], keepdim: bool) -> torch.Tensor:
    return torch.linalg.vector_norm(x, 2, dims, keepdim=keepdim)


def log_sum(x: torch.Tensor, dims: list[int], keepdim: bool) -> torch.Tensor:
    return torch.log(torch.sum(x, dims, keepdim=keepdim))


def sum_square(x: torch.Tensor, dims: list[int], keepdim: bool) -> torch.Tensor:
    return (x * x).sum(dims, keepdim=keepdim)


def piles_at_low(x: Values) -> frozenset[float]:
    """A minimum is the pile at the lower bound (a Relu's zeros) wherever its group holds one."""
    return frozenset(value for value in x.piled if value <= x.low)


def piles_at_high(x: Values) -> frozenset[float]:
    return frozenset(value for value in x.piled if value >= x.high)


def zero_piles(x: Values) -> frozenset[float]:
    """One zero makes a product zero: a forced zero piles too (a group that does not hold it is not zero)."""
    return (x.piled | x.forced) & ZERO


# Integer L2/LogSum/LogSumExp would truncate a transcendental result, which ONNX leaves undefined
# and which flips on rounding noise; those rows are float-only.
reduce_op("ReduceSum", torch.sum, SUMMABLE, sum_fits, keeps_zero=True, keeps_sign=True, alone_is_itself=True)
reduce_op("ReduceMean", mean, SUMMABLE, sum_fits, keeps_bounds=True, alone_is_itself=True, averages=True)
reduce_op(
    "ReduceMax", torch.amax, ORDERED, keeps_bounds=True, kept_piles=piles_at_high, alone_is_itself=True, extreme=1
)
reduce_op(
    "ReduceMin", torch.amin, ORDERED, keeps_bounds=True, kept_piles=piles_at_low, alone_is_itself=True, extreme=-1
)
reduce_op(
    "ReduceProd",
    prod,
    SUMMABLE,
    product_fits,
    int_count_limit=MAX_INT_PRODUCT_COUNT,
    float_count_limit=MAX_FLOAT_PRODUCT_COUNT,
    keeps_zero=True,
    kept_piles=zero_piles,
    alone_is_itself=True,
)
reduce_op("ReduceLogSumExp", torch.logsumexp, FLOATS, exp_sum_fits, alone_is_itself=True, at_least_smallest=True)
reduce_op("ReduceL1", l1, SUMMABLE, sum_fits, keeps_zero=True, image=Values(0))
reduce_op("ReduceL2", l2, FLOATS, squares_fit, keeps_zero=True, image=Values(0))
reduce_op("ReduceSumSquare", sum_square, SUMMABLE, squares_fit, keeps_zero=True, image=Values(0))
reduce_op("ReduceLogSum", log_sum, FLOATS, positive_sum, need=Need(LOG_MIN))  # a positive sum: positive terms
