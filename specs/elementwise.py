"""Elementwise operators: unary maps, broadcasting binary ops, comparisons, Where and Cast."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import z3

from fuzzer.dtypes import ALL, FLOATS, NUMERIC, dtype
from specs.base import (
    MAX_RANK,
    AbsTensor,
    OpSpec,
    Symbols,
    any_rank,
    broadcast_requires,
    broadcast_shape,
    register,
    same_dtype,
)

Loss = Callable[..., torch.Tensor]
MARGIN = 0.05


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


def away_from_integers(x: torch.Tensor) -> torch.Tensor:
    """Floor/Ceil/truncation flip on rounding noise next to an integer; keep a gap."""
    return torch.relu(MARGIN - unsigned(x - torch.round(x))).sum()


def away_from_halves(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(MARGIN - unsigned(x - torch.floor(x) - 0.5)).sum()


def exp_limit(x: torch.Tensor) -> float:
    """Keep exp(x) well inside the dtype, leaving headroom for the ops after it."""
    return min(10.0, math.log(torch.finfo(x.dtype).max) / 2)


class Unary(OpSpec):
    """y = f(x), same shape; the table below gives f, its dtypes and its domain."""

    ranks = tuple((r,) for r in range(MAX_RANK + 1))
    dtypes = same_dtype(1, FLOATS)
    torch_fn: ClassVar[Callable[[torch.Tensor], torch.Tensor]]
    domain: ClassVar[Loss | None] = None

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return type(self).torch_fn(x)

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        domain = type(self).domain
        return domain(x) if domain else None


def unary(name: str, torch_fn: Callable, dtypes: tuple[str, ...] = FLOATS, domain: Loss | None = None) -> type[OpSpec]:
    """Declare and register one unary elementwise spec."""
    attrs = {
        "onnx_op": name,
        "torch_fn": staticmethod(torch_fn),
        "dtypes": same_dtype(1, dtypes),
        "domain": staticmethod(domain) if domain else None,
        "__module__": __name__,
    }
    return register(type(name, (Unary,), attrs))


SIGNED = ("float32", "float64", "float16", "int8", "int32", "int64")

unary("Relu", torch.relu)
unary("Sigmoid", torch.sigmoid)
unary("Tanh", torch.tanh)
unary("Exp", torch.exp, domain=lambda x: below(x, exp_limit(x)))
unary("Log", torch.log, domain=lambda x: above(x, 0.1))
unary("Sqrt", torch.sqrt, domain=lambda x: above(x, MARGIN))
unary("Abs", torch.abs, dtypes=SIGNED)
unary("Neg", torch.neg, dtypes=SIGNED)
unary("Sin", torch.sin)
unary("Cos", torch.cos)
unary("Floor", torch.floor, domain=away_from_integers)
unary("Ceil", torch.ceil, domain=away_from_integers)
unary("Round", torch.round, domain=away_from_halves)
unary("Reciprocal", torch.reciprocal, domain=away_from_zero)


class Broadcasting(OpSpec):
    """Ops whose inputs broadcast numpy-style to one output shape."""

    ranks = any_rank(2)
    out_dtype: ClassVar[str | None] = None  # None: same as the inputs

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return broadcast_requires([t.shape for t in inputs])

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        out_dtype = type(self).out_dtype or inputs[-1].dtype
        return [AbsTensor(broadcast_shape([t.shape for t in inputs]), out_dtype)]


class Binary(Broadcasting):
    torch_fn: ClassVar[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
    domain: ClassVar[Loss | None] = None

    def to_torch(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return type(self).torch_fn(a, b)

    def domain_loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
        domain = type(self).domain
        return domain(a, b) if domain else None


def binary(
    name: str,
    torch_fn: Callable,
    dtypes: tuple[str, ...] = FLOATS,
    domain: Loss | None = None,
    out_dtype: str | None = None,
) -> type[OpSpec]:
    """Declare and register one broadcasting binary spec."""
    attrs = {
        "onnx_op": name,
        "torch_fn": staticmethod(torch_fn),
        "dtypes": same_dtype(2, dtypes),
        "domain": staticmethod(domain) if domain else None,
        "out_dtype": out_dtype,
        "__module__": __name__,
    }
    return register(type(name, (Binary,), attrs))


def pow_domain(base: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """Positive base (a fractional power of a negative is NaN) and no overflow."""
    magnitude = exponent * torch.log(base.clamp_min(1e-3))
    return above(base, 0.1) + below(magnitude.abs(), exp_limit(base))


def comparison_margin(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Unequal operands closer than rounding noise compare differently across compilers."""
    gap = (a - b).abs().to(torch.float32) if a.dtype.is_floating_point else None
    if gap is None:
        return torch.zeros(())
    near = (gap > 0) & (gap < MARGIN)
    return (torch.relu(MARGIN - gap) * near).sum()


ARITH = ("float32", "float64", "float16", "int32", "int64")

binary("Add", torch.add, dtypes=ARITH)
binary("Sub", torch.sub, dtypes=ARITH)
binary("Mul", torch.mul, dtypes=ARITH)
binary("Div", torch.div, domain=lambda a, b: away_from_zero(b))
binary("Pow", torch.pow, domain=pow_domain)
binary("Max", torch.maximum, dtypes=ARITH)
binary("Min", torch.minimum, dtypes=ARITH)
binary("Equal", torch.eq, dtypes=ALL, out_dtype="bool", domain=comparison_margin)
binary("Greater", torch.gt, dtypes=NUMERIC, out_dtype="bool", domain=comparison_margin)
binary("Less", torch.lt, dtypes=NUMERIC, out_dtype="bool", domain=comparison_margin)
binary("GreaterOrEqual", torch.ge, dtypes=NUMERIC, out_dtype="bool", domain=comparison_margin)
binary("LessOrEqual", torch.le, dtypes=NUMERIC, out_dtype="bool", domain=comparison_margin)


@register
class Where(Broadcasting):
    onnx_op = "Where"
    ranks = any_rank(3)
    dtypes = tuple(("bool", t, t) for t in ALL)

    def to_torch(self, cond: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(cond, a, b)


def cast_domain(x: torch.Tensor, target: str) -> torch.Tensor:
    """Float to int is undefined out of range and flips next to integers; to bool next to 0."""
    if not x.dtype.is_floating_point:
        return torch.zeros(())
    spec = dtype(target)
    if spec.is_int:
        info = torch.iinfo(spec.torch)
        in_range = above(x, info.min + 1.0) + below(x, info.max - 1.0)
        return in_range + away_from_integers(x)
    if spec.is_bool:
        return (torch.relu(MARGIN - x.abs()) * (x != 0)).sum()
    if target == "float16" and x.dtype != torch.float16:
        return below(x.abs(), 60000.0)
    return torch.zeros(())


@register
class Cast(OpSpec):
    onnx_op = "Cast"
    ranks = tuple((r,) for r in range(MAX_RANK + 1))
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

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        return cast_domain(x, self.attrs["to"])
