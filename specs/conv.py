"""Sliding-window geometry (pads, auto_pad, output sizes) and the convolutions built on it."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
import z3

from fuzzer.core.dtypes import FLOATS
from specs.base import AbsTensor, Dim, OpSpec, Symbols, if_, register, same_dtype
from specs.values import ZERO, Values, summed_products

SPATIAL = (1, 2, 3)
MAX_PAD = 3
AUTO_PADS = ("NOTSET", "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")

Pads = tuple[list[Dim], list[Dim]]


def floor_div(a: Dim, b: int) -> Dim:
    """Floor division by a positive constant, for Z3 terms and Python ints alike."""
    return a / b if isinstance(a, z3.ArithRef) else a // b


def ceil_div(a: Dim, b: int) -> Dim:
    """Ceiling division by a positive constant, for Z3 terms and Python ints alike."""
    return floor_div(a + b - 1, b)


def effective_kernel(kernel: Dim, dilation: int) -> Dim:
    """The span a dilated kernel covers."""
    return dilation * (kernel - 1) + 1


def split_total(total: Dim, upper: bool) -> tuple[Dim, Dim]:
    """(begin, end) of a total pad: SAME_UPPER puts the odd one at the end, SAME_LOWER at the begin."""
    half = floor_div(total, 2)
    return (half, total - half) if upper else (total - half, half)


def same_needed(size: Dim, effective: Dim, stride: int) -> Dim:
    """The total pad SAME_* asks for so the output has ceil(size / stride) positions; may be < 0."""
    return (ceil_div(size, stride) - 1) * stride + effective - size


def same_pads(size: Dim, effective: Dim, stride: int, upper: bool) -> tuple[Dim, Dim]:
    """(begin, end) pads of SAME_UPPER / SAME_LOWER; a negative need pads nothing."""
    needed = same_needed(size, effective, stride)
    return split_total(if_(needed > 0, needed, 0), upper)


def torch_pad_order(pads: list[int]) -> list[int]:
    """ONNX pads are [begin_0..begin_n, end_0..end_n]; F.pad wants (begin_n, end_n, ..., begin_0, end_0)."""
    n = len(pads) // 2
    order: list[int] = []
    for axis in reversed(range(n)):
        order += [pads[axis], pads[axis + n]]
    return order


def split_pads(begins: list[int], ends: list[int], limits: list[int] | None = None) -> tuple[list[int], list[int]]:
    """The symmetric part (at most `limits`) a torch op pads itself, and the rest in F.pad order."""
    native = [min(b, e) for b, e in zip(begins, ends)]
    if limits is not None:
        native = [min(n, limit) for n, limit in zip(native, limits)]
    rest = torch_pad_order([b - n for b, n in zip(begins, native)] + [e - n for e, n in zip(ends, native)])
    return native, rest


class SlidingWindow(OpSpec):
    """Per spatial axis a kernel, stride, dilation and two pads, given explicitly or by auto_pad.

    Subclasses give the kernel; the base keeps the window inside the (padded) input and computes
    the output size. ONNX Runtime rejects SAME_* with dilation, so SAME_* is drawn undilated.
    """

    solved = frozenset({"pads"})
    dilated: ClassVar[bool] = True
    symmetric_pads: ClassVar[bool] = False
    auto_pads: ClassVar[tuple[str, ...]] = AUTO_PADS

    @classmethod
    def sample_window(cls, rng: random.Random, spatial: int, syms: Symbols) -> dict[str, Any]:
        auto_pad = rng.choice(cls.auto_pads)
        dilated = cls.dilated and not auto_pad.startswith("SAME")
        attrs: dict[str, Any] = {
            "auto_pad": auto_pad,
            "strides": [rng.choice([1, 1, 2, 3]) for _ in range(spatial)],
            "dilations": [rng.choice([1, 1, 2]) if dilated else 1 for _ in range(spatial)],
        }
        if auto_pad == "NOTSET":
            begins = [syms.int(f"pad{i}", low=0) for i in range(spatial)]
            ends = begins if cls.symmetric_pads else [syms.int(f"pad_end{i}", low=0) for i in range(spatial)]
            attrs["pads"] = begins + ends
        return attrs

    def kernel(self, inputs: list[AbsTensor]) -> list[Dim]:
        raise NotImplementedError

    def pad_limit(self, kernel: Dim, dilation: int) -> Dim:
        return MAX_PAD

    def window_pads(self, size: list[Dim], kernel: list[Dim]) -> Pads:
        """(begins, ends) per spatial axis, for Z3 dims during generation or ints when lowering."""
        auto_pad, dilations, strides = self.attrs["auto_pad"], self.attrs["dilations"], self.attrs["strides"]
        if auto_pad == "NOTSET":
            pads = self.attrs["pads"]
            return list(pads[: len(size)]), list(pads[len(size) :])
        if auto_pad == "VALID":
            return [0] * len(size), [0] * len(size)
        upper = auto_pad == "SAME_UPPER"
        both = [same_pads(n, effective_kernel(k, d), s, upper) for n, k, d, s in zip(size, kernel, dilations, strides)]
        return [b for b, _ in both], [e for _, e in both]

    def window_requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        size, kernel = inputs[0].shape[2:], self.kernel(inputs)
        begins, ends = self.window_pads(size, kernel)
        cons = []
        for n, k, d, begin, end in zip(size, kernel, self.attrs["dilations"], begins, ends):
            limit = self.pad_limit(k, d)
            cons += [k >= 1, n + begin + end >= effective_kernel(k, d)]
            cons += [begin >= 0, end >= 0, begin <= limit, end <= limit]
            if self.symmetric_pads:
                cons.append(begin == end)
        return cons

    def window_shape(self, inputs: list[AbsTensor], ceil_mode: bool = False) -> list[Dim]:
        size, kernel = inputs[0].shape[2:], self.kernel(inputs)
        begins, ends = self.window_pads(size, kernel)
        rounding = ceil_div if ceil_mode else floor_div
        return [
            rounding(n + b + e - effective_kernel(k, d), s) + 1
            for n, k, d, s, b, e in zip(size, kernel, self.attrs["dilations"], self.attrs["strides"], begins, ends)
        ]

    def window_onnx_attrs(self) -> dict[str, Any]:
        names = ("strides", "dilations", "pads") if self.dilated else ("strides", "pads")
        attrs = {k: self.attrs[k] for k in names if k in self.attrs}
        if self.attrs["auto_pad"] != "NOTSET":
            attrs["auto_pad"] = self.attrs["auto_pad"]
        return attrs


CONV_RANKS = tuple((r + 2, r + 2, 1) for r in SPATIAL) + tuple((r + 2, r + 2) for r in SPATIAL)
CONV_DTYPES = same_dtype(3, FLOATS) + same_dtype(2, FLOATS)
FLOAT16_KERNEL = {1: 8, 2: 3, 3: 2}  # with 2 channels per group: at most 18 products per output


class Convolution(SlidingWindow):
    """X (N, C, ...), W with the kernel in its trailing dims, optional bias B; `group` splits channels."""

    solved = frozenset({"pads", "kernel_shape"})
    ranks = CONV_RANKS
    dtypes = CONV_DTYPES

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        attrs = cls.sample_window(rng, inputs[0].rank - 2, syms)
        attrs["group"] = rng.choice([1, 1, 1, 2, 3])
        if rng.random() < 0.5:  # optional in ONNX: frontends must read it from W otherwise
            attrs["kernel_shape"] = list(inputs[1].shape[2:])
        return attrs

    def kernel(self, inputs: list[AbsTensor]) -> list[Dim]:
        return inputs[1].shape[2:]

    def window_requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        """The window's rules, and an explicit kernel_shape equal to W's kernel dims."""
        stated = self.attrs.get("kernel_shape", [])
        return super().window_requires(inputs) + [s == k for s, k in zip(stated, self.kernel(inputs))]

    def short_float16_sums(self, inputs: list[AbsTensor], channels_per_group: Dim) -> list[z3.BoolRef]:
        """A float16 sum of many products drifts past the comparison tolerance by accumulation order
        alone (torch eager's float16 ConvTranspose was off by 0.06 on outputs near 60)."""
        if inputs[0].dtype != "float16":
            return []
        limit = FLOAT16_KERNEL[inputs[0].rank - 2]
        return [channels_per_group <= 2, *(k <= limit for k in self.kernel(inputs))]

    def values(self, inputs: list[Values]) -> list[Values]:
        return [summed_products(inputs[:2], inputs[2] if len(inputs) == 3 else None)]

    def onnx_attrs(self) -> dict[str, Any]:
        attrs = self.window_onnx_attrs() | {"group": self.attrs["group"]}
        if "kernel_shape" in self.attrs:
            attrs["kernel_shape"] = self.attrs["kernel_shape"]
        return attrs


@register
class Conv(Convolution):
    """W is (M, C / group, k...). Pads beyond torch's symmetric padding lower as an explicit zero pad."""

    onnx_op = "Conv"

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        x, w = inputs[0].shape, inputs[1].shape
        group = self.attrs["group"]
        cons = [x[1] == group * w[1], w[0] % group == 0, *self.window_requires(inputs)]
        cons += self.short_float16_sums(inputs, w[1])
        if len(inputs) == 3:
            cons.append(inputs[2].shape[0] == w[0])
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x, w = inputs[0].shape, inputs[1].shape
        return [AbsTensor([x[0], w[0], *self.window_shape(inputs)], inputs[0].dtype)]

    def values(self, inputs: list[Values]) -> list[Values]:
        """Explicit pads may be as wide as the kernel (a 1-wide kernel padded by 2): such windows see
        padding alone and hold the bias, or zeros without one (SAME pads stay under the kernel)."""
        (summed,) = super().values(inputs)
        padding_only = self.attrs["auto_pad"] == "NOTSET" and len(inputs) == 2
        return [replace(summed, forced=ZERO) if padding_only else summed]

    def to_torch(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        conv = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 3]
        begins, ends = self.window_pads(list(x.shape[2:]), list(w.shape[2:]))
        native, rest = split_pads(begins, ends)
        if any(rest):
            x = F.pad(x, rest)
        return conv(x, w, b, self.attrs["strides"], native, self.attrs["dilations"], self.attrs["group"])


@register
class ConvTranspose(Convolution):
    """W is (C, M / group, k...); pads crop the full output, output_padding extends its end.

    ONNX Runtime insists on output_padding < stride (torch also accepts < dilation). SAME_* keeps
    output_padding 0: ONNX shape inference adds it to in * stride there, ONNX Runtime does not
    (onnx/onnx#4299, microsoft/onnxruntime#11927); and the kernel at least as wide as the stride,
    since a negative total padding is undefined.
    """

    onnx_op = "ConvTranspose"

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        attrs = super().sample_attrs(rng, inputs, syms)
        same = attrs["auto_pad"].startswith("SAME")
        attrs["output_padding"] = [0 if same else rng.randrange(stride) for stride in attrs["strides"]]
        return attrs

    def values(self, inputs: list[Values]) -> list[Values]:
        """Without a bias, output positions no tap reaches hold zeros: between the taps of a stride wider
        than the kernel, inside a dilated kernel, in output_padding's tail. Kernel widths and pads are
        solved later, so any such attribute counts (SAME keeps the kernel as wide as the stride)."""
        (summed,) = super().values(inputs)
        attrs = self.attrs
        strided = attrs["auto_pad"] == "NOTSET" and any(stride > 1 for stride in attrs["strides"])
        gaps = strided or any(attrs["output_padding"]) or any(d > 1 for d in attrs["dilations"])
        return [replace(summed, forced=ZERO) if gaps and len(inputs) == 2 else summed]

    def window_pads(self, size: list[Dim], kernel: list[Dim]) -> Pads:
        if not self.attrs["auto_pad"].startswith("SAME"):
            return super().window_pads(size, kernel)
        upper = self.attrs["auto_pad"] == "SAME_UPPER"
        totals = [effective_kernel(k, d) - s for k, d, s in zip(kernel, self.attrs["dilations"], self.attrs["strides"])]
        both = [split_total(total, upper) for total in totals]
        return [b for b, _ in both], [e for _, e in both]

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        x, w = inputs[0].shape, inputs[1].shape
        begins, ends = self.window_pads(x[2:], w[2:])
        group = self.attrs["group"]
        cons = [x[1] == w[0], w[0] % group == 0, *self.short_float16_sums(inputs, floor_div(w[0], group))]
        if len(inputs) == 3:
            cons.append(inputs[2].shape[0] == group * w[1])
        for k, begin, end in zip(w[2:], begins, ends):
            cons += [k >= 1, begin >= 0, end >= 0, begin <= self.pad_limit(k, 1), end <= self.pad_limit(k, 1)]
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x, w = inputs[0].shape, inputs[1].shape
        begins, ends = self.window_pads(x[2:], w[2:])
        attrs = self.attrs
        spatial = [
            s * (n - 1) + extra + effective_kernel(k, d) - b - e
            for n, k, s, d, extra, b, e in zip(
                x[2:], w[2:], attrs["strides"], attrs["dilations"], attrs["output_padding"], begins, ends
            )
        ]
        return [AbsTensor([x[0], self.attrs["group"] * w[1], *spatial], inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return super().onnx_attrs() | {"output_padding": self.attrs["output_padding"]}

    def to_torch(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[x.dim() - 3]
        begins, ends = self.window_pads(list(x.shape[2:]), list(w.shape[2:]))
        native, rest = split_pads(begins, ends)
        attrs = self.attrs
        y = conv(x, w, b, attrs["strides"], native, attrs["output_padding"], attrs["group"], attrs["dilations"])
        return F.pad(y, [-crop for crop in rest]) if any(rest) else y
