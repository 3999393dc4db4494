from __future__ import annotations

import itertools

import numpy as np
import pytest

from fuzzer.generate.generator import GenOptions, generate
from fuzzer.judge.compare import compare_outputs
from specs import REGISTRY, spec
from specs.values import LEAF, ZERO
from tests.specs.single_node import run_both

RNG = np.random.default_rng(3)
M, K, N = 3, 4, 5
BIASES = [None, (), (1,), (N,), (1, N), (M, 1), (M, N), (1, 1)]


@pytest.mark.parametrize(("trans_a", "trans_b"), list(itertools.product((0, 1), repeat=2)))
def test_gemm_every_transpose_and_bias_broadcast_matches_onnx_runtime(trans_a: int, trans_b: int) -> None:
    a = RNG.standard_normal((K, M) if trans_a else (M, K)).astype(np.float32)
    b = RNG.standard_normal((N, K) if trans_b else (K, N)).astype(np.float32)
    attrs = {"transA": trans_a, "transB": trans_b, "alpha": -1.5, "beta": 0.25}
    for bias in BIASES:
        operands = [a, b] if bias is None else [a, b, RNG.standard_normal(bias).astype(np.float32)]
        eager, ort = run_both("Gemm", attrs, *operands)
        assert eager[0].shape == (M, N)
        assert compare_outputs({"y": eager[0]}, {"y": ort[0]}) is None, bias


def test_einsum_implicit_output_orders_its_letters_alphabetically() -> None:
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    y = RNG.standard_normal((3, 4)).astype(np.float32)
    eager, ort = run_both("Einsum", {"equation": "bc,ca"}, x, y)
    assert eager[0].shape == (4, 2)
    assert np.allclose(eager[0], np.einsum("bc,ca", x, y), atol=1e-5)
    assert compare_outputs({"y": eager[0]}, {"y": ort[0]}) is None


def test_einsum_int32_sums_stay_int32() -> None:
    x = RNG.integers(-5, 5, (2, 3)).astype(np.int32)
    y = RNG.integers(-5, 5, (3, 4)).astype(np.int32)
    eager, ort = run_both("Einsum", {"equation": "ij,jk->i"}, x, y)
    assert eager[0].dtype == np.int32 and np.array_equal(eager[0], ort[0])


def test_einsum_letters_never_repeat_within_an_operand() -> None:
    for seed in range(100):
        graph = generate(seed, GenOptions(max_nodes=1, ops=("Einsum",), dtypes=("float32",)))
        einsum = spec("Einsum")(graph.nodes[0].attrs)
        assert all(len(set(letters)) == len(letters) for letters in einsum.operands())
        assert len(set(einsum.output_letters())) == len(einsum.output_letters())


def test_a_sum_of_products_with_a_factor_forced_to_zeros_piles_at_zero_unless_a_bias_moves_it() -> None:
    # Regression: Reciprocal(MatMul(x, Hardmax(y))) was drawn; a one-hot's zeros fill whole columns,
    # so most products are zero whatever the search does (a 20-node search failure).
    one_hot = REGISTRY["Hardmax"]({"axis": 0, "onnx_axis": 0}).values([LEAF])[0]
    reciprocal = REGISTRY["Reciprocal"].needs[0]
    matmul = REGISTRY["MatMul"]({}).output_values([LEAF, one_hot], 1)[0]
    assert matmul.piled == ZERO and not matmul.meets(reciprocal)
    assert REGISTRY["MatMul"]({}).output_values([LEAF, LEAF], 1)[0].meets(reciprocal)
    gemm = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
    assert not REGISTRY["Gemm"](gemm).output_values([one_hot, LEAF], 1)[0].meets(reciprocal)
    assert REGISTRY["Gemm"](gemm).output_values([one_hot, LEAF, LEAF], 1)[0].meets(reciprocal), "a bias moves it"
    einsum = REGISTRY["Einsum"]({"equation": "ij,jk->ik"}).output_values([LEAF, one_hot], 1)[0]
    assert not einsum.meets(reciprocal)
    conv = {"auto_pad": "SAME_UPPER", "strides": [1], "dilations": [1], "group": 1}
    assert not REGISTRY["Conv"](conv).output_values([one_hot, LEAF], 1)[0].meets(reciprocal)
    assert REGISTRY["Conv"](conv).output_values([one_hot, LEAF, LEAF], 1)[0].meets(reciprocal)
