"""Matrix products: MatMul with numpy batching, Gemm with transposes and scaled bias, Einsum."""

from __future__ import annotations

import random
from typing import Any

import torch
import z3

from fuzzer.core.dtypes import FLOATS
from specs.base import (
    AbsTensor,
    Dim,
    OpSpec,
    Symbols,
    any_rank,
    broadcast_requires,
    broadcast_shape,
    or_,
    register,
    same_dtype,
)
from specs.values import Values, summed, summed_products

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

    def values(self, inputs: list[Values]) -> list[Values]:
        return [summed_products(inputs)]


@register
class Gemm(OpSpec):
    """alpha * op(A) @ op(B) + beta * C; C is optional and broadcasts one way to (M, N)."""

    onnx_op = "Gemm"
    ranks = ((2, 2), *((2, 2, c) for c in range(3)))
    dtypes = same_dtype(2, FLOATS) + same_dtype(3, FLOATS)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {
            "transA": rng.randint(0, 1),
            "transB": rng.randint(0, 1),
            "alpha": rng.choice([1.0, 0.5, -1.5]),
            "beta": rng.choice([1.0, 0.25, -2.0]),
        }

    def _mk(self, inputs: list[AbsTensor]) -> tuple[Dim, ...]:
        a, b = inputs[0].shape, inputs[1].shape
        m, k = (a[1], a[0]) if self.attrs["transA"] else (a[0], a[1])
        k2, n = (b[1], b[0]) if self.attrs["transB"] else (b[0], b[1])
        return m, k, k2, n

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        m, k, k2, n = self._mk(inputs)
        cons = [k == k2]
        if len(inputs) == 3:
            for dim, target in zip(reversed(inputs[2].shape), (n, m)):
                cons.append(or_(dim == target, dim == 1))
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        m, _, _, n = self._mk(inputs)
        return [AbsTensor([m, n], inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return dict(self.attrs)

    def to_torch(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        a = a.T if self.attrs["transA"] else a
        b = b.T if self.attrs["transB"] else b
        if c is None:
            return self.attrs["alpha"] * torch.mm(a, b)
        return torch.addmm(c, a, b, beta=self.attrs["beta"], alpha=self.attrs["alpha"])

    def values(self, inputs: list[Values]) -> list[Values]:
        return [summed_products(inputs[:2], inputs[2] if len(inputs) == 3 else None)]


EINSUM_DTYPES = ("float32", "float64", "float16", "int32", "int64")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
FLOAT16_TERMS = 16


@register
class Einsum(OpSpec):
    """Random equations over 1-3 operands (matmul, batch matmul, transpose, sums, outer products).

    Each operand axis takes a letter an earlier operand already used (a batch or contracted axis)
    or a fresh one. No letter repeats within an operand (no traces or diagonals) and there is no
    ellipsis. The output is implicit (letters used once, alphabetically) or explicit (any subset
    of the letters, in any order).
    """

    onnx_op = "Einsum"
    ranks = any_rank(1, range(1, 5)) + any_rank(2, range(1, 4)) + any_rank(3, range(1, 4))
    dtypes = same_dtype(1, EINSUM_DTYPES) + same_dtype(2, EINSUM_DTYPES) + same_dtype(3, EINSUM_DTYPES)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        fresh = rng.sample(LETTERS, sum(t.rank for t in inputs))
        used: list[str] = []
        operands = []
        for tensor in inputs:
            mine: list[str] = []
            for _ in range(tensor.rank):
                shared = [letter for letter in used if letter not in mine]
                if shared and rng.random() < 0.6:
                    mine.append(rng.choice(shared))
                else:
                    used.append(fresh.pop())
                    mine.append(used[-1])
            operands.append("".join(mine))
        equation = ",".join(operands)
        if rng.random() < 0.7:
            kept = [letter for letter in used if rng.random() < 0.6]
            rng.shuffle(kept)
            equation += "->" + "".join(kept)
        return {"equation": equation}

    def operands(self) -> list[str]:
        return self.attrs["equation"].split("->")[0].split(",")

    def output_letters(self) -> str:
        equation = self.attrs["equation"]
        if "->" in equation:
            return equation.split("->")[1]
        letters = "".join(self.operands())
        return "".join(sorted(letter for letter in set(letters) if letters.count(letter) == 1))

    def letter_dims(self, inputs: list[AbsTensor]) -> dict[str, list[Dim]]:
        dims: dict[str, list[Dim]] = {}
        for letters, tensor in zip(self.operands(), inputs):
            for letter, dim in zip(letters, tensor.shape):
                dims.setdefault(letter, []).append(dim)
        return dims

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        dims = self.letter_dims(inputs)
        cons = [d == same[0] for same in dims.values() for d in same[1:]]
        if inputs[0].dtype == "float16":
            # A long float16 sum drifts past the comparison tolerance by summation order alone.
            summed = [same[0] for letter, same in dims.items() if letter not in self.output_letters()]
            limit = max(1, int(FLOAT16_TERMS ** (1 / len(summed)))) if summed else 1
            cons += [d <= limit for d in summed]
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        dims = self.letter_dims(inputs)
        return [AbsTensor([dims[letter][0] for letter in self.output_letters()], inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"equation": self.attrs["equation"]}

    def to_torch(self, *xs: torch.Tensor) -> torch.Tensor:
        if xs[0].dtype == torch.int32:
            # torch.einsum sums int32 into int64, then fails or returns int64 (as pytorch/pytorch#84530
            # for tensordot); int64 arithmetic wraps to the same int32 result.
            return torch.einsum(self.attrs["equation"], *(x.long() for x in xs)).int()
        return torch.einsum(self.attrs["equation"], *xs)

    def values(self, inputs: list[Values]) -> list[Values]:
        return [summed(inputs[0]) if len(inputs) == 1 else summed_products(inputs)]
