from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch

from fuzzer.judge.compare import compare_outputs
from specs import REGISTRY, AbsTensor, spec
from specs.resize import NEAREST_MODES, TRANSFORMS, AxisPlan, Resize, axis_plan, resample_axis, stable_positions
from specs.values import ZERO, Values
from tests.specs.single_node import run_both

RNG = np.random.default_rng(2)
SIZES = [(5, 8), (6, 4), (3, 7), (4, 9), (7, 3), (2, 5), (5, 11), (7, 10), (8, 3), (6, 11), (4, 8), (8, 4)]
SCALES = [(5, 1.5), (6, 0.75), (3, 2.5), (4, 1.75), (7, 0.5), (2, 2.5), (5, 0.75), (4, 2.0), (8, 0.25), (3, 3.0)]
ROIS = [[-0.25, 0.75], [0.25, 1.25], [0.0, 0.5], [0.5, 1.0]]


def nearest(transform: str, nearest_mode: str) -> dict[str, Any]:
    return {"mode": "nearest", "coordinate_transformation_mode": transform, "nearest_mode": nearest_mode}


def test_picks_next_to_a_rounding_boundary_are_stable_only_when_computed_exactly() -> None:
    floor, prefer_floor = nearest("asymmetric", "floor"), nearest("half_pixel", "round_prefer_floor")
    # 3 -> 9: position 3 / 3 is 1.0 exactly, but 3 * (1 / 3) in float32 is 0.99999994.
    assert not stable_positions(floor, AxisPlan(2, 3, 9, Fraction(3)))
    assert stable_positions(floor, AxisPlan(2, 4, 8, Fraction(2)))  # a power-of-two step is exact
    assert stable_positions(floor, AxisPlan(2, 3, 5, Fraction(5, 3)))  # 0, 0.6, 1.2, 1.8, 2.4: nowhere near
    assert not stable_positions(prefer_floor, AxisPlan(2, 2, 3, Fraction(3, 2)))  # 1.5 / 1.5 - 0.5: a tie
    assert stable_positions(prefer_floor, AxisPlan(2, 5, 3, Fraction(3, 5)))  # 0.33, 2.0, 3.67


def test_crop_samples_on_the_input_edge_are_left_out() -> None:
    crop = {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}
    # 5 -> 9 over [0, 1]: the last sample sits on the last element, or just past it after rounding.
    assert not stable_positions(crop, AxisPlan(2, 5, 9, Fraction(9, 5), (Fraction(0), Fraction(1))))
    assert stable_positions(crop, AxisPlan(2, 5, 9, Fraction(9, 5), (Fraction(0), Fraction(3, 4))))


def test_an_output_as_long_as_the_input_is_left_out_unless_it_is_a_plain_copy() -> None:
    linear = {"mode": "linear", "coordinate_transformation_mode": "half_pixel", "by": "scales"}
    assert not Resize.well_defined(linear, axis_plan(linear, 2, 3, 3, 1.25, None))
    assert Resize.well_defined(linear, axis_plan(linear, 2, 3, 3, 1.0, None))
    crop = {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "by": "sizes"}
    assert not Resize.well_defined(crop, axis_plan(crop, 2, 8, 8, None, [0.0, 0.75]))
    assert Resize.well_defined(crop, axis_plan(crop, 2, 8, 9, None, [0.0, 0.75]))


def resize_attrs(mode: str, transform: str, by: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Both spatial axes resized, by the first two candidates the spec accepts."""
    attrs: dict[str, Any] = {"mode": mode, "coordinate_transformation_mode": transform, "by": by} | extra
    attrs |= {"axes": [2, 3], "onnx_axes": [2, -1] if by == "sizes" else None}
    sizes = [(n, m, None) for n, m in SIZES] if by == "sizes" else [(n, math.floor(n * s), s) for n, s in SCALES]
    rois = ROIS if transform == "tf_crop_and_resize" else [None]
    candidates = [(n, m, s, roi) for (n, m, s), roi in itertools.product(sizes, rois)]
    accepted = [c for c in candidates if Resize.well_defined(attrs, axis_plan(attrs, 2, *c))][:2]
    attrs["in_sizes"] = [n for n, _, _, _ in accepted]
    attrs["out_sizes"] = [m for _, m, _, _ in accepted]
    if by == "scales":
        attrs["scales"] = [s for _, _, s, _ in accepted]
    if transform == "tf_crop_and_resize":
        attrs |= {"rois": [roi for _, _, _, roi in accepted], "extrapolation_value": -2.0}
    return attrs


MODES = (
    [("nearest", {"nearest_mode": m}) for m in NEAREST_MODES]
    + [("linear", {})]
    + [("cubic", {"cubic_coeff_a": a, "exclude_outside": e}) for a, e in itertools.product((-0.75, -0.5), (0, 1))]
)
COMBINATIONS = [
    (mode, transform, extra, by)
    for (mode, extra), transform, by in itertools.product(MODES, TRANSFORMS, ("sizes", "scales"))
    if not (transform == "tf_crop_and_resize" and by == "scales")
]


@pytest.mark.parametrize(("mode", "transform", "extra", "by"), COMBINATIONS)
def test_every_covered_combination_matches_onnx_runtime_natively_and_explicitly(
    mode: str, transform: str, extra: dict[str, Any], by: str
) -> None:
    attrs = resize_attrs(mode, transform, by, extra)
    assert len(attrs["in_sizes"]) == 2, "no candidate size pair passed the spec's checks"
    x = RNG.standard_normal((2, 3, *attrs["in_sizes"])).astype(np.float32)
    eager, ort = run_both("Resize", attrs, x)
    assert compare_outputs({"y": eager[0]}, {"y": ort[0]}) is None
    explicit = torch.from_numpy(x)
    for axis, taps, fill in spec("Resize")(attrs).taps:
        explicit = resample_axis(explicit, axis, taps, fill, attrs.get("extrapolation_value", 0.0))
    assert compare_outputs({"y": explicit.numpy()}, {"y": ort[0]}) is None


def test_crops_past_the_input_write_the_extrapolation_value() -> None:
    attrs = resize_attrs("linear", "tf_crop_and_resize", "sizes", {})
    x = RNG.standard_normal((1, 1, *attrs["in_sizes"])).astype(np.float32)
    eager, _ = run_both("Resize", attrs, x)
    assert (eager[0] == attrs["extrapolation_value"]).any()


@pytest.mark.parametrize(("mode", "extra"), MODES)
def test_a_resize_keeps_its_input_forced_values_and_the_bounds_of_what_it_computes(
    mode: str, extra: dict[str, Any]
) -> None:
    held = Values(0, 1, ZERO)  # seen: LpNormalization(Resize(Concat(zeros, x))) divided by a zero norm
    for transform in ("half_pixel", "tf_crop_and_resize"):
        attrs = resize_attrs(mode, transform, "sizes", extra)
        resized = Resize(attrs).output_values([held], 1)[0]
        assert 0.0 in resized.forced and not resized.meets(REGISTRY["LpNormalization"].needs[0])
        assert (-2.0 in resized.forced) == (transform == "tf_crop_and_resize")  # resize_attrs' extrapolation
        computed = Resize(attrs).to_torch(torch.rand(1, 1, *attrs["in_sizes"], dtype=torch.float64))
        assert bool((computed >= resized.low).all() and (computed <= resized.high).all()), (mode, transform)


def test_integer_nearest_resize_picks_exactly_what_onnx_runtime_picks() -> None:
    attrs = resize_attrs("nearest", "half_pixel", "sizes", {"nearest_mode": "round_prefer_floor"})
    x = RNG.integers(-100, 100, (1, 2, *attrs["in_sizes"])).astype(np.int8)
    eager, ort = run_both("Resize", attrs, x)
    assert eager[0].dtype == np.int8 and np.array_equal(eager[0], ort[0])


@pytest.mark.parametrize(("transform", "by"), [("half_pixel", "scales"), ("tf_crop_and_resize", "sizes")])
def test_some_axes_written_without_the_axes_attribute_resize_the_same(transform: str, by: str) -> None:
    named = resize_attrs("linear", transform, by, {})
    one_axis = {
        key: value[1:] if key in ("in_sizes", "out_sizes", "scales", "rois") else value for key, value in named.items()
    }
    x = RNG.standard_normal((1, 2, 3, one_axis["in_sizes"][0])).astype(np.float32)
    results = [run_both("Resize", one_axis | {"axes": [3], "onnx_axes": axes}, x) for axes in ([3], None)]
    for eager, ort in results:
        assert compare_outputs({"y": eager[0]}, {"y": ort[0]}) is None
    assert np.array_equal(results[0][1][0], results[1][1][0])


def test_axes_must_be_distinct_and_spelled_as_the_onnx_axes_say() -> None:
    """Seen in reduced bug folders: the reducer's simpler `axes` ([1, 1]) passed, and the ONNX model
    then resized other axes than the torch lowering."""
    attrs = resize_attrs("nearest", "asymmetric", "sizes", {"nearest_mode": "floor"})
    x = AbsTensor([1, 2, *attrs["in_sizes"]], "float32")
    assert False not in Resize(attrs | {"axes": [2, 3], "onnx_axes": [2, -1]}).requires([x])
    for axes, onnx_axes in [([1, 1], [2, 3]), ([2, 3], [1, 3]), ([3, 2], None), ([2, 4], None)]:
        assert False in Resize(attrs | {"axes": axes, "onnx_axes": onnx_axes}).requires([x]), axes


def test_a_plan_no_draw_would_make_is_refused_not_raised() -> None:
    """Seen: the reducer asked align_corners for an output of 1 (a division by zero in the spec's
    positions), and the whole attribute-shrinking strategy failed with ZeroDivisionError."""
    attrs = resize_attrs("linear", "align_corners", "sizes", {})
    x = AbsTensor([1, 2, *attrs["in_sizes"]], "float32")
    assert False not in Resize(attrs).requires([x])
    assert False in Resize(attrs | {"out_sizes": [1, 1]}).requires([x])
