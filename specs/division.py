"""Division and remainder: float Div and Mod with a divisor kept off zero, integer Div and Mod
with a divisor that is a nonzero leaf."""

from __future__ import annotations

import random
from typing import Any, ClassVar

import torch

from fuzzer.core.dtypes import FLOATS, INTS, SIGNED_INTS
from fuzzer.core.ir import TensorType
from specs.base import AbsTensor, Symbols, register, same_dtype
from specs.elementwise import (
    MARGIN,
    NONZERO,
    Broadcasting,
    away_from_integers,
    away_from_zero,
    binary,
    interval_quotient,
    no_overflow,
    representable,
    unsigned,
)
from specs.values import ZERO, Need, Values

MAX_DIVISOR = 5


def quotient(a: torch.Tensor, b: torch.Tensor, where_zero: float) -> torch.Tensor:
    """a / b where b is clear of zero, `where_zero` elsewhere: a loss on an infinite quotient would
    be infinite, and its gradient NaN, hiding the step that moves b off zero."""
    clear = unsigned(b) >= MARGIN
    return torch.where(clear, a / torch.where(clear, b, torch.ones_like(b)), where_zero)


def fmod_domain(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """fmod jumps where a/b crosses an integer other than 0 (for |a| < |b| it is a itself); keep the
    quotient off those and b off zero."""
    ratio = quotient(a, b, 0.5)
    return away_from_zero(b) + away_from_integers(torch.where(ratio.abs() < 0.5, 0.5, ratio))


def div_domain(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return away_from_zero(b) + representable(quotient(a.double(), b.double(), 0.0), a.dtype)


binary(
    "Div",
    torch.div,
    FLOATS,
    domain=div_domain,
    needs={1: NONZERO},
    keeps_zero=True,
    interval=interval_quotient,
)


@register
class Mod(Broadcasting):
    """Float Mod: ONNX allows only fmod=1 (C fmod, the sign of the dividend), torch.fmod."""

    onnx_op = "Mod"
    dtypes = same_dtype(2, FLOATS)
    needs: ClassVar[dict[int, Need]] = {1: NONZERO}
    joint_domain = True  # the quotient must also stay off integers

    def onnx_attrs(self) -> dict[str, Any]:
        return {"fmod": 1}

    def to_torch(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.fmod(a, b)

    def domain_loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
        return fmod_domain(a, b)

    def values(self, inputs: list[Values]) -> list[Values]:
        """C fmod has the dividend's sign and lies closer to zero than both operands: the dividend's
        zeros, forced or piled, stay zeros."""
        a, b = inputs
        reach = max(-b.low, b.high)
        low, high = max(min(a.low, 0.0), -reach), min(max(a.high, 0.0), reach)
        return [Values(low, high, a.forced & ZERO, steered=a.steered and b.steered, piled=a.piled & ZERO)]


class IntegerDivision(Broadcasting):
    """Integer Div/Mod by zero is undefined: the divisor is a fresh leaf drawn from [1, 5] or,
    for signed types, sometimes [-5, -1], so both signs of divisor are exercised."""

    dtypes = same_dtype(2, INTS)
    leaf_inputs = (1,)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"negative_divisor": inputs[0].dtype in SIGNED_INTS and rng.random() < 0.5}

    def index_bounds(self, input_index: int, inputs: list[TensorType]) -> tuple[int, int] | None:
        if input_index != 1:
            return None
        return (-MAX_DIVISOR, -1) if self.attrs["negative_divisor"] else (1, MAX_DIVISOR)


@register
class IntegerDiv(IntegerDivision):
    """ONNX integer Div truncates toward zero (C++ `/`, as the ONNX reference and ONNX Runtime do)."""

    onnx_op = "Div"

    def to_torch(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.div(a, b, rounding_mode="trunc")

    def domain_loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
        return no_overflow(lambda x, y: torch.div(x, y, rounding_mode="trunc"))(a, b)  # INT_MIN / -1


@register
class IntegerMod(IntegerDivision):
    """fmod=0: the sign of the divisor (Python %, torch.remainder); fmod=1: the sign of the
    dividend (C fmod, torch.fmod; ONNX's own test_mod_int64_fmod uses it on integers)."""

    onnx_op = "Mod"

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {"fmod": rng.randint(0, 1)}

    def onnx_attrs(self) -> dict[str, Any]:
        return {"fmod": self.attrs["fmod"]}

    def to_torch(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.fmod(a, b) if self.attrs["fmod"] else torch.remainder(a, b)
