"""Ops driven by index tensors: Gather, GatherElements, GatherND, ScatterElements, ScatterND, OneHot,
and ReverseSequence (whose lengths are counts kept in range the same way).

Index tensors are leaf inputs whose values `index_bounds` keeps inside [-s, s-1] for an axis of size s,
the range ONNX defines; out-of-range indices are never generated. ONNX counts negative indices from the
end while torch's index_select, gather and scatter reject them, so every torch lowering wraps them first.
"""

from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F
import z3

from fuzzer.core.dtypes import ALL, FLOATS, dtype
from fuzzer.core.ir import TensorType
from specs.base import MAX_RANK, AbsTensor, OnnxEmitter, OpSpec, Symbols, product, register, same_rank, spell_axis
from specs.shape import sample_axis
from specs.values import Need, Values

INDEX_DTYPES = ("int32", "int64")
DATA_RANKS = range(1, MAX_RANK + 1)
# ONNX reduction name -> torch scatter_reduce name; "none" is a plain scatter.
REDUCTIONS = {"none": None, "add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def index_range(size: int, index_dtype: str = "int64") -> tuple[int, int]:
    """Every index ONNX accepts along an axis of `size` (negatives count from the end)."""
    return (0 if index_dtype.startswith("uint") else -size, size - 1)


def wrap_negative(index: torch.Tensor, size: int | torch.Tensor) -> torch.Tensor:
    """ONNX's negative indices made non-negative, as torch's indexing kernels require."""
    index = index.long()
    return torch.where(index < 0, index + size, index)


def reductions_for(dtype_name: str) -> list[str]:
    """bool has no arithmetic, ONNX Runtime (a reference) has no float16 scatter reductions, and a
    product of eight int8 or uint8 values overflows."""
    if dtype_name in ("bool", "float16"):
        return ["none"]
    if dtype_name in ("int8", "uint8"):
        return ["none", "add", "max", "min"]
    return list(REDUCTIONS)


def scatter(data: torch.Tensor, axis: int, index: torch.Tensor, updates: torch.Tensor, reduction: str) -> torch.Tensor:
    """ONNX scatter semantics: with a reduction, `data` takes part (include_self)."""
    torch_reduction = REDUCTIONS[reduction]
    if torch_reduction is None:
        return data.scatter(axis, index, updates)
    return data.scatter_reduce(axis, index, updates, torch_reduction, include_self=True)


class AxisIndexing(OpSpec):
    """Gather-like ops with one data axis that the index values address."""

    leaf_inputs = (1,)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return sample_axis(rng, inputs[0].rank)

    def onnx_attrs(self) -> dict[str, Any]:
        return {"axis": self.attrs["onnx_axis"]}

    def index_bounds(self, input_index: int, inputs: list[TensorType]) -> tuple[int, int] | None:
        if input_index != 1 or self.attrs["axis"] is None:
            return None  # None: triage's trigger search left the attribute out
        return index_range(inputs[0].shape[self.attrs["axis"]])


@register
class Gather(AxisIndexing):
    """Output is data.shape[:axis] + indices.shape + data.shape[axis+1:]; indices of any rank."""

    onnx_op = "Gather"
    moves_values = True
    ranks = tuple((r, q) for r in DATA_RANKS for q in range(MAX_RANK) if r + q - 1 <= MAX_RANK)
    dtypes = tuple((t, i) for t in ALL for i in INDEX_DTYPES)

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        data, indices, axis = inputs[0].shape, inputs[1].shape, self.attrs["axis"]
        return [AbsTensor([*data[:axis], *indices, *data[axis + 1 :]], inputs[0].dtype)]

    def to_torch(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        axis = self.attrs["axis"]
        flat = wrap_negative(indices, x.shape[axis]).reshape(-1)
        return x.index_select(axis, flat).reshape((*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :]))


class ElementwiseIndexing(AxisIndexing):
    """Indices have data's rank and may not exceed data's dims off the axis (torch.gather/scatter too)."""

    ranks = same_rank(2, DATA_RANKS)

    def index_fits(self, data: AbsTensor, indices: AbsTensor) -> list[z3.BoolRef]:
        return [i <= d for axis, (i, d) in enumerate(zip(indices.shape, data.shape)) if axis != self.attrs["axis"]]


@register
class GatherElements(ElementwiseIndexing):
    onnx_op = "GatherElements"
    moves_values = True
    dtypes = tuple((t, i) for t in ALL for i in INDEX_DTYPES)

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return self.index_fits(inputs[0], inputs[1])

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[1].shape), inputs[0].dtype)]

    def to_torch(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        axis = self.attrs["axis"]
        return x.gather(axis, wrap_negative(indices, x.shape[axis]))


class Scatter(OpSpec):
    """Writes updates into a copy of data, or folds them in with a reduction."""

    def values(self, inputs: list[Values]) -> list[Values]:
        """Elements nothing addresses keep data's values (its padding zeros too); a write, a max or a
        min stays within both operands' bounds, a sum or a product does not."""
        data, updates = inputs[0], inputs[2]
        if self.attrs["reduction"] in ("add", "mul"):
            return [Values(forced=data.forced)]
        return [data.union(updates)]

    def pulled_need(self, need: Need) -> Need | None:
        """Elements nothing addresses keep data's values, and the indices seldom address them all: data
        must meet a reader's need as well (Sqrt of a scatter into log-probabilities cannot hold)."""
        return need


@register
class ScatterElements(Scatter, ElementwiseIndexing):
    """With reduction none, duplicate targets make ONNX's result order-dependent, so the indices
    then have a single entry along the axis (every target is hit once); with a reduction, duplicate
    indices are generated freely and fold in a defined way."""

    onnx_op = "ScatterElements"
    ranks = same_rank(3, DATA_RANKS)
    dtypes = tuple((t, i, t) for t in ALL for i in INDEX_DTYPES)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {"reduction": rng.choice(reductions_for(inputs[0].dtype))}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        data, indices, updates = inputs
        cons = [*self.index_fits(data, indices), *(i == u for i, u in zip(indices.shape, updates.shape))]
        if self.attrs["reduction"] == "none":
            cons.append(indices.shape[self.attrs["axis"]] == 1)
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return super().onnx_attrs() | {"reduction": self.attrs["reduction"]}

    def to_torch(self, x: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        axis = self.attrs["axis"]
        return scatter(x, axis, wrap_negative(indices, x.shape[axis]), updates, self.attrs["reduction"])


class TupleIndexing(OpSpec):
    """GatherND/ScatterND: the last index dim holds k-tuples addressing data's leading axes (after
    any batch dims). One bound covers every tuple position, so it is the smallest addressed dim."""

    leaf_inputs = (1,)

    def addressed_axes(self) -> range:
        raise NotImplementedError

    def index_bounds(self, input_index: int, inputs: list[TensorType]) -> tuple[int, int] | None:
        if input_index != 1:
            return None
        return index_range(min(inputs[0].shape[a] for a in self.addressed_axes()))

    def wrapped_tuples(self, data: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        sizes = torch.tensor([data.shape[a] for a in self.addressed_axes()])
        return wrap_negative(indices, sizes)


@register
class GatherND(TupleIndexing):
    """batch_dims b < min(q, r); the tuple length m is chosen so the output rank stays <= MAX_RANK."""

    onnx_op = "GatherND"
    moves_values = True
    ranks = tuple((r, q) for r in DATA_RANKS for q in range(1, MAX_RANK + 1))
    dtypes = tuple((t, "int64") for t in ALL)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        r, q = inputs[0].rank, inputs[1].rank
        batch = rng.randint(0, min(r, q) - 1)
        tuple_length = rng.randint(max(1, q - 1 + r - batch - MAX_RANK), r - batch)
        return {"batch_dims": batch, "tuple_length": tuple_length}

    def addressed_axes(self) -> range:
        batch = self.attrs["batch_dims"]
        return range(batch, batch + self.attrs["tuple_length"])

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        data, indices = inputs[0].shape, inputs[1].shape
        batch = self.attrs["batch_dims"]
        return [indices[-1] == self.attrs["tuple_length"], *(d == i for d, i in zip(data[:batch], indices[:batch]))]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        rest = inputs[0].shape[self.addressed_axes().stop :]
        return [AbsTensor([*inputs[1].shape[:-1], *rest], inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"batch_dims": self.attrs["batch_dims"]}

    def to_torch(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        batch, length = self.attrs["batch_dims"], self.attrs["tuple_length"]
        tuples = self.wrapped_tuples(x, indices)
        batched = x.reshape(-1, *x.shape[batch:])
        tuples = tuples.reshape(batched.shape[0], -1, length)
        batch_index = torch.arange(batched.shape[0]).unsqueeze(1)
        gathered = batched[(batch_index, *tuples.unbind(-1))]
        return gathered.reshape((*indices.shape[:-1], *x.shape[batch + length :]))


@register
class ScatterND(Scatter, TupleIndexing):
    """updates.shape = indices.shape[:-1] + data.shape[k:]. With reduction none two equal tuples make
    the result order-dependent, so the indices then hold a single tuple; reductions take duplicates."""

    onnx_op = "ScatterND"
    ranks = tuple(
        (r, q, q - 1 + r - k)
        for r in DATA_RANKS
        for q in range(1, MAX_RANK + 1)
        for k in range(1, r + 1)
        if q - 1 + r - k <= MAX_RANK
    )
    dtypes = tuple((t, "int64", t) for t in ALL)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        data, indices, updates = (t.rank for t in inputs)
        return {"tuple_length": indices - 1 + data - updates, "reduction": rng.choice(reductions_for(inputs[0].dtype))}

    def addressed_axes(self) -> range:
        return range(self.attrs["tuple_length"])

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        data, indices, updates = (t.shape for t in inputs)
        length = self.attrs["tuple_length"]
        expected = [*indices[:-1], *data[length:]]
        cons = [indices[-1] == length, *(u == e for u, e in zip(updates, expected))]
        if self.attrs["reduction"] == "none":
            cons += [d == 1 for d in indices[:-1]]
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"reduction": self.attrs["reduction"]}

    def to_torch(self, x: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        """Scatter rows of x viewed as (prod(addressed dims), *slice) at the tuples' linear offsets."""
        length = self.attrs["tuple_length"]
        slice_shape = x.shape[length:]
        strides = torch.tensor([product(x.shape[a + 1 : length]) for a in range(length)])
        offsets = (self.wrapped_tuples(x, indices) * strides).sum(-1).reshape(-1)
        rows = updates.reshape(-1, *slice_shape)
        index = offsets.reshape(-1, *[1] * len(slice_shape)).expand_as(rows)
        flat = x.reshape(-1, *slice_shape)
        return scatter(flat, 0, index, rows, self.attrs["reduction"]).reshape(x.shape)


ONE_HOT_VALUES = {"float": [[0, 1], [-1.5, 2], [3, -0.5]], "int": [[0, 1], [-2, 3], [5, -1]], "other": [[0, 1], [1, 0]]}


@register
class OneHot(OpSpec):
    """depth and [off, on] values are constants (depth a scalar or a one-element vector, of an integer
    or float type that ONNX casts to int64); indices stay in [-depth, depth-1], so the all-off case
    for out-of-range indices never arises."""

    solved = frozenset({"depth"})
    onnx_op = "OneHot"
    ranks = tuple((r,) for r in range(1, MAX_RANK))  # ONNX shape inference rejects 0-D indices
    dtypes = tuple((t,) for t in ("int8", "uint8", "int32", "int64"))
    leaf_inputs = (0,)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        out_rank = inputs[0].rank + 1
        axis = rng.randrange(out_rank)
        values_dtype = rng.choice(["float32", *ALL])  # float32 twice: ONNX Runtime's common kernel
        kind = "float" if values_dtype in FLOATS else "int" if values_dtype in ("int8", "int32", "int64") else "other"
        return {
            "depth": syms.int("depth"),
            "depth_as_vector": rng.random() < 0.5,
            "depth_dtype": rng.choice(["int64", "int32", "float32"]),
            "axis": axis,
            "onnx_axis": spell_axis(rng, axis, out_rank),
            "values": rng.choice(ONE_HOT_VALUES[kind]),
            "dtype": values_dtype,
        }

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        # -depth and depth - 1 must fit the index dtype (int8 stops at 127).
        return [self.attrs["depth"] <= torch.iinfo(dtype(inputs[0].dtype).torch).max]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[0].shape)
        shape.insert(self.attrs["axis"], self.attrs["depth"])
        return [AbsTensor(shape, self.attrs["dtype"])]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        depth = [self.attrs["depth"]] if self.attrs["depth_as_vector"] else self.attrs["depth"]
        values = emit.const(self.attrs["values"], self.attrs["dtype"])
        emit.node(
            "OneHot",
            [inputs[0], emit.const(depth, self.attrs["depth_dtype"]), values],
            outputs,
            axis=self.attrs["onnx_axis"],
        )

    def to_torch(self, indices: torch.Tensor) -> torch.Tensor:
        depth = self.attrs["depth"]
        hot = F.one_hot(wrap_negative(indices, depth), depth).movedim(-1, self.attrs["axis"])
        return torch.tensor(self.attrs["values"], dtype=dtype(self.attrs["dtype"]).torch)[hot]

    def values(self, inputs: list[Values]) -> list[Values]:
        """Only the two constants: indices move where they go, not what they are."""
        low, high = sorted(self.attrs["values"])
        return [Values(low, high, frozenset({float(low), float(high)}), fixed=True)]

    def index_bounds(self, input_index: int, inputs: list[TensorType]) -> tuple[int, int] | None:
        return index_range(self.attrs["depth"], inputs[0].dtype)


@register
class ReverseSequence(OpSpec):
    """Reverses the first sequence_lens[b] steps of each batch entry. The lengths are a leaf kept in
    [1, time steps]: ONNX leaves other lengths undefined (ONNX Runtime also takes 0)."""

    onnx_op = "ReverseSequence"
    moves_values = True
    ranks = tuple((r, 1) for r in range(2, MAX_RANK + 1))
    dtypes = tuple((t, "int64") for t in ALL)
    leaf_inputs = (1,)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        batch_axis = rng.randint(0, 1)
        return {"batch_axis": batch_axis, "time_axis": 1 - batch_axis}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return [inputs[1].shape[0] == inputs[0].shape[self.attrs["batch_axis"]]]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return dict(self.attrs)

    def to_torch(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Gather along time with index len - 1 - t inside each sequence and t after it."""
        steps = torch.arange(x.shape[self.attrs["time_axis"]]).unsqueeze(0)
        lengths = lengths.long().unsqueeze(1)
        index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (batch, time)
        index = index if self.attrs["batch_axis"] == 0 else index.T
        index = index.reshape(*index.shape, *[1] * (x.dim() - 2)).expand(x.shape)
        return x.gather(self.attrs["time_axis"], index)

    def index_bounds(self, input_index: int, inputs: list[TensorType]) -> tuple[int, int] | None:
        return (1, inputs[0].shape[self.attrs["time_axis"]]) if input_index == 1 else None
