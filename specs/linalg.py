"""Matrix products: MatMul with numpy batching, Gemm with transposes and scaled bias."""

from __future__ import annotations

import random
from typing import Any

import torch
import z3

from specs.base import (
    AbsTensor,
    OpSpec,
    Symbols,
    any_rank,
    broadcast_requires,
    broadcast_shape,
    or_,
    register,
    same_dtype,
)

MATMUL_DTYPES = ("float32", "float64", "float16", "int32", "int64")


@register
class MatMul(OpSpec):
    """numpy.matmul: rank-1 operands gain and then lose a unit dim; batch dims broadcast."""

    onnx_op = "MatMul"
    ranks = any_rank(2, range(1, 5))
    dtypes = same_dtype(2, MATMUL_DTYPES)

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        a, b = inputs
        contracted_b = b.shape[-2] if b.rank >= 2 else b.shape[0]
        return [a.shape[-1] == contracted_b, *broadcast_requires([a.shape[:-2], b.shape[:-2]])]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        a, b = inputs
        batch = broadcast_shape([a.shape[:-2], b.shape[:-2]]) if max(a.rank, b.rank) > 2 else []
        rows = [a.shape[-2]] if a.rank >= 2 else []
        cols = [b.shape[-1]] if b.rank >= 2 else []
        return [AbsTensor(batch + rows + cols, a.dtype)]

    def to_torch(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


@register
class Gemm(OpSpec):
    """alpha * op(A) @ op(B) + beta * C, with C broadcast one way to (M, N)."""

    onnx_op = "Gemm"
    ranks = tuple((2, 2, c) for c in range(3))
    dtypes = same_dtype(3, ("float32", "float64"))

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {
            "transA": rng.randint(0, 1),
            "transB": rng.randint(0, 1),
            "alpha": rng.choice([1.0, 0.5, -1.5]),
            "beta": rng.choice([1.0, 0.25, -2.0]),
        }

    def _mk(self, inputs: list[AbsTensor]) -> tuple[z3.ArithRef, ...]:
        a, b = inputs[0].shape, inputs[1].shape
        m, k = (a[1], a[0]) if self.attrs["transA"] else (a[0], a[1])
        k2, n = (b[1], b[0]) if self.attrs["transB"] else (b[0], b[1])
        return m, k, k2, n

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        m, k, k2, n = self._mk(inputs)
        bias = inputs[2].shape
        cons = [k == k2]
        for dim, target in zip(reversed(bias), (n, m)):
            cons.append(or_(dim == target, dim == 1))
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        m, _, _, n = self._mk(inputs)
        return [AbsTensor([m, n], inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return dict(self.attrs)

    def to_torch(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        a = a.T if self.attrs["transA"] else a
        b = b.T if self.attrs["transB"] else b
        return self.attrs["alpha"] * (a @ b) + self.attrs["beta"] * c
