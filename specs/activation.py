"""Activations: unary rows with float attributes, Clip with optional bounds, PRelu, and Dropout
in inference mode."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
import z3

from fuzzer.core.dtypes import FLOATS, NUMERIC, dtype
from specs.base import MAX_RANK, AbsTensor, OnnxEmitter, OpSpec, Symbols, any_rank, or_, register, same_dtype
from specs.elementwise import (
    MARGIN,
    Param,
    TableOp,
    below,
    interval_product,
    no_exp_overflow,
    no_overflow,
    representable,
    unary,
    unsigned,
)
from specs.values import ZERO, Values

# Param choices are exact in float16, so ONNX's float attributes and torch's Python floats agree;
# ONNX's own defaults (LeakyRelu 0.01, HardSigmoid 0.2, Selu's) differ from float32 only by rounding.
SELU_ALPHA = 1.6732632423543772
SELU_GAMMA = 1.0507009873554805
MISH_LOWEST = -1.19243  # where Mish turns from falling to rising


def selu(x: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    return gamma * F.elu(x, alpha)


def hard_sigmoid(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    return torch.clamp(alpha * x + beta, 0, 1)


def shrink(x: torch.Tensor, bias: float, lambd: float) -> torch.Tensor:
    """Integer Shrink is computed in float and truncated back, as the ONNX reference and ONNX Runtime do."""
    wide = x if x.is_floating_point() else x.double()
    shrunk = torch.where(wide < -lambd, wide + bias, torch.where(wide > lambd, wide - bias, 0.0))
    return shrunk.to(x.dtype)


def away_from_threshold(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """ThresholdedRelu jumps from 0 to alpha at x = alpha."""
    return torch.relu(MARGIN - (x - alpha).abs()).sum()


# ONNX Runtime shrinks integers in float32 (the ONNX reference in float64): the two agree while a float32
# holds x shifted by a half bias, below 2**23.
FLOAT32_HALVES = 2.0**23


def shrink_domain(x: torch.Tensor, bias: float, lambd: float) -> torch.Tensor:
    """Shrink jumps at +-lambd (unless bias == lambd); integers must not wrap, nor reach where float32
    arithmetic rounds them."""
    if not x.is_floating_point():
        wide = x.double()
        return representable(shrink(wide, bias, lambd), x.dtype) + below(unsigned(wide), FLOAT32_HALVES - 1)
    return torch.relu(MARGIN - (x.abs() - lambd).abs()).sum()


unary("Softplus", F.softplus, domain=no_exp_overflow, image=Values(0), monotone=1)
unary("Softsign", F.softsign, image=Values(-1, 1), keeps_sign=True, monotone=1)
unary("HardSwish", F.hardswish, image=Values(piled=ZERO), keeps_zero=True, valley=-1.5)
unary("Mish", F.mish, keeps_sign=True, valley=MISH_LOWEST)
unary("Elu", F.elu, keeps_sign=True, monotone=1, params={"alpha": Param(1.0, (0.25, 0.5, 2.0))})
unary("Celu", F.celu, ("float32",), keeps_sign=True, monotone=1, params={"alpha": Param(1.0, (0.25, 0.5, 2.0))})
unary(
    "LeakyRelu",
    lambda x, alpha: F.leaky_relu(x, alpha),
    keeps_zero=True,
    monotone=1,
    params={"alpha": Param(0.01, (0.0, 0.25, 2.0))},
)
unary(
    "Selu",
    selu,
    keeps_sign=True,
    monotone=1,
    params={"alpha": Param(SELU_ALPHA, (0.5, 1.0, 2.0)), "gamma": Param(SELU_GAMMA, (0.5, 1.0, 2.0))},
)
unary(
    "HardSigmoid",
    hard_sigmoid,
    image=Values(0, 1, piled=frozenset({0.0, 1.0})),
    monotone=1,
    params={"alpha": Param(0.2, (0.125, 0.5, 1.0)), "beta": Param(0.5, (0.0, 0.25, 1.0))},
)


def threshold_direction(spec: TableOp) -> int:
    """ThresholdedRelu never decreases for alpha >= 0; below 0, x in (alpha, 0) lies under the zeros of x <= alpha."""
    return 1 if spec.params_filled()["alpha"] >= 0 else 0


def within_pieces(out: Values, pieces: list[tuple[float, float]]) -> Values:
    """A piecewise map's bounds: the hull of the bounds each piece maps its part of the input to."""
    low, high = min(low for low, _ in pieces), max(high for _, high in pieces)
    return replace(out, low=max(out.low, low), high=min(out.high, high))


def threshold_values(spec: TableOp, inputs: list[Values]) -> list[Values]:
    """For alpha < 0 no monotone map, but still bounded: zeros where x <= alpha, x itself above it."""
    (out,) = TableOp.values(spec, inputs)
    alpha, x = spec.params_filled()["alpha"], inputs[0]
    if alpha >= 0:
        return [out]
    pieces = ([(0.0, 0.0)] if x.low <= alpha else []) + ([(max(x.low, alpha), x.high)] if x.high > alpha else [])
    return [within_pieces(out, pieces)]


unary(
    "ThresholdedRelu",
    lambda x, alpha: F.threshold(x, alpha, 0.0),
    domain=away_from_threshold,
    image=Values(piled=ZERO),
    keeps_zero=True,
    direction=threshold_direction,
    values=threshold_values,
    params={"alpha": Param(1.0, (-1.0, 0.0, 0.5, 2.0))},
)


def shrink_values(spec: TableOp, inputs: list[Values]) -> list[Values]:
    """Shrink maps x < -lambd to x + bias, x > lambd to x - bias and the rest to 0: each piece of the input's
    bounds maps on its own (inputs within +-lambd give zeros). An integer result truncates toward zero."""
    (out,) = TableOp.values(spec, inputs)
    params, x = spec.params_filled(), inputs[0]
    bias, lambd = params["bias"], params["lambd"]
    pieces = [(x.low + bias, min(x.high, -lambd) + bias)] if x.low < -lambd else []
    pieces += [(max(x.low, lambd) - bias, x.high - bias)] if x.high > lambd else []
    pieces += [(0.0, 0.0)] if x.low <= lambd and x.high >= -lambd else []
    if x.integral:
        pieces.append((0.0, 0.0))
    return [within_pieces(out, pieces)]


# Integer Shrink stays exact: bias <= 1 <= floor(lambd) + 1, so uint8 results are never negative.
unary(
    "Shrink",
    shrink,
    NUMERIC,
    domain=shrink_domain,
    keeps_zero=True,
    values=shrink_values,
    params={"bias": Param(0.0, (0.5, 1.0)), "lambd": Param(0.5, (0.0, 1.0, 1.5))},
)


CLIP_BOUNDS = {  # (lower choices, upper choices): every lower <= every upper, uint8 bounds >= 0
    "float": ((-2.5, -1.0, 0.0), (0.0, 0.5, 2.5)),
    "int": ((-3, -1, 0), (0, 2, 4)),
    "uint8": ((0, 1, 2), (2, 3, 4)),
}


@register
class Clip(OpSpec):
    """Opset-13+ Clip: min and max are optional scalar constant inputs of the input's type."""

    onnx_op = "Clip"
    ranks = any_rank(1)
    dtypes = same_dtype(1, NUMERIC)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        name = inputs[0].dtype
        lows, highs = CLIP_BOUNDS[name if name == "uint8" else "float" if dtype(name).is_float else "int"]
        return {"min": rng.choice((None, *lows)), "max": rng.choice((None, *highs))}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        x_dtype = emit.input_types[0].dtype
        bounds = ["" if v is None else emit.const(v, x_dtype) for v in (self.attrs["min"], self.attrs["max"])]
        while bounds and not bounds[-1]:
            bounds.pop()
        emit.node("Clip", [inputs[0], *bounds], outputs)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.attrs["min"], self.attrs["max"]
        return x.clone() if low is None and high is None else torch.clamp(x, low, high)

    def values(self, inputs: list[Values]) -> list[Values]:
        x, floor, ceiling = inputs[0], self.attrs["min"], self.attrs["max"]
        low = x.low if floor is None else max(x.low, floor)
        high = x.high if ceiling is None else min(x.high, ceiling)
        piled = frozenset(float(bound) for bound in (floor, ceiling) if bound is not None)
        return [Values(min(low, high), high, self.mapped(x.forced), fixed=x.fixed, piled=self.mapped(x.piled) | piled)]


@register
class PRelu(OpSpec):
    """slope broadcasts to X one way only (ONNX unidirectional broadcasting): the output is X's shape."""

    onnx_op = "PRelu"
    ranks = tuple((x, s) for x in range(MAX_RANK + 1) for s in range(x + 1))
    dtypes = same_dtype(2, (*FLOATS, "int32", "int64"))

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        x, slope = inputs[0].shape, inputs[1].shape
        return [or_(s == 1, s == d) for s, d in zip(reversed(slope), reversed(x))]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def to_torch(self, x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
        return torch.where(x < 0, x * slope, x)

    def values(self, inputs: list[Values]) -> list[Values]:
        """The identity at x >= 0: a non-negative x keeps its bounds, and forced values >= 0 (an
        exclusive CumSum's zeros) stay; below zero the slope scales x, within the bounds of their product."""
        x, slope = inputs
        kept = frozenset(value for value in x.forced if value >= 0)
        steered = x.steered and slope.steered
        if x.low >= 0:
            return [Values(x.low, x.high, kept, integral=x.integral, steered=steered)]
        low, high = interval_product(Values(x.low, min(x.high, 0.0)), slope)
        if x.high > 0:
            low, high = min(low, 0.0), max(high, x.high)
        return [Values(low, high, kept, steered=steered)]

    def domain_loss(self, x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor | None:
        return no_overflow(torch.mul)(x, slope)


@register
class Dropout(OpSpec):
    """Inference only: the ratio input, training_mode=false and the mask output are each
    sometimes present; the output is the input and the mask is all true."""

    onnx_op = "Dropout"
    ranks = any_rank(1)
    dtypes = same_dtype(1, FLOATS)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {
            "ratio": rng.choice((None, 0.0, 0.25, 0.5)),
            "ratio_dtype": rng.choice(FLOATS),
            "training_mode_given": rng.random() < 0.5,
            "mask": rng.random() < 0.5,
            "seed": rng.choice((None, 0, 7)),
        }

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[0].shape)
        mask = [AbsTensor(shape, "bool")] if self.attrs["mask"] else []
        return [AbsTensor(shape, inputs[0].dtype), *mask]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        ratio = self.attrs["ratio"]
        operands = [inputs[0], "" if ratio is None else emit.const(ratio, self.attrs["ratio_dtype"])]
        if self.attrs["training_mode_given"]:
            operands.append(emit.const(False, "bool"))
        while not operands[-1]:
            operands.pop()
        emit.node("Dropout", operands, outputs, seed=self.attrs["seed"])

    def to_torch(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        ratio = self.attrs["ratio"]
        y = F.dropout(x, 0.5 if ratio is None else ratio, training=False)
        return (y, torch.ones_like(x, dtype=torch.bool)) if self.attrs["mask"] else y

    def values(self, inputs: list[Values]) -> list[Values]:
        return [inputs[0], Values(fixed=True)]
