from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import onnx.defs
import onnx.helper
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from fuzzer.generate.generator import GenOptions, generate
from specs import REGISTRY
from specs.activation import shrink
from specs.elementwise import Unary
from specs.lowering import OPSET
from specs.values import LEAF, ZERO, Values, exactly
from tests.specs.single_node import run_both

PARAMETRISED = sorted(name for name, cls in REGISTRY.items() if issubclass(cls, Unary) and cls.params)


@pytest.mark.parametrize("name", PARAMETRISED)
def test_param_defaults_are_onnx_defaults(name: str) -> None:
    schema = onnx.defs.get_schema(REGISTRY[name].onnx_op, OPSET)
    for attr, param in REGISTRY[name].params.items():
        default = schema.attributes[attr].default_value
        assert param.default == pytest.approx(default.f if default.type == onnx.AttributeProto.FLOAT else default.i)


@pytest.mark.parametrize("name", PARAMETRISED)
def test_omitted_params_mean_the_same_to_onnx_and_torch(name: str) -> None:
    x = np.linspace(-3, 3, 25, dtype=np.float32)
    (eager,), (ort,) = run_both(name, dict.fromkeys(REGISTRY[name].params), x)
    np.testing.assert_allclose(eager, ort, rtol=1e-5, atol=1e-6)


def test_integer_shrink_never_goes_negative_for_uint8() -> None:
    """Every combination of the bias and lambd choices keeps uint8 results >= 0 (no wrap)."""
    params = REGISTRY["Shrink"].params
    x = torch.arange(256, dtype=torch.float64)
    for bias, lambd in itertools.product(*((p.default, *p.choices) for p in params.values())):
        assert (shrink(x, bias, lambd) >= 0).all(), (bias, lambd)


def test_integer_shrink_truncates_a_fractional_bias_like_the_onnx_reference() -> None:
    x = np.arange(-4, 5, dtype=np.int8)
    (eager,), (ort,) = run_both("Shrink", {"bias": 0.5, "lambd": 1.0}, x)
    node = onnx.helper.make_node("Shrink", ["x"], ["y"], bias=0.5, lambd=1.0)
    (reference,) = ReferenceEvaluator(node).run(None, {"x": x})
    np.testing.assert_array_equal(eager, [-3, -2, -1, 0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(reference, eager)
    np.testing.assert_array_equal(ort, eager)


def test_integer_shrink_keeps_to_the_magnitudes_where_float32_shifts_it_by_a_half_exactly() -> None:
    """Seen: the references disagreed on int64 Shrink(bias=0.5) of 14681250 (ReduceProd's), 14681249 in
    float64 (eager, the ONNX reference) and 14681250 in float32 (ONNX Runtime): past 2**23 a float32 cannot
    hold the half, and which width a runtime computes in is its own choice."""
    x = np.array([3680000, 14681250], dtype=np.int64)
    (eager,), (ort,) = run_both("Shrink", {"bias": 0.5, "lambd": 1.5}, x)
    assert eager[0] == ort[0] == 3679999 and eager[1] != ort[1]
    domain = REGISTRY["Shrink"]({"bias": 0.5, "lambd": 1.5}).domain_loss
    assert domain(torch.from_numpy(x[:1])) == 0 and domain(torch.from_numpy(x[1:])) > 0


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8, np.int64])
@pytest.mark.parametrize(("low", "high"), [(None, None), (0, None), (None, 2), (1, 2)])
def test_clip_with_either_bound_left_out(dtype: type, low: Any, high: Any) -> None:
    x = np.arange(-3, 5).astype(dtype) if dtype != np.uint8 else np.arange(8).astype(dtype)
    (eager,), (ort,) = run_both("Clip", {"min": low, "max": high}, x)
    np.testing.assert_array_equal(eager, ort)
    np.testing.assert_array_equal(eager, np.clip(x, low, high) if low is not None or high is not None else x)


@pytest.mark.parametrize(
    "attrs",
    [
        {"ratio": None, "ratio_dtype": "float32", "training_mode_given": False, "mask": True, "seed": None},
        {"ratio": 0.5, "ratio_dtype": "float16", "training_mode_given": True, "mask": True, "seed": 7},
        {"ratio": None, "ratio_dtype": "float64", "training_mode_given": True, "mask": False, "seed": None},
    ],
)
def test_dropout_in_inference_passes_data_through_with_an_all_true_mask(attrs: dict[str, Any]) -> None:
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    eager, ort = run_both("Dropout", attrs, x)
    assert len(eager) == len(ort) == 1 + attrs["mask"]
    for mine, theirs in zip(eager, ort):
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(eager[0], x)


def test_prelu_slope_broadcasts_to_x_in_one_direction_only() -> None:
    seen_partial = False
    for seed in range(30):
        graph = generate(seed, GenOptions(max_nodes=3, ops=("PRelu",), dtypes=("float32",)))
        for node in graph.nodes:
            x, slope = (graph.types[name].shape for name in node.inputs)
            assert len(slope) <= len(x) and graph.types[node.outputs[0]].shape == x, graph.text()
            assert all(s in (1, d) for s, d in zip(reversed(slope), reversed(x))), graph.text()
            seen_partial |= 0 < len(slope) < len(x)
    assert seen_partial


def test_prelu_scales_negatives_by_a_broadcast_slope() -> None:
    x = np.array([[-2, 3, -1], [4, -5, 0]], dtype=np.int32)
    slope = np.array([2, 3, 4], dtype=np.int32)
    (eager,), (ort,) = run_both("PRelu", {}, x, slope)
    np.testing.assert_array_equal(eager, [[-4, 3, -4], [4, -15, 0]])
    np.testing.assert_array_equal(ort, eager)


def test_prelu_passes_a_non_negative_input_and_its_forced_zeros_through() -> None:
    # Regression: PRelu declared nothing, so Log read PRelu(CumSum(x, exclusive), slope) over a
    # length-1 axis: zeros whatever the search does (a 30-node search failure).
    prelu, log = REGISTRY["PRelu"]({}), REGISTRY["Log"].needs[0]
    (shifted,) = prelu.values([Values(forced=ZERO), LEAF])
    assert shifted.zeros and not shifted.meets(log)
    (positive,) = prelu.values([Values(0.5, 3.0), LEAF])
    assert (positive.low, positive.high) == (0.5, 3.0) and positive.meets(log)
    (mixed,) = prelu.values([replace(LEAF, forced=frozenset({-1.5})), LEAF])
    assert not mixed.forced and mixed.steered, "the slope moves what lies below zero"


def test_prelu_of_negative_values_has_the_sign_its_slope_gives_them() -> None:
    """Seen: Sqrt(PRelu(Neg(ReduceSum(Exp(x))), ReduceSum(Exp(y)))): a negative x times a positive slope."""
    prelu, sqrt = REGISTRY["PRelu"]({}), REGISTRY["Sqrt"].needs[0]
    (scaled,) = prelu.values([Values(high=-0.5), Values(low=0.0)])
    assert scaled.high <= 0 and not scaled.meets(sqrt)
    (flipped,) = prelu.values([Values(-2.0, -0.5), Values(-3.0, -1.0)])
    assert (flipped.low, flipped.high) == (0.5, 6.0)
    (mixed,) = prelu.values([Values(-2.0, 3.0), Values(0.0, 1.0)])
    assert (mixed.low, mixed.high) == (-2.0, 3.0)


def test_thresholded_relu_below_a_negative_alpha_is_bounded_by_zero_and_its_input() -> None:
    # Regression: with alpha = -1 it is not monotone and declared no bounds, so Acosh read
    # ThresholdedRelu(Round(Softmax(x))), which never exceeds 1 (a 30-node search failure).
    negative = REGISTRY["ThresholdedRelu"]({"alpha": -1.0})
    (rounded,) = negative.values([Values(0.0, 1.0)])
    assert (rounded.low, rounded.high) == (0.0, 1.0) and not rounded.meets(REGISTRY["Acosh"].needs[0])
    (wide,) = negative.values([Values(-3.0, 2.0)])
    assert (wide.low, wide.high) == (-1.0, 2.0)
    (low,) = negative.values([Values(-3.0, -2.0)])
    assert (low.low, low.high) == (0.0, 0.0)


def test_shrink_maps_its_input_bounds_piece_by_piece() -> None:
    """Seen: ReduceLogSum(Asinh(Shrink(Sign(x), lambd=1))) and Reciprocal(ReduceMean(Shrink(LpNormalization(x),
    lambd=1))): inputs within +-lambd shrink to zeros, whatever the search does."""
    wide = REGISTRY["Shrink"]({"bias": 0.5, "lambd": 1.0})
    (inside,) = wide.values([Values(-1.0, 1.0, integral=True)])
    assert inside.one_value == 0 and not inside.meets(REGISTRY["Reciprocal"].needs[0])
    (both,) = wide.values([Values(-3.0, 2.0)])
    assert (both.low, both.high) == (-2.5, 1.5)
    shifted = REGISTRY["Shrink"]({"bias": 1.0, "lambd": 0.0})
    (below_one,) = shifted.values([Values(0.5, 0.75)])
    assert (below_one.low, below_one.high) == (-0.5, -0.25) and not below_one.meets(REGISTRY["Log"].needs[0])
    (unbounded,) = shifted.values([LEAF])
    assert (unbounded.low, unbounded.high) == (-np.inf, np.inf) and unbounded.steered
    (truncated,) = wide.values([Values(-4.0, -2.0, integral=True)])
    assert truncated.low == -3.5 and truncated.high >= 0, "an integer Shrink truncates -1.5 toward zero"


def test_a_clip_to_one_value_holds_it_everywhere_through_products() -> None:
    # seen: Mod(Tanh(p), p) for p = PRelu(Clip(Add(MatMul(Clip(x, 0, 0), y), ...), 0), s): zero everywhere
    clipped = REGISTRY["Clip"]({"min": 0.0, "max": 0.0}).output_values([LEAF], 1)[0]
    assert clipped == exactly(0) and not clipped.meets(REGISTRY["Reciprocal"].needs[0])
    product = REGISTRY["MatMul"]({}).output_values([clipped, LEAF], 1)[0]
    assert product == exactly(0) and not product.meets(REGISTRY["Mod"].needs[1])
