"""Ops that only rearrange dims: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand."""

from __future__ import annotations

import random
from typing import Any

import torch
import z3

from fuzzer.core.dtypes import ALL
from specs.base import (
    MAX_RANK,
    AbsTensor,
    OnnxEmitter,
    OpSpec,
    Symbols,
    eq_or_one,
    if_,
    product,
    register,
    sample_axes,
    spell_axis,
)

EVERY_DTYPE = tuple((t,) for t in ALL)
ANY_RANK = tuple((r,) for r in range(MAX_RANK + 1))
POSITIVE_RANKS = ANY_RANK[1:]


def sample_axis(rng: random.Random, rank: int) -> dict[str, int]:
    """One axis of a rank-`rank` tensor, with the spelling (maybe negative) that ONNX is given."""
    axis = rng.randrange(rank)
    return {"axis": axis, "onnx_axis": spell_axis(rng, axis, rank)}


@register
class Reshape(OpSpec):
    """Target dims are solved for; one may be written as -1 for ONNX to infer."""

    solved = frozenset({"shape"})
    onnx_op = "Reshape"
    moves_values = True
    ranks = ANY_RANK
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = rng.randint(1, MAX_RANK)
        return {
            "shape": [syms.int(f"dim{i}") for i in range(rank)],
            "infer_axis": rng.choice([None, rng.randrange(rank)]),
        }

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        shape = self.attrs["shape"]
        return [*(d >= 1 for d in shape), product(shape) == product(inputs[0].shape)]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(self.attrs["shape"]), inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        shape = list(self.attrs["shape"])
        if self.attrs["infer_axis"] is not None:
            shape[self.attrs["infer_axis"]] = -1
        emit.node("Reshape", [inputs[0], emit.const(shape)], outputs)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.attrs["shape"])


@register
class Flatten(OpSpec):
    """Dims before `axis` multiply into rows, the rest into columns, for axis in [-r, r]; axis r is
    never spelled negative (it would read as 0)."""

    onnx_op = "Flatten"
    moves_values = True
    ranks = ANY_RANK
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axis = rng.randint(0, rank)
        return {"axis": axis, "onnx_axis": spell_axis(rng, axis, rank) if axis < rank else axis}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape, axis = inputs[0].shape, self.attrs["axis"]
        return [AbsTensor([product(shape[:axis]), product(shape[axis:])], inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"axis": self.attrs["onnx_axis"]}

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.attrs["axis"]
        return x.reshape(product(x.shape[:axis]), product(x.shape[axis:]))


@register
class Transpose(OpSpec):
    onnx_op = "Transpose"
    moves_values = True
    ranks = POSITIVE_RANKS
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        perm = list(range(inputs[0].rank))
        rng.shuffle(perm)
        return {"perm": perm}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor([inputs[0].shape[p] for p in self.attrs["perm"]], inputs[0].dtype)]

    def copies(self) -> bool:
        return self.attrs["perm"] == sorted(self.attrs["perm"])

    def onnx_attrs(self) -> dict[str, Any]:
        return {"perm": self.attrs["perm"]}

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.attrs["perm"])


@register
class Squeeze(OpSpec):
    """Removes unit dims named by a constant axes input."""

    onnx_op = "Squeeze"
    moves_values = True
    ranks = POSITIVE_RANKS
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axes = sample_axes(rng, rank)
        return {"axes": axes, "onnx_axes": [spell_axis(rng, a, rank) for a in axes]}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return [inputs[0].shape[a] == 1 for a in self.attrs["axes"]]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        kept = [d for i, d in enumerate(inputs[0].shape) if i not in self.attrs["axes"]]
        return [AbsTensor(kept, inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        emit.node("Squeeze", [inputs[0], emit.const(self.attrs["onnx_axes"])], outputs)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(tuple(self.attrs["axes"]))


@register
class Unsqueeze(OpSpec):
    """Inserts unit dims at positions of the output."""

    onnx_op = "Unsqueeze"
    moves_values = True
    ranks = tuple((r,) for r in range(MAX_RANK))
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        out_rank = rng.randint(inputs[0].rank + 1, MAX_RANK)
        axes = sorted(rng.sample(range(out_rank), out_rank - inputs[0].rank))
        return {"axes": axes, "onnx_axes": [spell_axis(rng, a, out_rank) for a in axes]}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[0].shape)
        for axis in self.attrs["axes"]:
            shape.insert(axis, 1)
        return [AbsTensor(shape, inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        emit.node("Unsqueeze", [inputs[0], emit.const(self.attrs["onnx_axes"])], outputs)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        for axis in self.attrs["axes"]:
            x = x.unsqueeze(axis)
        return x


@register
class Expand(OpSpec):
    """ONNX Expand broadcasts both ways: a 1 in the target keeps the input's dim."""

    solved = frozenset({"shape"})
    onnx_op = "Expand"
    moves_values = True
    copies_inputs = True
    ranks = ANY_RANK
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = rng.randint(max(inputs[0].rank, 1), MAX_RANK)
        return {"shape": [syms.int(f"dim{i}") for i in range(rank)]}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        shape = self.attrs["shape"]
        cons = [d >= 1 for d in shape]
        for a, b in zip(reversed(inputs[0].shape), reversed(shape)):
            cons.append(eq_or_one(a, b))
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x, shape = inputs[0].shape, self.attrs["shape"]
        lead = len(shape) - len(x)
        out = list(shape[:lead])
        for a, b in zip(x, shape[lead:]):
            out.append(if_(b == 1, a, b))
        return [AbsTensor(out, inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        emit.node("Expand", [inputs[0], emit.const(self.attrs["shape"])], outputs)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(torch.broadcast_shapes(x.shape, tuple(self.attrs["shape"])))
