"""Boolean logic on bool tensors and bitwise logic and shifts on integers."""

from __future__ import annotations

import random
from typing import Any

import torch

from fuzzer.core.dtypes import INTS, dtype
from fuzzer.core.ir import TensorType
from specs.base import AbsTensor, Symbols, register
from specs.elementwise import Broadcasting, binary, unary

BOOL = ("bool",)

unary("Not", torch.logical_not, BOOL)
binary("And", torch.logical_and, BOOL)
binary("Or", torch.logical_or, BOOL)
binary("Xor", torch.logical_xor, BOOL)
unary("BitwiseNot", torch.bitwise_not, INTS, exact_in_float64=False)
binary("BitwiseAnd", torch.bitwise_and, INTS, exact_in_float64=False)
binary("BitwiseOr", torch.bitwise_or, INTS, exact_in_float64=False)
binary("BitwiseXor", torch.bitwise_xor, INTS, exact_in_float64=False)


@register
class BitShift(Broadcasting):
    """ONNX shifts unsigned types only (uint8 is the one dlfuzz generates). Shifting by the bit
    width or more is undefined in C++, so the amount is a fresh leaf kept below it."""

    onnx_op = "BitShift"
    dtypes = (("uint8", "uint8"),)
    leaf_inputs = (1,)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"direction": rng.choice(("LEFT", "RIGHT"))}

    def onnx_attrs(self) -> dict[str, Any]:
        return {"direction": self.attrs["direction"]}

    def to_torch(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        shift = torch.bitwise_left_shift if self.attrs["direction"] == "LEFT" else torch.bitwise_right_shift
        return shift(x, amount)

    def index_bounds(self, input_index: int, inputs: list[TensorType]) -> tuple[int, int] | None:
        return (0, torch.iinfo(dtype(inputs[0].dtype).torch).bits - 1) if input_index == 1 else None
