"""Ops that select, repeat or combine data: Slice, Concat, Split, Tile, Trilu, Pad, CenterCropPad."""

from __future__ import annotations

import functools
import random
from typing import Any

import torch
import torch.nn.functional as F
import z3

from fuzzer.core.dtypes import ALL
from specs.base import (
    MAX_RANK,
    AbsTensor,
    Dim,
    OnnxEmitter,
    OpSpec,
    Symbols,
    and_,
    if_,
    register,
    same_dtype,
    same_rank,
    sample_axes,
    spell_axis,
)
from specs.constant import sample_scalar
from specs.conv import MAX_PAD, torch_pad_order
from specs.shape import EVERY_DTYPE, POSITIVE_RANKS, sample_axis
from specs.values import Values, constant

INT64_MAX = 2**63 - 1


@register
class Slice(OpSpec):
    """Positive steps only (torch has no negative-step slicing); ONNX sees negative and
    out-of-range spellings of the same bounds so its index normalization is exercised."""

    solved = frozenset({"starts", "ends"})
    onnx_op = "Slice"
    moves_values = True
    ranks = POSITIVE_RANKS
    dtypes = EVERY_DTYPE

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
            "onnx_axes": [spell_axis(rng, a, rank) for a in axes],
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
        consts = [starts, ends, self.attrs["onnx_axes"], self.attrs["steps"]]
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
    copies_inputs = True
    ranks = tuple(r for n in (2, 3, 4) for r in same_rank(n, range(1, MAX_RANK + 1)))
    dtypes = tuple(d for n in (2, 3, 4) for d in same_dtype(n, ALL))

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return sample_axis(rng, inputs[0].rank)

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        first, axis = inputs[0].shape, self.attrs["axis"]
        return [a == b for t in inputs[1:] for i, (a, b) in enumerate(zip(first, t.shape)) if i != axis]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[0].shape)
        shape[self.attrs["axis"]] = sum(t.shape[self.attrs["axis"]] for t in inputs)
        return [AbsTensor(shape, inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"axis": self.attrs["onnx_axis"]}

    def to_torch(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, self.attrs["axis"])

    def values(self, inputs: list[Values]) -> list[Values]:
        return [functools.reduce(Values.union, inputs)]


def ceil_div(dim: Dim, parts: int) -> Dim:
    """Integer ceil(dim / parts) for a Python or a Z3 dim (Z3 `/` on ints floors)."""
    return -(-dim // parts) if isinstance(dim, int) else (dim + parts - 1) / parts


@register
class Split(OpSpec):
    """Opset-18 Split, either with sizes as a constant input or with `num_outputs`: chunks of
    ceil(d / n) and a smaller last one. Lowered to torch.split with that chunk size (not
    tensor_split, which spreads the remainder); the last chunk is kept non-empty, where ONNX's
    rule would give it a size <= 0."""

    solved = frozenset({"sizes"})
    onnx_op = "Split"
    moves_values = True
    ranks = POSITIVE_RANKS
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        count = rng.randint(1, 4)
        return sample_axis(rng, inputs[0].rank) | {
            "count": count,
            "sizes": [syms.int(f"size{i}") for i in range(count)] if rng.random() < 0.5 else None,
        }

    def chunk_sizes(self, dim: Dim) -> list[Dim]:
        if self.attrs["sizes"] is not None:
            return list(self.attrs["sizes"])
        count = self.attrs["count"]
        chunk = ceil_div(dim, count)
        return [chunk] * (count - 1) + [dim - (count - 1) * chunk]

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        dim = inputs[0].shape[self.attrs["axis"]]
        sizes = self.chunk_sizes(dim)
        return [*(s >= 1 for s in sizes), sum(sizes) == dim]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x, axis = inputs[0], self.attrs["axis"]
        outputs = []
        for size in self.chunk_sizes(x.shape[axis]):
            shape = list(x.shape)
            shape[axis] = size
            outputs.append(AbsTensor(shape, x.dtype))
        return outputs

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        axis, sizes = self.attrs["onnx_axis"], self.attrs["sizes"]
        if sizes is None:
            emit.node("Split", inputs, outputs, axis=axis, num_outputs=self.attrs["count"])
        else:
            emit.node("Split", [inputs[0], emit.const(sizes)], outputs, axis=axis)

    def to_torch(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        axis = self.attrs["axis"]
        sizes = self.attrs["sizes"] or ceil_div(x.shape[axis], self.attrs["count"])
        return tuple(torch.split(x, sizes, axis))


@register
class Tile(OpSpec):
    """Repeats per axis are concrete (1-3) and given as a constant input."""

    onnx_op = "Tile"
    moves_values = True
    ranks = POSITIVE_RANKS
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"repeats": [rng.choice([1, 1, 2, 3]) for _ in range(inputs[0].rank)]}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = [d * r for d, r in zip(inputs[0].shape, self.attrs["repeats"])]
        return [AbsTensor(shape, inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        emit.node("Tile", [inputs[0], emit.const(self.attrs["repeats"])], outputs)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(self.attrs["repeats"])


@register
class Trilu(OpSpec):
    """Triangle of the last two dims; k is an optional 0-D constant and may lie outside the matrix."""

    onnx_op = "Trilu"
    ranks = tuple((r,) for r in range(2, MAX_RANK + 1))
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"upper": rng.randint(0, 1), "k": rng.choice([None, 0, 1, -1, 2, -3, 9])}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        k = self.attrs["k"]
        operands = [inputs[0]] if k is None else [inputs[0], emit.const(k)]
        emit.node("Trilu", operands, outputs, upper=self.attrs["upper"])

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        triangle = torch.triu if self.attrs["upper"] else torch.tril
        return triangle(x, self.attrs["k"] or 0)

    def values(self, inputs: list[Values]) -> list[Values]:
        return [inputs[0].union(constant(0))]


PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}  # ONNX -> torch
TORCH_PADDED_AXES = 3  # F.pad pads at most the last 3 axes in reflect/replicate mode


@register
class Pad(OpSpec):
    """Opset-18 Pad in constant, reflect and edge mode, sometimes with the `axes` input.

    Constant mode also crops (negative pads, as torch F.pad does), keeping at least one element of
    every axis. reflect needs pads < dim in both ONNX and torch; torch pads only the last 3 axes in
    reflect/replicate mode and has no bool kernels for them, so the lowering views the tensor as
    (1, rest, *last axes) and pads bool as uint8.
    """

    solved = frozenset({"begins", "ends"})
    onnx_op = "Pad"
    ranks = POSITIVE_RANKS
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        mode = rng.choice(list(PAD_MODES))
        if mode == "constant":
            axes = sample_axes(rng, rank)
        else:
            tail = min(rank, TORCH_PADDED_AXES)
            axes = [rank - tail + a for a in sample_axes(rng, tail)]
        return {
            "mode": mode,
            "axes": axes,
            "onnx_axes": [spell_axis(rng, a, rank) for a in axes] if rng.random() < 0.5 else None,
            "begins": [syms.int(f"pad_begin{a}", low=0) for a in axes],
            "ends": [syms.int(f"pad_end{a}", low=0) for a in axes],
            "crops": [rng.random() < 0.3 and mode == "constant" for _ in range(2 * len(axes))],
            "value": sample_scalar(rng, inputs[0].dtype) if mode == "constant" and rng.random() < 0.7 else None,
        }

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        shape, mode = inputs[0].shape, self.attrs["mode"]
        cons = []
        pads = [*self.attrs["begins"], *self.attrs["ends"]]
        for pad, crop in zip(pads, self.attrs["crops"]):
            cons.append(and_(pad >= -MAX_PAD, pad <= -1) if crop else and_(pad >= 0, pad <= MAX_PAD))
        for axis, begin, end in zip(self.attrs["axes"], self.attrs["begins"], self.attrs["ends"]):
            dim = shape[axis]
            if mode == "reflect":
                cons += [begin <= dim - 1, end <= dim - 1]
            kept = dim + if_(begin < 0, begin, 0) + if_(end < 0, end, 0)
            cons.append(kept >= 1)
        return cons

    def full_pads(self, rank: int) -> list[Dim]:
        """ONNX's [begin_0..begin_n, end_0..end_n] over every axis, zero where not padded."""
        pads: list[Dim] = [0] * (2 * rank)
        for axis, begin, end in zip(self.attrs["axes"], self.attrs["begins"], self.attrs["ends"]):
            pads[axis], pads[axis + rank] = begin, end
        return pads

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x = inputs[0]
        pads = self.full_pads(x.rank)
        return [AbsTensor([d + pads[i] + pads[i + x.rank] for i, d in enumerate(x.shape)], x.dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        spelled_axes, value = self.attrs["onnx_axes"], self.attrs["value"]
        if spelled_axes is None:
            pads = self.full_pads(emit.input_types[0].rank)
        else:
            pads = [*self.attrs["begins"], *self.attrs["ends"]]
        operands = [inputs[0], emit.const(pads), "" if value is None else emit.const(value, emit.input_types[0].dtype)]
        if spelled_axes is not None:
            operands.append(emit.const(spelled_axes))
        while operands[-1] == "":
            operands.pop()
        emit.node("Pad", operands, outputs, mode=self.attrs["mode"])

    def values(self, inputs: list[Values]) -> list[Values]:
        if self.attrs["mode"] != "constant":
            return [inputs[0]]
        return [inputs[0].union(constant(self.attrs["value"] or 0))]

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.full_pads(x.dim())
        if self.attrs["mode"] == "constant":
            return F.pad(x, torch_pad_order(pads), value=self.attrs["value"] or 0)
        tail = x.dim() - min(self.attrs["axes"])
        lead = x.shape[: x.dim() - tail]
        tail_pads = pads[x.dim() - tail : x.dim()] + pads[2 * x.dim() - tail :]
        batched = x.reshape(1, -1, *x.shape[x.dim() - tail :])
        batched = batched.to(torch.uint8) if x.dtype == torch.bool else batched
        padded = F.pad(batched, torch_pad_order(tail_pads), mode=PAD_MODES[self.attrs["mode"]])
        return padded.to(x.dtype).reshape(*lead, *padded.shape[2:])


@register
class CenterCropPad(OpSpec):
    """Opset-18 center crop or zero pad of some axes to solved sizes, as one F.pad whose negative
    pads crop. ONNX rounds the crop start down but puts the odd pad pixel at the end, so the begin
    pad is floor((target - dim) / 2) when padding and -floor((dim - target) / 2) when cropping.
    Sizes are int64: ONNX's own function body for CenterCropPad feeds int32 sizes to Max beside the
    int64 Shape output, a type error that ONNX Runtime rejects."""

    solved = frozenset({"sizes"})
    onnx_op = "CenterCropPad"
    ranks = POSITIVE_RANKS
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axes = sample_axes(rng, rank)
        named = rng.random() < 0.5 or len(axes) < rank  # without the attribute, every axis is cropped
        return {
            "axes": axes,
            "onnx_axes": [spell_axis(rng, a, rank) for a in axes] if named else None,
            "sizes": [syms.int(f"size{a}") for a in axes],
        }

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        shape = inputs[0].shape
        return [size <= shape[a] + 2 * MAX_PAD for a, size in zip(self.attrs["axes"], self.attrs["sizes"])]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[0].shape)
        for axis, size in zip(self.attrs["axes"], self.attrs["sizes"]):
            shape[axis] = size
        return [AbsTensor(shape, inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        sizes = emit.const(self.attrs["sizes"])
        emit.node("CenterCropPad", [inputs[0], sizes], outputs, axes=self.attrs["onnx_axes"])

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        pads = [0] * (2 * x.dim())
        for axis, size in zip(self.attrs["axes"], self.attrs["sizes"]):
            dim = x.shape[axis]
            begin = (size - dim) // 2 if size >= dim else -((dim - size) // 2)
            pads[axis], pads[axis + x.dim()] = begin, size - dim - begin
        return F.pad(x, torch_pad_order(pads))

    def values(self, inputs: list[Values]) -> list[Values]:
        return [inputs[0].union(constant(0))]
