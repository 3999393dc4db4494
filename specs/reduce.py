"""Reductions over axes (ReduceSum/Mean/Max) and normalizations along one axis (Softmax)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from specs.base import (
    MAX_RANK,
    AbsTensor,
    OnnxEmitter,
    OpSpec,
    Symbols,
    register,
    sample_axes,
    spell_axis,
)

POSITIVE_RANKS = tuple((r,) for r in range(1, MAX_RANK + 1))


class Reduce(OpSpec):
    """Opset-18 reductions: axes as a constant input; empty axes reduce everything."""

    ranks = POSITIVE_RANKS
    torch_fn: ClassVar[Callable[..., torch.Tensor]]

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axes = sample_axes(rng, rank, allow_empty=True)
        return {
            "axes": axes,
            "spelled": [spell_axis(rng, a, rank) for a in axes],
            "keepdims": rng.randint(0, 1),
        }

    def reduced_axes(self, rank: int) -> list[int]:
        return self.attrs["axes"] or list(range(rank))

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
        if self.attrs["axes"]:
            operands.append(emit.const(self.attrs["spelled"]))
        emit.node(self.onnx_op, operands, outputs, keepdims=self.attrs["keepdims"])

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        axes = self.reduced_axes(x.dim())
        result = type(self).torch_fn(x, dim=axes, keepdim=bool(self.attrs["keepdims"]))
        return result.to(x.dtype)  # torch.sum widens int32 to int64; ONNX keeps the type


def reduce_op(name: str, torch_fn: Callable, dtypes: tuple[str, ...]) -> type[OpSpec]:
    attrs = {
        "onnx_op": name,
        "torch_fn": staticmethod(torch_fn),
        "dtypes": tuple((t,) for t in dtypes),
        "__module__": __name__,
    }
    return register(type(name, (Reduce,), attrs))


reduce_op("ReduceSum", torch.sum, ("float32", "float64", "int32", "int64"))
reduce_op("ReduceMean", torch.mean, ("float32", "float64"))
reduce_op("ReduceMax", torch.amax, ("float32", "float64", "int32", "int64"))


@register
class Softmax(OpSpec):
    onnx_op = "Softmax"
    ranks = POSITIVE_RANKS
    dtypes = (("float32",), ("float64",))

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axis = rng.randrange(rank)
        return {"axis": axis, "spelled_axis": spell_axis(rng, axis, rank)}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"axis": self.attrs["spelled_axis"]}

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, self.attrs["axis"])
