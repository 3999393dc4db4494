from __future__ import annotations

import numpy as np
import pytest

from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import random_values
from tests.specs.single_node import run_both


def test_shift_amounts_are_leaves_below_the_bit_width() -> None:
    amounts: set[int] = set()
    for seed in range(20):
        graph = generate(seed, GenOptions(max_nodes=3, ops=("BitShift",), dtypes=("uint8",)))
        values = random_values(graph, np.random.default_rng(seed))
        for node in graph.nodes:
            assert node.inputs[1] in graph.leaves, graph.text()
            amounts.update(values[node.inputs[1]].ravel().tolist())
    assert amounts == set(range(8))


@pytest.mark.parametrize(("direction", "expected"), [("LEFT", [254, 0, 128, 3]), ("RIGHT", [127, 1, 0, 3])])
def test_uint8_shifts_drop_bits_like_onnx(direction: str, expected: list[int]) -> None:
    x, amount = np.array([255, 200, 1, 3], dtype=np.uint8), np.array([1, 7, 7, 0], dtype=np.uint8)
    (eager,), (ort,) = run_both("BitShift", {"direction": direction}, x, amount)
    np.testing.assert_array_equal(eager, expected)
    np.testing.assert_array_equal(ort, eager)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_bitwise_ops_on_negative_and_unsigned_values(dtype: type) -> None:
    a, b = np.array([-3, 5, 0, -1]).astype(dtype), np.array([6, -2, 7, 1]).astype(dtype)
    for op, reference in [("BitwiseAnd", np.bitwise_and), ("BitwiseOr", np.bitwise_or), ("BitwiseXor", np.bitwise_xor)]:
        (eager,), (ort,) = run_both(op, {}, a, b)
        np.testing.assert_array_equal(eager, reference(a, b))
        np.testing.assert_array_equal(ort, eager)
    (eager,), (ort,) = run_both("BitwiseNot", {}, a)
    np.testing.assert_array_equal(eager, np.invert(a))
    np.testing.assert_array_equal(ort, eager)
