"""Resize (opset 18): nearest, linear and cubic sampling of the spatial axes, by scales or sizes.

Covered: every coordinate_transformation_mode but tf_crop_and_resize (half_pixel,
pytorch_half_pixel, align_corners, asymmetric) with every nearest_mode, linear, and cubic with
cubic_coeff_a and exclude_outside; scales or sizes, with or without `axes`; 3-D/4-D/5-D input.
Left out: tf_crop_and_resize (roi, extrapolation_value), antialias, keep_aspect_ratio_policy
other than stretch, and resizing N or C (torch's interpolate cannot; ONNX Runtime only for
nearest). Cubic is 4-D only and linear/cubic are float only: ONNX Runtime has no other cubic and
rounds integer interpolation in its own way.

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
reference at -0.5). A scale != 1 whose output length equals the input's is left out too: ONNX
Runtime (and torch's 2-D nearest and its linear modes) then copy the input, while the spec and the
ONNX reference resample it.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import z3

from fuzzer.dtypes import FLOATS
from specs.base import AbsTensor, OnnxEmitter, OpSpec, Symbols, register

RESIZE_DTYPES = (*FLOATS, "int8", "uint8", "int32", "int64")
TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
SCALES = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)  # exact in float32
MAX_IN, MAX_OUT = 8, 12
NOISE = Fraction(1, 1000)  # far above float32 error on positions below 16, far below a pixel
TRIES = 20

Taps = list[list[tuple[int, float]]]  # per output position: (source index, weight)


def exact_scale(attrs: dict[str, Any], in_size: int, out_size: int, scale: float | None) -> Fraction:
    """The scale the spec computes with: the given float32 one, or output / input for sizes."""
    return Fraction(float(np.float32(scale))) if attrs["by"] == "scales" else Fraction(out_size, in_size)


def source_position(transform: str, dst: int, in_size: int, out_size: int, scale: Fraction) -> Fraction:
    """Where output position `dst` samples the input, as the ONNX spec defines it, exactly."""
    if transform == "align_corners":
        return Fraction(dst * (in_size - 1), out_size - 1)
    if transform == "asymmetric":
        return dst / scale
    if transform == "pytorch_half_pixel" and out_size == 1:
        return Fraction(0)
    return (dst + Fraction(1, 2)) / scale - Fraction(1, 2)


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


def is_power_of_two(ratio: Fraction) -> bool:
    numerator, denominator = ratio.numerator, ratio.denominator
    return ratio > 0 and numerator & (numerator - 1) == 0 and denominator & (denominator - 1) == 0


def exact_positions(transform: str, in_size: int, out_size: int, scale: Fraction) -> bool:
    """Whether every float32 way of computing the positions is exact (a power-of-two step)."""
    if transform == "align_corners":
        return in_size == 1 or is_power_of_two(Fraction(in_size - 1, out_size - 1))
    return is_power_of_two(scale)


def stable_picks(transform: str, nearest_mode: str, in_size: int, out_size: int, scale: Fraction) -> bool:
    """No nearest pick flips when its source position moves by rounding noise."""
    if exact_positions(transform, in_size, out_size, scale):
        return True
    for dst in range(out_size):
        x = source_position(transform, dst, in_size, out_size, scale)
        if nearest_index(x - NOISE, nearest_mode, in_size) != nearest_index(x + NOISE, nearest_mode, in_size):
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


def axis_taps(attrs: dict[str, Any], in_size: int, out_size: int, scale: Fraction) -> Taps:
    """Per output position the source indices and weights, from the ONNX formulas."""
    taps: Taps = []
    clamp = lambda i: min(max(i, 0), in_size - 1)  # noqa: E731  edge padding
    for dst in range(out_size):
        x = source_position(attrs["coordinate_transformation_mode"], dst, in_size, out_size, scale)
        base = math.floor(x)
        if attrs["mode"] == "nearest":
            taps.append([(nearest_index(x, attrs["nearest_mode"], in_size), 1.0)])
        elif attrs["mode"] == "linear":
            fraction = float(x - base)
            taps.append([(clamp(base), 1.0 - fraction), (clamp(base + 1), fraction)])
        else:
            points = [(i, cubic_weight(x - i, attrs["cubic_coeff_a"])) for i in range(base - 1, base + 3)]
            if attrs["exclude_outside"]:
                points = [(i, w if 0 <= i < in_size else 0.0) for i, w in points]
                total = sum(w for _, w in points)
                points = [(i, w / total) for i, w in points]
            taps.append([(clamp(i), w) for i, w in points])
    return taps


def resample_axis(x: torch.Tensor, axis: int, taps: Taps) -> torch.Tensor:
    """Gather each output position's source elements along `axis` and weigh them."""
    count = len(taps[0])
    index = torch.tensor([i for position in taps for i, _ in position])
    picked = x.index_select(axis, index)
    if count == 1:
        return picked
    shape = list(x.shape)
    shape[axis : axis + 1] = [len(taps), count]
    weights = torch.tensor([[w for _, w in position] for position in taps], dtype=x.dtype)
    return (picked.reshape(shape) * weights.reshape(len(taps), count, *[1] * (x.dim() - axis - 1))).sum(axis + 1)


@register
class Resize(OpSpec):
    """Resize of some or all spatial axes; see the module docstring for what is covered and why."""

    onnx_op = "Resize"
    ranks = ((3,), (4,), (5,))
    dtypes = tuple((t,) for t in RESIZE_DTYPES)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        x = inputs[0]
        modes = ["nearest"] if x.dtype not in FLOATS else ["nearest", "linear"] + ["cubic"] * (x.rank == 4)
        attrs: dict[str, Any] = {
            "mode": rng.choice(modes),
            "coordinate_transformation_mode": rng.choice(TRANSFORMS),
            "by": rng.choice(["scales", "sizes"]),
        }
        if attrs["mode"] == "nearest":
            attrs["nearest_mode"] = rng.choice(NEAREST_MODES)
        if attrs["mode"] == "cubic":
            attrs["cubic_coeff_a"] = rng.choice([-0.75, -0.5])
            attrs["exclude_outside"] = rng.randint(0, 1)
        spatial = list(range(2, x.rank))
        named = rng.random() < 0.4  # else scales or sizes cover every dim, N and C unchanged
        attrs["axes"] = sorted(rng.sample(spatial, rng.randint(1, len(spatial)))) if named else spatial
        attrs["onnx_axes"] = [a - x.rank if rng.random() < 0.3 else a for a in attrs["axes"]] if named else None
        sampled = [cls.sample_axis(rng, attrs) for _ in attrs["axes"]]
        attrs["in_sizes"] = [in_size for in_size, _, _ in sampled]
        attrs["out_sizes"] = [out_size for _, out_size, _ in sampled]
        if attrs["by"] == "scales":
            attrs["scales"] = [scale for _, _, scale in sampled]
        return attrs

    @classmethod
    def sample_axis(cls, rng: random.Random, attrs: dict[str, Any]) -> tuple[int, int, float | None]:
        """(input size, output size, given scale) for one resized axis, with every pick stable."""
        for _ in range(TRIES):
            in_size = rng.randint(1, MAX_IN)
            scale = rng.choice(SCALES) if attrs["by"] == "scales" else None
            out_size = math.floor(in_size * scale) if scale is not None else rng.randint(1, MAX_OUT)
            if out_size >= 1 and cls.well_defined(
                attrs, in_size, out_size, exact_scale(attrs, in_size, out_size, scale)
            ):
                return in_size, out_size, scale
        return 2, 2, 1.0 if attrs["by"] == "scales" else None

    @staticmethod
    def well_defined(attrs: dict[str, Any], in_size: int, out_size: int, exact: Fraction) -> bool:
        transform = attrs["coordinate_transformation_mode"]
        if out_size == in_size and exact != 1:  # ONNX Runtime copies the input, the spec resamples it
            return False
        fractional = in_size * exact != out_size  # the ONNX reference then uses in_size * scale as the length
        if transform == "align_corners" and (out_size == 1 or fractional):
            return False
        if transform == "pytorch_half_pixel" and out_size == 1 and (fractional or attrs["mode"] == "cubic"):
            return False
        return attrs["mode"] != "nearest" or stable_picks(transform, attrs["nearest_mode"], in_size, out_size, exact)

    def __init__(self, attrs: dict[str, Any]) -> None:
        super().__init__(attrs)
        # Fractions now, not while torch.compile traces to_torch (dynamo cannot trace them).
        self.taps = [(axis, axis_taps(attrs, n, m, scale)) for axis, n, m, scale in self.plan()]

    def plan(self) -> list[tuple[int, int, int, Fraction]]:
        """(axis, input size, output size, exact scale) per resized axis."""
        attrs = self.attrs
        scales = attrs.get("scales") or [None] * len(attrs["axes"])
        sizes = zip(attrs["axes"], attrs["in_sizes"], attrs["out_sizes"], scales)
        return [(axis, n, m, exact_scale(attrs, n, m, scale)) for axis, n, m, scale in sizes]

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        x = inputs[0]
        return [x.shape[a] == n for a, n in zip(self.attrs["axes"], self.attrs["in_sizes"])]

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
        if attrs["by"] == "scales":
            scales = attrs["scales"] if named else [1.0, 1.0, *attrs["scales"]]
            operands = [inputs[0], "", emit.const(scales, "float32")]
        else:
            sizes = attrs["out_sizes"] if named else [shape[0], shape[1], *attrs["out_sizes"]]
            operands = [inputs[0], "", "", emit.const(sizes)]
        names = ("mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside")
        onnx_attrs = {k: attrs[k] for k in names if k in attrs}
        emit.node("Resize", operands, outputs, axes=attrs["onnx_axes"], **onnx_attrs)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        interpolate_mode = self.native_mode(x)
        if interpolate_mode is not None:
            return self.interpolate(x, interpolate_mode)
        for axis, taps in self.taps:
            x = resample_axis(x, axis, taps)
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
