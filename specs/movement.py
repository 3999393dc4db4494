"""Ops that select or combine data: Slice, Concat, Pad."""

from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F
import z3

from fuzzer.dtypes import ALL
from specs.base import (
    MAX_RANK,
    AbsTensor,
    OnnxEmitter,
    OpSpec,
    Symbols,
    register,
    same_dtype,
    same_rank,
    sample_axes,
    spell_axis,
)
from specs.conv import torch_pad_order

INT64_MAX = 2**63 - 1


@register
class Slice(OpSpec):
    """Positive steps only (torch has no negative-step slicing); ONNX sees negative and
    out-of-range spellings of the same bounds so its index normalization is exercised."""

    onnx_op = "Slice"
    ranks = tuple((r,) for r in range(1, MAX_RANK + 1))
    dtypes = tuple((t,) for t in ALL)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axes = sample_axes(rng, rank)
        return {
            "axes": axes,
            "starts": [syms.int(f"start{a}") for a in axes],
            "ends": [syms.int(f"end{a}") for a in axes],
            "steps": [rng.choice([1, 1, 2, 3]) for _ in axes],
            "spelling": [rng.choice(["plain", "negative", "open_end"]) for _ in axes],
            "spelled_axes": [spell_axis(rng, a, rank) for a in axes],
        }

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        shape = inputs[0].shape
        cons = []
        for axis, start, end in zip(self.attrs["axes"], self.attrs["starts"], self.attrs["ends"]):
            cons += [start >= 0, start < end, end <= shape[axis]]
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[0].shape)
        for axis, start, end, step in zip(
            self.attrs["axes"], self.attrs["starts"], self.attrs["ends"], self.attrs["steps"]
        ):
            shape[axis] = (end - start + step - 1) / step
        return [AbsTensor(shape, inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        starts, ends = [], []
        shape = emit.input_types[0].shape
        for axis, start, end, spelling in zip(
            self.attrs["axes"], self.attrs["starts"], self.attrs["ends"], self.attrs["spelling"]
        ):
            if spelling == "negative":
                start, end = start - shape[axis], end - shape[axis] if end < shape[axis] else end
            elif spelling == "open_end" and end == shape[axis]:
                end = INT64_MAX
            starts.append(start)
            ends.append(end)
        consts = [starts, ends, self.attrs["spelled_axes"], self.attrs["steps"]]
        emit.node("Slice", [inputs[0], *(emit.const(c) for c in consts)], outputs)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        index = [slice(None)] * x.dim()
        for axis, start, end, step in zip(
            self.attrs["axes"], self.attrs["starts"], self.attrs["ends"], self.attrs["steps"]
        ):
            index[axis] = slice(start, end, step)
        return x[tuple(index)]


@register
class Concat(OpSpec):
    onnx_op = "Concat"
    ranks = tuple(r for n in (2, 3, 4) for r in same_rank(n, range(1, MAX_RANK + 1)))
    dtypes = tuple(d for n in (2, 3, 4) for d in same_dtype(n, ALL))

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axis = rng.randrange(rank)
        return {"axis": axis, "spelled_axis": spell_axis(rng, axis, rank)}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        first, axis = inputs[0].shape, self.attrs["axis"]
        return [a == b for t in inputs[1:] for i, (a, b) in enumerate(zip(first, t.shape)) if i != axis]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[0].shape)
        shape[self.attrs["axis"]] = sum(t.shape[self.attrs["axis"]] for t in inputs)
        return [AbsTensor(shape, inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"axis": self.attrs["spelled_axis"]}

    def to_torch(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, self.attrs["axis"])


@register
class Pad(OpSpec):
    """Constant-mode padding with non-negative pads, given as a constant pads input."""

    onnx_op = "Pad"
    ranks = tuple((r,) for r in range(1, MAX_RANK + 1))
    dtypes = tuple((t,) for t in ("float32", "float64", "int32", "int64"))

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        return {
            "pads": [syms.int(f"pad{i}") for i in range(2 * rank)],
            "value": rng.choice([0, 1, -2]),
        }

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return [z3.And(p >= 0, p <= 3) for p in self.attrs["pads"]]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape, pads = inputs[0].shape, self.attrs["pads"]
        rank = len(shape)
        return [AbsTensor([d + pads[i] + pads[i + rank] for i, d in enumerate(shape)], inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        value = emit.const(self.attrs["value"], emit.input_types[0].dtype)
        emit.node("Pad", [inputs[0], emit.const(self.attrs["pads"]), value], outputs, mode="constant")

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, torch_pad_order(self.attrs["pads"]), value=self.attrs["value"])
