from __future__ import annotations

import numpy as np
import pytest
import torch

from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import leaf_bounds, random_values
from specs import REGISTRY
from specs.values import LEAF, ZERO, Values
from tests.specs.single_node import run_both

DIVIDENDS = [-7, 7, -7, 7, -1, 0]
DIVISORS = [2, 2, -2, -2, 5, -3]


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_integer_div_truncates_toward_zero_where_floor_division_would_not(dtype: type) -> None:
    a, b = np.array(DIVIDENDS, dtype=dtype), np.array(DIVISORS, dtype=dtype)
    (eager,), (ort,) = run_both("IntegerDiv", {"negative_divisor": False}, a, b)
    np.testing.assert_array_equal(eager, [-3, 3, 3, -3, 0, 0])
    np.testing.assert_array_equal(ort, eager)


@pytest.mark.parametrize(("fmod", "expected"), [(0, [1, 1, -1, -1, 4, 0]), (1, [-1, 1, -1, 1, -1, 0])])
def test_integer_mod_takes_the_sign_of_the_divisor_or_with_fmod_of_the_dividend(fmod: int, expected: list) -> None:
    a, b = np.array(DIVIDENDS, dtype=np.int32), np.array(DIVISORS, dtype=np.int32)
    (eager,), (ort,) = run_both("IntegerMod", {"negative_divisor": False, "fmod": fmod}, a, b)
    np.testing.assert_array_equal(eager, expected)
    np.testing.assert_array_equal(ort, eager)


def test_float_mod_is_c_fmod() -> None:
    a, b = np.array([-5.5, 5.5], dtype=np.float32), np.array([2.0, -2.0], dtype=np.float32)
    (eager,), (ort,) = run_both("Mod", {}, a, b)
    np.testing.assert_array_equal(eager, [-1.5, 1.5])
    np.testing.assert_array_equal(ort, eager)


def test_float_mod_is_continuous_through_a_zero_quotient_and_jumps_only_at_the_others() -> None:
    """fmod(a, b) is a for |a| < |b|: a zero dividend (a Relu's zeros, EyeLike) is safe, and asking its
    quotient off 0 made such graphs unsearchable."""
    mod = REGISTRY["Mod"]({})
    b = torch.tensor([2.0, -3.0, 2.0, 2.0])
    assert float(mod.domain_loss(torch.tensor([0.0, 0.0, 1e-6, -1e-6]), b)) == 0.0
    assert float(mod.domain_loss(torch.tensor([2.0, 0.0, 0.0, 0.0]), b)) > 0.0  # a / b == 1: fmod jumps
    assert float(mod.domain_loss(torch.tensor([-6.0001, 0.0, 0.0, 0.0]), b)) > 0.0


@pytest.mark.parametrize("op", ["IntegerDiv", "IntegerMod"])
def test_integer_divisors_are_nonzero_leaves_of_both_signs(op: str) -> None:
    signs = set()
    for seed in range(30):
        options = GenOptions(max_nodes=3, ops=(op,), dtypes=("int8", "uint8", "int32", "int64"))
        graph = generate(seed, options)
        values = random_values(graph, np.random.default_rng(seed))
        assert set(leaf_bounds(graph)) == {node.inputs[1] for node in graph.nodes}
        for node in graph.nodes:
            divisor = values[node.inputs[1]]
            assert divisor.size and (divisor != 0).all(), graph.text()
            assert graph.types[node.inputs[1]].dtype != "uint8" or (divisor > 0).all()
            signs.update(np.sign(divisor).ravel().tolist())
    assert signs == {-1, 1}


def test_float_mod_has_its_dividends_sign_and_keeps_its_zeros() -> None:
    """Seen: Log(Tan(Mod(Hardmax(x), Cosh(y)))): Hardmax's zeros stay zeros through fmod and Tan."""
    mod = REGISTRY["Mod"]({})
    (kept,) = mod.values([Values(0.0, 1.0, ZERO), Values(1.0)])
    assert kept.zeros and (kept.low, kept.high) == (0.0, 1.0)
    (tan,) = REGISTRY["Tan"]({}).values([kept])
    assert not tan.meets(REGISTRY["Log"].needs[0])
    (bounded,) = mod.values([Values(-5.0, -1.0), Values(-2.0, 0.5)])
    assert (bounded.low, bounded.high) == (-2.0, 0.0) and not bounded.zeros
    (free,) = mod.values([LEAF, LEAF])
    assert (free.low, free.high) == (-np.inf, np.inf) and free.steered
    a, b = torch.tensor([0.0, 1.0, -3.5, 7.25]), torch.tensor([1.5, -2.0, 2.0, 0.5])
    result = mod.to_torch(a, b)
    assert (result[0] == 0) and (result.sign() * a.sign() >= 0).all() and (result.abs() < b.abs()).all()
