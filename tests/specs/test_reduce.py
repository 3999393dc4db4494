"""Corners of the Reduce* specs where ONNX readings or torch defaults differ."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from fuzzer.generate.generator import GenOptions, generate
from specs import REGISTRY
from specs.values import LEAF, ZERO, Need, Values, exactly
from tests.specs.single_node import run_both

ElementMap = Callable[[np.ndarray], np.ndarray]
X = np.array([[-2.0, 0.5, 3.0], [1.5, -1.0, 2.0]], np.float32)


def reduce_attrs(axes: list[int], keepdims: int = 0, noop: int = 0, empty_input: bool = False) -> dict[str, Any]:
    """Attributes of a Reduce* node that spells its axes as they are."""
    return {
        "axes": axes,
        "onnx_axes": axes,
        "keepdims": keepdims,
        "noop_with_empty_axes": noop,
        "empty_axes_input": empty_input,
    }


@pytest.mark.parametrize(
    ("op", "element_map"),
    [
        ("ReduceSum", lambda x: x),
        ("ReduceMean", lambda x: x),
        ("ReduceMax", lambda x: x),
        ("ReduceProd", lambda x: x),
        ("ReduceLogSumExp", lambda x: x),
        ("ReduceL1", np.abs),
        ("ReduceL2", np.abs),
        ("ReduceSumSquare", np.square),
        ("ReduceLogSum", np.log),
    ],
)
@pytest.mark.parametrize("empty_input", [False, True])
def test_noop_with_empty_axes_reduces_each_element_alone(op: str, element_map: ElementMap, empty_input: bool) -> None:
    x = np.abs(X) if op == "ReduceLogSum" else X
    (eager,), (ort,) = run_both(op, reduce_attrs([], keepdims=1, noop=1, empty_input=empty_input), x)
    np.testing.assert_allclose(eager, element_map(x), rtol=1e-6)
    np.testing.assert_allclose(ort, element_map(x), rtol=1e-6)


@pytest.mark.parametrize("empty_input", [False, True])
def test_empty_axes_without_noop_reduce_everything(empty_input: bool) -> None:
    (eager,), (ort,) = run_both("ReduceSumSquare", reduce_attrs([], keepdims=1, empty_input=empty_input), X)
    assert eager.shape == ort.shape == (1, 1)
    np.testing.assert_allclose(ort, eager, rtol=1e-6)


def test_integer_mean_truncates_toward_zero() -> None:
    x = np.array([[-5, 1, 1], [5, -1, -1]], np.int32)  # means -1, 1: floor would give -2 for the first
    (eager,), (ort,) = run_both("ReduceMean", reduce_attrs([1]), x)
    assert eager.tolist() == ort.tolist() == [-1, 1]


def test_negative_axis_spellings_mean_the_same_axes() -> None:
    attrs = reduce_attrs([0, 1], keepdims=1) | {"onnx_axes": [-2, 1]}
    (eager,), (ort,) = run_both("ReduceMax", attrs, X)
    assert eager.tolist() == ort.tolist() == [[3.0]]


@pytest.mark.parametrize(("dtype", "most"), [("int32", 8), ("float32", 16), ("float16", 16)])
def test_products_combine_few_enough_elements_not_to_overflow(dtype: str, most: int) -> None:
    """Seen (floats): Cosh(ReduceProd(Concat(Abs(c), c, c + w))) over 36 convolution outputs, and products of
    104 and 288 elements, which no input search kept finite."""
    options = GenOptions(max_nodes=1, ops=("ReduceProd",), dtypes=(dtype,), reuse_probability=0.0)
    for seed in range(20):
        graph = generate(seed, options)
        node = graph.nodes[0]
        x = graph.types[node.inputs[0]]
        axes = REGISTRY["ReduceProd"](node.attrs).reduced_axes(x.rank)
        assert int(np.prod([x.shape[a] for a in axes])) <= most, graph.text()


@pytest.mark.parametrize(
    ("op", "inside", "outside"),
    [
        ("ReduceLogSum", [[1.0, 0.5]], [[1.0, -1.5]]),
        ("ReduceLogSumExp", [[1.0, -2.0]], [[30.0, 1.0]]),
        ("ReduceProd", [[3.0, 3.0]], [[1e30, 1e30]]),
        ("ReduceSumSquare", [[3.0, 3.0]], [[1e19, 1.0]]),
    ],
)
def test_domain_losses_vanish_inside_and_have_gradients_outside(op: str, inside: list, outside: list) -> None:
    spec = REGISTRY[op](reduce_attrs([1]))
    assert float(spec.domain_loss(torch.tensor(inside))) == 0.0
    x = torch.tensor(outside, requires_grad=True)
    loss = spec.domain_loss(x)
    loss.backward()
    assert loss.item() > 0 and x.grad is not None and x.grad.abs().sum() > 0


def test_integer_mean_lowering_traces_as_one_torch_compile_graph() -> None:
    """Regression: a generator inside the lowering made dynamo give up, crashing Inductor."""
    spec = REGISTRY["ReduceMean"](reduce_attrs([0, 1]))
    compiled = torch.compile(spec.to_torch, backend="eager", fullgraph=True)
    x = torch.tensor([[-5, 1], [1, 0]], dtype=torch.int64)
    assert compiled(x).item() == spec.to_torch(x).item() == 0  # -3 / 4 truncates to 0


def test_a_product_keeps_piled_zeros_and_min_or_max_the_piles_at_their_bound() -> None:
    """Seen: Div(_, Tile(GatherND(ReduceProd(HardSigmoid(x))))), a zero wherever one element of a group sat on
    HardSigmoid's lower clamp."""
    attrs = reduce_attrs([0])
    clamped = Values(0, 1, piled=frozenset({0.0, 1.0}))
    (product,) = REGISTRY["ReduceProd"](attrs).values([clamped])
    assert product.piled == {0.0} and not product.meets(Need(nonzero=True))
    (low,) = REGISTRY["ReduceMin"](attrs).values([clamped])
    (high,) = REGISTRY["ReduceMax"](attrs).values([clamped])
    assert (low.piled, high.piled) == ({0.0}, {1.0})
    (total,) = REGISTRY["ReduceSum"](attrs).values([clamped])
    assert not total.piled, "a sum moves off any one pile"


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceMean"])
def test_a_reduction_of_zeros_everywhere_is_zero_everywhere(op: str) -> None:
    """Seen: Mod(Tanh(p), p) for p built from ReduceL2(Clip(x, 0, 0)): zero whatever x holds."""
    (reduced,) = REGISTRY[op](reduce_attrs([0])).output_values([exactly(0)], 1)
    assert reduced == exactly(0) and not reduced.meets(Need(nonzero=True))
    assert REGISTRY[op](reduce_attrs([0])).to_torch(torch.zeros(3, 2)).eq(0).all()
    (lse,) = REGISTRY["ReduceLogSumExp"](reduce_attrs([0])).output_values([exactly(0)], 1)
    assert not lse.forced, "log(n) for n zeros: no one value"


def test_a_minimum_or_maximum_of_everything_lies_past_each_forced_value() -> None:
    """Seen: Reciprocal(Pow(Asinh(ReduceMin(Mul(CumSum(x, exclusive, reverse), x))), y)): the exclusive
    CumSum's zero makes the minimum of all elements at most 0, which Pow's base cannot be."""
    with_zero = Values(forced=frozenset({0.0}))
    (low,) = REGISTRY["ReduceMin"](reduce_attrs([])).values([with_zero])
    (high,) = REGISTRY["ReduceMax"](reduce_attrs([])).values([with_zero])
    assert low.high == 0 and not low.meets(REGISTRY["Log"].needs[0])
    assert high.low == 0 and not high.meets(Need(high=-0.5))
    (grouped,) = REGISTRY["ReduceMin"](reduce_attrs([0])).values([with_zero])
    assert grouped.high == float("inf"), "a group may hold no forced element"


def test_a_log_sum_exp_is_at_least_its_groups_smallest_element() -> None:
    """Seen: Pow(Atan(Neg(ReduceLogSumExp(Cast(b, float16)))), y): a log-sum-exp of 0s and 1s is at least
    log(n) > 0, so its negation is no base a fractional exponent can take."""
    lse = REGISTRY["ReduceLogSumExp"](reduce_attrs([1]))
    (bounded,) = lse.values([Values(0.0, 1.0, integral=True)])
    assert bounded.low == 0.0 and bounded.high == math.inf
    (negated,) = REGISTRY["Neg"]({}).values([bounded])
    assert not negated.meets(REGISTRY["Log"].needs[0])
    (free,) = lse.values([LEAF])
    assert free.low == -math.inf
    x = torch.tensor([[0.0, 1.0, 0.0], [-3.0, -2.5, -4.0]])
    assert (lse.to_torch(x) >= x.amin(1)).all()


def test_a_product_of_a_group_holding_a_forced_zero_piles_at_zero() -> None:
    """Seen: Pow(ReduceProd(CumSum(x, exclusive)), y) for y < 0: the exclusive CumSum's zero makes a product
    zero wherever its group holds it, whatever the search does."""
    (product,) = REGISTRY["ReduceProd"](reduce_attrs([0])).values([Values(forced=ZERO)])
    assert product.piled == ZERO and not product.meets(REGISTRY["Reciprocal"].needs[0])
    (free,) = REGISTRY["ReduceProd"](reduce_attrs([0])).values([LEAF])
    assert not free.piled
