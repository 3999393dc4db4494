"""Resize (opset 18): nearest, linear and cubic sampling of the spatial axes, by scales or sizes.

Covered: every opset-18 coordinate_transformation_mode (half_pixel, pytorch_half_pixel,
align_corners, asymmetric, tf_crop_and_resize with roi and extrapolation_value) with every
nearest_mode, linear, and cubic with cubic_coeff_a and exclude_outside; scales or sizes, with or
without `axes`; 3-D/4-D/5-D input. Left out: antialias, keep_aspect_ratio_policy other than
stretch, and resizing N or C (torch's interpolate cannot; ONNX Runtime only for nearest). Cubic
is 4-D only and linear/cubic are float only: ONNX Runtime has no other cubic and rounds integer
interpolation in its own way.

The lowering is F.interpolate where torch's mode is exactly the ONNX one (nearest = asymmetric +
floor, nearest-exact = half_pixel + round_prefer_ceil, linear and bicubic with A = -0.75 for
half_pixel and align_corners), else a separable gather-and-weigh written in torch from the ONNX
formulas. The resized input and output sizes are drawn concretely so that every nearest pick can
be checked: a source position next to a rounding boundary must either be computed exactly by any
float32 formula (power-of-two ratios) or stay clear of the boundary, so rounding noise cannot flip
a pick. Corners where the spec is unclear are avoided: align_corners with an output of 1 (division
by zero in the spec); align_corners, and pytorch_half_pixel with an output of 1, by a scale whose
product with the input is fractional (ONNX Runtime takes the output length, the ONNX reference
input * scale); and pytorch_half_pixel cubic with an output of 1 (the spec samples at 0, the
reference at -0.5). An output as long as the input with a scale != 1, or with a crop box other
than [0, 1], is left out too: ONNX Runtime (and torch's 2-D nearest and its linear modes) then copy
the input, while the spec and the ONNX reference resample or crop it. tf_crop_and_resize is drawn
with sizes only (ONNX Runtime and the spec size a crop by scales differently, onnx/onnx#5783) and
float data only (extrapolation_value is a float), and its samples are kept off the input's edges
so that rounding noise cannot move them in or out of the input.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import z3

from fuzzer.core.dtypes import FLOATS
from specs.base import AbsTensor, OnnxEmitter, OpSpec, Symbols, register
from specs.values import Values, constant

RESIZE_DTYPES = (*FLOATS, "int8", "uint8", "int32", "int64", "bool")
TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
SCALES = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)  # exact in float32
ROI_STARTS, ROI_ENDS = (-0.25, 0.0, 0.0, 0.25, 0.5), (0.5, 0.75, 1.0, 1.0, 1.25)  # exact in float32
EXTRAPOLATION_VALUES = (0.0, -2.0, 3.5)
MAX_IN, MAX_OUT = 8, 12
NOISE = Fraction(1, 1000)  # far above float32 error on positions below 16, far below a pixel
TRIES = 20

Taps = list[list[tuple[int, float]]]  # per output position: (source index, weight)


def exact(value: float) -> Fraction:
    """A float attribute as the float32 every implementation reads, exactly."""
    return Fraction(float(np.float32(value)))


def axis_plan(
    attrs: dict[str, Any], axis: int, in_size: int, out_size: int, scale: float | None, roi: list[float] | None
) -> AxisPlan:
    """The plan of one axis from the drawn attrs: a given scale, or output / input for sizes."""
    exact_roi = (exact(roi[0]), exact(roi[1])) if roi is not None else None
    ratio = exact(scale) if scale is not None else Fraction(out_size, in_size)
    return AxisPlan(axis, in_size, out_size, ratio, exact_roi)


@dataclass(frozen=True)
class AxisPlan:
    """One resized axis: its sizes, the scale the spec computes with, the crop box if any."""

    axis: int
    in_size: int
    out_size: int
    scale: Fraction  # the given float32 one, or output / input for sizes
    roi: tuple[Fraction, Fraction] | None = None  # (start, end), tf_crop_and_resize only

    def position(self, transform: str, dst: int) -> Fraction:
        """Where output position `dst` samples the input, as the ONNX spec defines it, exactly."""
        n, m = self.in_size, self.out_size
        if transform == "tf_crop_and_resize" and self.roi is not None:
            start, end = self.roi
            if m == 1:
                return (start + end) * (n - 1) / 2
            return start * (n - 1) + dst * (end - start) * (n - 1) / (m - 1)
        if transform == "align_corners":
            return Fraction(dst * (n - 1), m - 1)
        if transform == "asymmetric":
            return dst / self.scale
        if transform == "pytorch_half_pixel" and m == 1:
            return Fraction(0)
        return (dst + Fraction(1, 2)) / self.scale - Fraction(1, 2)

    def exactly_computed(self, transform: str, dst: int) -> bool:
        """Whether any float32 formula gets this position exactly (power-of-two steps, or no step)."""
        if transform == "tf_crop_and_resize":
            return dst == 0 or self.out_size == 1
        if transform == "align_corners":
            return dst == 0 or self.in_size == 1 or is_power_of_two(Fraction(self.in_size - 1, self.out_size - 1))
        if transform == "pytorch_half_pixel" and self.out_size == 1:
            return True
        return is_power_of_two(self.scale) or (transform == "asymmetric" and dst == 0)


def is_power_of_two(ratio: Fraction) -> bool:
    numerator, denominator = ratio.numerator, ratio.denominator
    return ratio > 0 and numerator & (numerator - 1) == 0 and denominator & (denominator - 1) == 0


def nearest_index(x: Fraction, nearest_mode: str, in_size: int) -> int:
    """The picked source index, clamped into the input as ONNX Runtime and the reference do."""
    if nearest_mode == "floor":
        index = math.floor(x)
    elif nearest_mode == "ceil":
        index = math.ceil(x)
    elif x - math.floor(x) == Fraction(1, 2):
        index = math.floor(x) if nearest_mode == "round_prefer_floor" else math.ceil(x)
    else:
        index = math.floor(x + Fraction(1, 2))
    return min(max(index, 0), in_size - 1)


def outside(attrs: dict[str, Any], x: Fraction, in_size: int) -> bool:
    """tf_crop_and_resize writes extrapolation_value where it samples outside the input."""
    return attrs["coordinate_transformation_mode"] == "tf_crop_and_resize" and not 0 <= x <= in_size - 1


def sample_kind(attrs: dict[str, Any], x: Fraction, in_size: int) -> tuple[int, ...]:
    """What rounding noise could flip at position x: extrapolated or not, and the nearest pick."""
    if outside(attrs, x, in_size):
        return (-1,)
    return (nearest_index(x, attrs["nearest_mode"], in_size),) if attrs["mode"] == "nearest" else ()


def stable_positions(attrs: dict[str, Any], plan: AxisPlan) -> bool:
    """No output position changes its kind when its source position moves by rounding noise."""
    transform = attrs["coordinate_transformation_mode"]
    for dst in range(plan.out_size):
        if plan.exactly_computed(transform, dst):
            continue
        x = plan.position(transform, dst)
        if sample_kind(attrs, x - NOISE, plan.in_size) != sample_kind(attrs, x + NOISE, plan.in_size):
            return False
    return True


def cubic_weight(distance: Fraction, a: float) -> float:
    """The cubic convolution kernel with coefficient `a`."""
    d = abs(float(distance))
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    if d < 2:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return 0.0


def axis_taps(attrs: dict[str, Any], plan: AxisPlan) -> tuple[Taps, list[bool]]:
    """Per output position the source indices and weights from the ONNX formulas, and whether
    the position lies outside the input (tf_crop_and_resize then writes extrapolation_value)."""
    taps: Taps = []
    n = plan.in_size
    clamp = lambda i: min(max(i, 0), n - 1)  # noqa: E731  edge padding
    positions = [plan.position(attrs["coordinate_transformation_mode"], dst) for dst in range(plan.out_size)]
    count = {"nearest": 1, "linear": 2, "cubic": 4}[attrs["mode"]]
    for x in positions:
        base = math.floor(x)
        if outside(attrs, x, n):
            taps.append([(0, 0.0)] * count)  # extrapolation_value replaces it
        elif attrs["mode"] == "nearest":
            taps.append([(nearest_index(x, attrs["nearest_mode"], n), 1.0)])
        elif attrs["mode"] == "linear":
            fraction = float(x - base)
            taps.append([(clamp(base), 1.0 - fraction), (clamp(base + 1), fraction)])
        else:
            points = [(i, cubic_weight(x - i, attrs["cubic_coeff_a"])) for i in range(base - 1, base + 3)]
            if attrs["exclude_outside"]:
                points = [(i, w if 0 <= i < n else 0.0) for i, w in points]
                total = sum(w for _, w in points)
                points = [(i, w / total) for i, w in points]
            taps.append([(clamp(i), w) for i, w in points])
    return taps, [outside(attrs, x, n) for x in positions]


def resample_axis(x: torch.Tensor, axis: int, taps: Taps, fill: list[bool], value: float) -> torch.Tensor:
    """Gather each output position's source elements along `axis`, weigh them, fill extrapolations."""
    count = len(taps[0])
    index = torch.tensor([i for position in taps for i, _ in position])
    picked = x.index_select(axis, index)
    trailing = [1] * (x.dim() - axis - 1)
    if count > 1:
        shape = list(x.shape)
        shape[axis : axis + 1] = [len(taps), count]
        weights = torch.tensor([[w for _, w in position] for position in taps], dtype=x.dtype)
        picked = (picked.reshape(shape) * weights.reshape(len(taps), count, *trailing)).sum(axis + 1)
    if not any(fill):
        return picked
    mask = torch.tensor(fill).reshape(len(taps), *trailing)
    return torch.where(mask, torch.tensor(value, dtype=x.dtype), picked)


@register
class Resize(OpSpec):
    """Resize of some or all spatial axes; see the module docstring for what is covered and why."""

    onnx_op = "Resize"
    ranks = ((3,), (4,), (5,))
    dtypes = tuple((t,) for t in RESIZE_DTYPES)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        x = inputs[0]
        floats = x.dtype in FLOATS
        modes = ["nearest", "linear"] + ["cubic"] * (x.rank == 4) if floats else ["nearest"]
        transform = rng.choice(TRANSFORMS if floats else TRANSFORMS[:-1])
        attrs: dict[str, Any] = {
            "mode": rng.choice(modes),
            "coordinate_transformation_mode": transform,
            # ONNX Runtime and the ONNX reference size a crop given by scales differently.
            "by": "sizes" if transform == "tf_crop_and_resize" else rng.choice(["scales", "sizes"]),
        }
        if attrs["mode"] == "nearest":
            attrs["nearest_mode"] = rng.choice(NEAREST_MODES)
        if attrs["mode"] == "cubic":
            attrs["cubic_coeff_a"] = rng.choice([-0.75, -0.5])
            attrs["exclude_outside"] = rng.randint(0, 1)
        if transform == "tf_crop_and_resize":
            attrs["extrapolation_value"] = rng.choice(EXTRAPOLATION_VALUES)
        spatial = list(range(2, x.rank))
        named = rng.random() < 0.4  # else scales or sizes cover every dim, N and C unchanged
        attrs["axes"] = sorted(rng.sample(spatial, rng.randint(1, len(spatial)))) if named else spatial
        attrs["onnx_axes"] = [a - x.rank if rng.random() < 0.3 else a for a in attrs["axes"]] if named else None
        sampled = [cls.sample_axis(rng, attrs, axis) for axis in attrs["axes"]]
        attrs["in_sizes"] = [plan.in_size for plan, _, _ in sampled]
        attrs["out_sizes"] = [plan.out_size for plan, _, _ in sampled]
        if attrs["by"] == "scales":
            attrs["scales"] = [scale for _, scale, _ in sampled]
        if transform == "tf_crop_and_resize":
            attrs["rois"] = [roi for _, _, roi in sampled]
        return attrs

    @classmethod
    def sample_axis(
        cls, rng: random.Random, attrs: dict[str, Any], axis: int
    ) -> tuple[AxisPlan, float | None, list[float] | None]:
        """One resized axis whose every sample is well defined, with its scale and crop box as drawn."""
        for _ in range(TRIES):
            in_size = rng.randint(1, MAX_IN)
            scale = rng.choice(SCALES) if attrs["by"] == "scales" else None
            out_size = math.floor(in_size * scale) if scale is not None else rng.randint(1, MAX_OUT)
            roi = None
            if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize":
                roi = [rng.choice(ROI_STARTS), rng.choice(ROI_ENDS)]
            plan = axis_plan(attrs, axis, in_size, out_size, scale, roi)
            if out_size >= 1 and cls.well_defined(attrs, plan):
                return plan, scale, roi
        scale = 1.0 if attrs["by"] == "scales" else None  # an identity, or a crop of the middle: always stable
        roi = [0.25, 0.75] if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize" else None
        return axis_plan(attrs, axis, 2, 2, scale, roi), scale, roi

    @staticmethod
    def well_defined(attrs: dict[str, Any], plan: AxisPlan) -> bool:
        transform, n, m = attrs["coordinate_transformation_mode"], plan.in_size, plan.out_size
        if m == n and (plan.scale != 1 or plan.roi not in (None, (0, 1))):
            return False  # ONNX Runtime copies the input, where the spec resamples or crops it
        fractional = n * plan.scale != m  # the ONNX reference then uses in_size * scale as the length
        if transform == "align_corners" and (m == 1 or fractional):
            return False
        if transform == "pytorch_half_pixel" and m == 1 and (fractional or attrs["mode"] == "cubic"):
            return False
        return stable_positions(attrs, plan)

    def __init__(self, attrs: dict[str, Any]) -> None:
        super().__init__(attrs)
        # A re-solve (the reducer's) may ask for plans no draw would make: refused in `requires`.
        plans = self.plans()
        self.defined = all(self.well_defined(attrs, plan) for plan in plans)
        # Fractions now, not while torch.compile traces to_torch (dynamo cannot trace them).
        self.taps = [(plan.axis, *axis_taps(attrs, plan)) for plan in plans] if self.defined else []

    def plans(self) -> list[AxisPlan]:
        attrs = self.attrs
        count = len(attrs["axes"])
        drawn = zip(
            attrs["axes"],
            attrs["in_sizes"],
            attrs["out_sizes"],
            attrs.get("scales") or [None] * count,
            attrs.get("rois") or [None] * count,
        )
        return [axis_plan(attrs, *axis) for axis in drawn]

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        x, axes, spelled = inputs[0], self.attrs["axes"], self.attrs["onnx_axes"]
        if axes != sorted(set(axes)) or not 0 <= axes[0] <= axes[-1] < x.rank:
            return [False]  # a re-solve may ask for other axes; ONNX refuses repeats, the lowering needs order
        if (spelled is not None and [a % x.rank for a in spelled] != axes) or not self.defined:
            return [False]
        return [x.shape[a] == n for a, n in zip(axes, self.attrs["in_sizes"])]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x = inputs[0]
        shape = list(x.shape)
        for axis, out_size in zip(self.attrs["axes"], self.attrs["out_sizes"]):
            shape[axis] = out_size
        return [AbsTensor(shape, x.dtype)]

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        attrs = self.attrs
        shape = emit.input_types[0].shape
        named = attrs["onnx_axes"] is not None

        def spelled(values: list[Any], unchanged: list[Any]) -> list[Any]:
            """Per resized axis as given with `axes`, else for every axis (the others unchanged)."""
            given = dict(zip(attrs["axes"], values))
            return values if named else [given.get(axis, same) for axis, same in enumerate(unchanged)]

        roi = ""
        if "rois" in attrs:
            starts, ends = [r[0] for r in attrs["rois"]], [r[1] for r in attrs["rois"]]
            roi = emit.const(spelled(starts, [0] * len(shape)) + spelled(ends, [1] * len(shape)), "float32")
        if attrs["by"] == "scales":
            operands = [inputs[0], roi, emit.const(spelled(attrs["scales"], [1.0] * len(shape)), "float32")]
        else:
            operands = [inputs[0], roi, "", emit.const(spelled(attrs["out_sizes"], list(shape)))]
        names = (
            "mode",
            "coordinate_transformation_mode",
            "nearest_mode",
            "cubic_coeff_a",
            "exclude_outside",
            "extrapolation_value",
        )
        onnx_attrs = {k: attrs[k] for k in names if k in attrs}
        emit.node("Resize", operands, outputs, axes=attrs["onnx_axes"], **onnx_attrs)

    def values(self, inputs: list[Values]) -> list[Values]:
        """Nearest copies elements; linear averages neighbours, so a region inside an earlier Pad's
        fill keeps it (as AveragePool's windows do); cubic overshoots its input's bounds. A crop past
        the input writes the extrapolation value."""
        x, mode = inputs[0], self.attrs["mode"]
        held = (
            x if mode == "nearest" else Values(x.low, x.high, x.forced) if mode == "linear" else Values(forced=x.forced)
        )
        if "extrapolation_value" not in self.attrs:
            return [held]
        return [held.union(constant(self.attrs["extrapolation_value"]))]

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        interpolate_mode = self.native_mode(x)
        if interpolate_mode is not None:
            return self.interpolate(x, interpolate_mode)
        for axis, taps, fill in self.taps:
            x = resample_axis(x, axis, taps, fill, self.attrs.get("extrapolation_value", 0.0))
        return x

    def native_mode(self, x: torch.Tensor) -> str | None:
        """The F.interpolate mode that computes exactly this Resize, if any."""
        attrs = self.attrs
        if x.dtype not in (torch.float32, torch.float64):
            return None
        transform, mode = attrs["coordinate_transformation_mode"], attrs["mode"]
        half_pixel = transform == "half_pixel" or (transform == "pytorch_half_pixel" and min(attrs["out_sizes"]) > 1)
        if mode == "nearest":
            if (transform, attrs["nearest_mode"]) == ("asymmetric", "floor"):
                return "nearest"
            return "nearest-exact" if half_pixel and attrs["nearest_mode"] == "round_prefer_ceil" else None
        if not (half_pixel or transform == "align_corners"):
            return None
        if mode == "linear":
            return ("linear", "bilinear", "trilinear")[x.dim() - 3]
        plain_cubic = attrs["cubic_coeff_a"] == -0.75 and not attrs["exclude_outside"]
        return "bicubic" if plain_cubic else None

    def interpolate(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        attrs = self.attrs
        spatial = list(range(2, x.dim()))
        sizes = dict(zip(attrs["axes"], attrs["out_sizes"]))
        corners = attrs["coordinate_transformation_mode"] == "align_corners" if "nearest" not in mode else None
        if attrs["by"] == "scales":
            factors = dict(zip(attrs["axes"], attrs["scales"]))
            scale_factor = [factors.get(a, 1.0) for a in spatial]
            return F.interpolate(
                x, scale_factor=scale_factor, mode=mode, align_corners=corners, recompute_scale_factor=False
            )
        return F.interpolate(x, size=[sizes.get(a, x.shape[a]) for a in spatial], mode=mode, align_corners=corners)
