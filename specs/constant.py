"""Ops whose output comes from attributes or an input's shape, never its values: Range, Shape, Size,
ConstantOfShape, EyeLike, and the Scalar constants optimization patterns pin."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import onnx.numpy_helper
import torch

from fuzzer.core.dtypes import ALL, FLOATS, dtype
from specs.base import MAX_RANK, AbsTensor, OnnxEmitter, OpSpec, Symbols, register
from specs.shape import ANY_RANK, EVERY_DTYPE, POSITIVE_RANKS
from specs.values import ZERO, Values, exactly

RANGE_DTYPES = ("float32", "float64", "int32", "int64")


def sample_scalar(rng: random.Random, dtype_name: str) -> int | float:
    """A fill value the dtype holds exactly (halves for floats, no negatives for unsigned)."""
    spec = dtype(dtype_name)
    if spec.is_float:
        return rng.choice([0.0, 1.0, -2.0, 0.5, -1.5])
    if spec.is_bool:
        return rng.choice([0, 1])
    if dtype_name.startswith("uint"):
        return rng.choice([0, 1, 7])
    return rng.choice([0, 1, -2, 3])


class FromShape(OpSpec):
    """An output set by shapes and attributes alone: the input search cannot move its values."""

    def values(self, inputs: list[Values]) -> list[Values]:
        return [Values(fixed=True)]


@register
class Range(FromShape):
    """No tensor input: start, limit and delta are 0-D constants. The element count is solved for and
    limit is placed strictly inside the last step (half a step past the last element for floats), so
    ceil((limit - start) / delta) never sits on a rounding edge and ONNX and torch.arange agree."""

    solved = frozenset({"count"})
    onnx_op = "Range"
    ranks = ((),)
    dtypes = ((),)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        dtype_name = rng.choice(RANGE_DTYPES)
        floats = dtype(dtype_name).is_float
        delta = rng.choice([1, 2, 3, -1, -2, *([0.5, -0.25, 1.5] if floats else [])])
        pullback = delta / 2 if floats else rng.randrange(abs(delta)) * (1 if delta > 0 else -1)
        return {
            "dtype": dtype_name,
            "start": rng.choice([0, 1, -3, *([2.5, -0.75] if floats else [])]),
            "delta": delta,
            "count": syms.int("count"),
            "pullback": pullback,
        }

    def limit(self) -> int | float:
        """One step past the last element, pulled back by less than a step."""
        return self.attrs["start"] + self.attrs["delta"] * self.attrs["count"] - self.attrs["pullback"]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor([self.attrs["count"]], self.attrs["dtype"])]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        bounds = (self.attrs["start"], self.limit(), self.attrs["delta"])
        emit.node("Range", [emit.const(v, self.attrs["dtype"]) for v in bounds], outputs)

    def to_torch(self) -> torch.Tensor:
        dtype_spec = dtype(self.attrs["dtype"])
        return torch.arange(self.attrs["start"], self.limit(), self.attrs["delta"], dtype=dtype_spec.torch)


@register
class Shape(FromShape):
    """Opset-15 Shape with start/end, sometimes negative or past the rank (ONNX clamps like Python slicing)."""

    onnx_op = "Shape"
    ranks = POSITIVE_RANKS
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        start = rng.choice([None, 0, 1, -1, -2, -MAX_RANK - 1])
        end = rng.choice([None, 1, 2, -1, MAX_RANK + 3])
        if not range(rank)[start:end]:
            start, end = None, None
        return {"start": start, "end": end}

    def selected(self, rank: int) -> range:
        return range(rank)[self.attrs["start"] : self.attrs["end"]]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor([len(self.selected(inputs[0].rank))], "int64")]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"start": self.attrs["start"], "end": self.attrs["end"]}

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([x.shape[axis] for axis in self.selected(x.dim())], dtype=torch.int64)


@register
class Size(FromShape):
    onnx_op = "Size"
    ranks = ANY_RANK
    dtypes = EVERY_DTYPE

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor([], "int64")]

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor(x.numel(), dtype=torch.int64)


@register
class ConstantOfShape(FromShape):
    """full_like as exporters write it: Shape(x) feeds ConstantOfShape, whose value has x's dtype."""

    onnx_op = "ConstantOfShape"
    ranks = ANY_RANK
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"value": sample_scalar(rng, inputs[0].dtype)}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        shape = emit.temp()
        emit.node("Shape", inputs, [shape])
        value = np.asarray([self.attrs["value"]], dtype(emit.input_types[0].dtype).numpy)
        emit.node("ConstantOfShape", [shape], outputs, value=onnx.numpy_helper.from_array(value))

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.attrs["value"])

    def values(self, inputs: list[Values]) -> list[Values]:
        return [exactly(self.attrs["value"])]


@register
class EyeLike(FromShape):
    """Ones on diagonal k (which may miss the matrix entirely), in the input's dtype or a chosen one."""

    onnx_op = "EyeLike"
    ranks = ((2,),)
    dtypes = EVERY_DTYPE

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"k": rng.choice([0, 0, 1, -1, 2, -3, MAX_RANK * 3]), "dtype": rng.choice([None, None, *ALL])}

    def out_dtype(self, input_dtype: str) -> str:
        return self.attrs["dtype"] or input_dtype

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), self.out_dtype(inputs[0].dtype))]

    def onnx_attrs(self) -> dict[str, Any]:
        chosen = self.attrs["dtype"]
        return {"k": self.attrs["k"], "dtype": dtype(chosen).onnx if chosen else None}

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape
        diagonal = torch.arange(cols) - torch.arange(rows).unsqueeze(1) == self.attrs["k"]
        out_name = self.attrs["dtype"]
        return diagonal.to(dtype(out_name).torch if out_name else x.dtype)

    def values(self, inputs: list[Values]) -> list[Values]:
        return [Values(0, 1, ZERO, fixed=True)]


# Values optimizers check constants for (Scalar draws one where no pattern pins it): GELU's sqrt(2), 1
# and 0.5, QuickGELU's 1.702, an attention scale (1/sqrt(64)), DivMul's 1, and a few plain ones.
OPTIMIZER_CONSTANTS = (0.0, 0.125, 0.5, 1.0, 2.0, 3.0, 1.4142135623730951, 0.7071067811865476, 1.702)


@register
class Scalar(FromShape):
    """A 0-D ONNX Constant: the exact value an optimization pattern needs where a fusion checks its
    constants (ONNX Runtime's GeluFusion fires on Div by sqrt(2), not on a searched weight)."""

    onnx_op = "Constant"
    ranks = ((),)
    dtypes = ((),)
    pattern_only = True
    free_attrs = frozenset({"value", "dtype"})

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"value": rng.choice(OPTIMIZER_CONSTANTS), "dtype": rng.choice(FLOATS)}

    def array(self) -> np.ndarray:
        return np.asarray(self.attrs["value"], dtype(self.attrs["dtype"]).numpy)

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor([], self.attrs["dtype"])]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        emit.node("Constant", [], outputs, value=onnx.numpy_helper.from_array(self.array()))

    def to_torch(self) -> torch.Tensor:
        return torch.from_numpy(self.array())

    def values(self, inputs: list[Values]) -> list[Values]:
        return [exactly(float(self.array()))]
