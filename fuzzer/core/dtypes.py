"""One table of the element types dlfuzz generates, so every stage names them the same way."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import torch


@dataclass(frozen=True)
class DType:
    """An element type as ONNX, torch and numpy each spell it."""

    name: str
    onnx: int
    torch: torch.dtype
    numpy: type

    @property
    def is_float(self) -> bool:
        return self.name.startswith("float")

    @property
    def is_int(self) -> bool:
        return self.name.startswith(("int", "uint"))

    @property
    def is_bool(self) -> bool:
        return self.name == "bool"


_TABLE = [
    DType("float32", onnx.TensorProto.FLOAT, torch.float32, np.float32),
    DType("float64", onnx.TensorProto.DOUBLE, torch.float64, np.float64),
    DType("float16", onnx.TensorProto.FLOAT16, torch.float16, np.float16),
    DType("int8", onnx.TensorProto.INT8, torch.int8, np.int8),
    DType("uint8", onnx.TensorProto.UINT8, torch.uint8, np.uint8),
    DType("int32", onnx.TensorProto.INT32, torch.int32, np.int32),
    DType("int64", onnx.TensorProto.INT64, torch.int64, np.int64),
    DType("bool", onnx.TensorProto.BOOL, torch.bool, np.bool_),
]
DTYPES: dict[str, DType] = {d.name: d for d in _TABLE}

FLOATS = ("float32", "float64", "float16")
INTS = ("int8", "uint8", "int32", "int64")
SIGNED_INTS = ("int8", "int32", "int64")
NUMERIC = FLOATS + INTS
ALL = NUMERIC + ("bool",)


def dtype(name: str) -> DType:
    """Look a dtype up by name, with an error that lists the known ones."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; known: {', '.join(DTYPES)}") from None


def onnx_name(code: int) -> str | None:
    """Our name of an ONNX element type, or None for one dlfuzz does not generate."""
    return _BY_ONNX.get(code)


def torch_name(kind: torch.dtype) -> str:
    """Our name of a torch dtype (torch's own spelling for one dlfuzz does not generate)."""
    return _BY_TORCH.get(kind, str(kind))


_BY_ONNX = {d.onnx: d.name for d in _TABLE}
_BY_TORCH = {d.torch: d.name for d in _TABLE}
