"""Ops along one axis: ArgMax/ArgMin, Softmax, LogSoftmax, Hardmax, CumSum, TopK."""

from __future__ import annotations

import random
from typing import Any, ClassVar

import numpy as np
import torch
import z3

from specs.base import AbsTensor, OnnxEmitter, OpSpec, Symbols, register, spell_axis
from specs.elementwise import MARGIN, below, exp_limit
from specs.reduce import FLOATS, ORDERED, POSITIVE_RANKS, SUMMABLE, sum_fits
from specs.values import ZERO, Values, constant, summed


class AlongAxis(OpSpec):
    """One axis attribute (sometimes spelled negative); unless said otherwise the shape of x is kept."""

    ranks = POSITIVE_RANKS
    dtypes = tuple((t,) for t in FLOATS)
    # Softmax, Hardmax, ArgMax... of a one-element axis are constants (1, 0) that hide whatever reads them.
    min_axis_dim: ClassVar[int] = 1

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axis = rng.randrange(rank)
        return {"axis": axis, "onnx_axis": spell_axis(rng, axis, rank)}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        dim = inputs[0].shape[self.attrs["axis"]]
        return [dim >= type(self).min_axis_dim] if type(self).min_axis_dim > 1 else []

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"axis": self.attrs["onnx_axis"]}


def extreme_gap(x: torch.Tensor, axis: int, largest: bool = True) -> torch.Tensor:
    """Loss keeping the extreme along `axis` MARGIN apart from the runner-up.

    Which index wins must not hinge on rounding noise from the ops before; integer values are
    exact, so integer ties are left in and resolved by the rule ONNX states for the op.
    """
    if not x.dtype.is_floating_point or x.shape[axis] < 2:
        return torch.zeros(())
    top = torch.topk(x, 2, dim=axis, largest=largest).values
    first, second = top.unbind(axis)
    return torch.relu(MARGIN - (first - second).abs()).sum()


class ArgExtreme(AlongAxis):
    """ArgMax/ArgMin; torch picks the first extreme, so select_last_index=1 lowers through a flip."""

    dtypes = tuple((t,) for t in ORDERED)
    largest: ClassVar[bool]
    min_axis_dim = 2

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {
            "keepdims": rng.randint(0, 1),
            "select_last_index": rng.randint(0, 1),
        }

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[0].shape)
        if self.attrs["keepdims"]:
            shape[self.attrs["axis"]] = 1
        else:
            del shape[self.attrs["axis"]]
        return [AbsTensor(shape, "int64")]

    def onnx_attrs(self) -> dict[str, Any]:
        return super().onnx_attrs() | {
            "keepdims": self.attrs["keepdims"],
            "select_last_index": self.attrs["select_last_index"],
        }

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        axis, keepdim = self.attrs["axis"], bool(self.attrs["keepdims"])
        pick = torch.argmax if type(self).largest else torch.argmin
        if not self.attrs["select_last_index"]:
            return pick(x, axis, keepdim)
        return x.shape[axis] - 1 - pick(x.flip(axis), axis, keepdim)

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        return extreme_gap(x, self.attrs["axis"], type(self).largest)


@register
class ArgMax(ArgExtreme):
    onnx_op = "ArgMax"
    largest = True


@register
class ArgMin(ArgExtreme):
    onnx_op = "ArgMin"
    largest = False


@register
class Softmax(AlongAxis):
    onnx_op = "Softmax"
    min_axis_dim = 2

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, self.attrs["axis"])

    def values(self, inputs: list[Values]) -> list[Values]:
        return [Values(0, 1)]


def log_softmax_spread(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Keep max - x moderate, so that even exp-then-log implementations stay finite and exact."""
    return below(x.amax(axis, keepdim=True) - x, 2 * exp_limit(x.dtype))


@register
class LogSoftmax(AlongAxis):
    onnx_op = "LogSoftmax"
    min_axis_dim = 2

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(x, self.attrs["axis"])

    def values(self, inputs: list[Values]) -> list[Values]:
        return [Values(high=0)]

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        return log_softmax_spread(x, self.attrs["axis"])


@register
class Hardmax(AlongAxis):
    """1 at the first maximum along the axis, 0 elsewhere; the maximum is kept clear of ties."""

    onnx_op = "Hardmax"
    min_axis_dim = 2

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.attrs["axis"]
        return torch.zeros_like(x).scatter(axis, x.argmax(axis, keepdim=True), 1.0)

    def values(self, inputs: list[Values]) -> list[Values]:
        return [Values(0, 1, ZERO, integral=True)]

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        return extreme_gap(x, self.attrs["axis"])


@register
class CumSum(AlongAxis):
    """Axis as a 0-D int32/int64 constant input; exclusive shifts in a zero, reverse sums from the end."""

    onnx_op = "CumSum"
    dtypes = tuple((t,) for t in SUMMABLE)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {
            "exclusive": rng.randint(0, 1),
            "reverse": rng.randint(0, 1),
            "axis_dtype": rng.choice(["int32", "int64"]),
        }

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        a = self.attrs
        axis = emit.const(np.asarray(a["onnx_axis"]), a["axis_dtype"])
        emit.node("CumSum", [inputs[0], axis], outputs, exclusive=a["exclusive"], reverse=a["reverse"])

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        axis, reverse = self.attrs["axis"], self.attrs["reverse"]
        sums = torch.cumsum(x.flip(axis) if reverse else x, axis, dtype=x.dtype)
        if self.attrs["exclusive"]:
            length = sums.shape[axis]
            sums = torch.cat([torch.zeros_like(sums.narrow(axis, 0, 1)), sums.narrow(axis, 0, length - 1)], axis)
        return sums.flip(axis) if reverse else sums

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        return sum_fits(x, [self.attrs["axis"]])

    def values(self, inputs: list[Values]) -> list[Values]:
        """Sums of the elements so far; an exclusive sum starts from zero whatever the inputs."""
        sums = summed(inputs[0])
        return [sums.union(constant(0)) if self.attrs["exclusive"] else sums]


@register
class TopK(AlongAxis):
    """k as a 1-element constant input; values and int64 indices, always sorted.

    ONNX breaks ties by the lower index; a stable sort does the same, so exact (integer) ties are
    kept. sorted=0 leaves the output order to the implementation, so it is never drawn.
    """

    solved = frozenset({"k"})
    onnx_op = "TopK"
    dtypes = tuple((t,) for t in ORDERED)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {"k": syms.int("k"), "largest": rng.randint(0, 1)}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        k = self.attrs["k"]
        return [k >= 1, k <= inputs[0].shape[self.attrs["axis"]]]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[0].shape)
        shape[self.attrs["axis"]] = self.attrs["k"]
        return [AbsTensor(shape, inputs[0].dtype), AbsTensor(list(shape), "int64")]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        k = emit.const([self.attrs["k"]])
        emit.node("TopK", [inputs[0], k], outputs, axis=self.attrs["onnx_axis"], largest=self.attrs["largest"])

    def to_torch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        axis, k = self.attrs["axis"], self.attrs["k"]
        values, indices = torch.sort(x, stable=True, dim=axis, descending=bool(self.attrs["largest"]))
        return values.narrow(axis, 0, k), indices.narrow(axis, 0, k)

    def values(self, inputs: list[Values]) -> list[Values]:
        return [inputs[0], Values(low=0)]

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        """Neighbours among the first k+1 sorted values stay MARGIN apart, so no near-tie decides."""
        if not x.dtype.is_floating_point:
            return None
        axis = self.attrs["axis"]
        ranked = torch.sort(x, axis, descending=bool(self.attrs["largest"])).values
        head = ranked.narrow(axis, 0, min(self.attrs["k"] + 1, x.shape[axis]))
        return torch.relu(MARGIN - head.diff(dim=axis).abs()).sum()
