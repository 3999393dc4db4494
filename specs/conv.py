"""Convolution and pooling over 1-3 spatial dims, sharing one sliding-window shape rule."""

from __future__ import annotations

import random
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
import z3

from specs.base import AbsTensor, Dim, OpSpec, Symbols, if_, register, same_dtype

SPATIAL = (1, 2, 3)
MAX_PAD = 3
FLOAT_TYPES = ("float32", "float64")


def torch_pad_order(pads: list[int]) -> list[int]:
    """ONNX pads are [begin_0..begin_n, end_0..end_n]; F.pad wants (begin_n, end_n, ..., begin_0, end_0)."""
    n = len(pads) // 2
    order: list[int] = []
    for axis in reversed(range(n)):
        order += [pads[axis], pads[axis + n]]
    return order


class SlidingWindow(OpSpec):
    """Shared by Conv and the pools: per spatial axis a kernel, stride, dilation and two pads."""

    dilated: ClassVar[bool] = True
    symmetric_pads: ClassVar[bool] = False

    @classmethod
    def sample_window(cls, rng: random.Random, spatial: int, syms: Symbols) -> dict[str, Any]:
        begins = [syms.int(f"pad{i}") for i in range(spatial)]
        ends = begins if cls.symmetric_pads else [syms.int(f"pad_end{i}") for i in range(spatial)]
        return {
            "strides": [rng.choice([1, 1, 2, 3]) for _ in range(spatial)],
            "dilations": [rng.choice([1, 1, 2]) if cls.dilated else 1 for _ in range(spatial)],
            "pads": begins + ends,
        }

    def kernel(self, inputs: list[AbsTensor]) -> list[Dim]:
        raise NotImplementedError

    def pad_limit(self, kernel: Dim, dilation: int) -> Dim:
        return MAX_PAD

    def window_requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        size = inputs[0].shape[2:]
        pads, dilations = self.attrs["pads"], self.attrs["dilations"]
        cons = []
        for i, kernel in enumerate(self.kernel(inputs)):
            begin, end = pads[i], pads[i + len(size)]
            limit = self.pad_limit(kernel, dilations[i])
            effective = dilations[i] * (kernel - 1) + 1
            cons += [kernel >= 1, begin >= 0, end >= 0, begin <= limit, end <= limit]
            cons.append(size[i] + begin + end >= effective)
        return cons

    def window_shape(self, inputs: list[AbsTensor]) -> list[Dim]:
        size = inputs[0].shape[2:]
        pads, strides, dilations = self.attrs["pads"], self.attrs["strides"], self.attrs["dilations"]
        out = []
        for i, kernel in enumerate(self.kernel(inputs)):
            effective = dilations[i] * (kernel - 1) + 1
            out.append((size[i] + pads[i] + pads[i + len(size)] - effective) / strides[i] + 1)
        return out


@register
class Conv(SlidingWindow):
    """N-d convolution with groups; asymmetric pads lower to torch as an explicit zero pad."""

    onnx_op = "Conv"
    ranks = tuple((r, r, 1) for r in (3, 4, 5))
    dtypes = same_dtype(3, FLOAT_TYPES)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        attrs = cls.sample_window(rng, inputs[0].rank - 2, syms)
        attrs["group"] = rng.choice([1, 1, 1, 2, 3])
        return attrs

    def kernel(self, inputs: list[AbsTensor]) -> list[Dim]:
        return inputs[1].shape[2:]

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        x, w, b = (t.shape for t in inputs)
        group = self.attrs["group"]
        return [
            x[1] == group * w[1],
            w[0] % group == 0,
            b[0] == w[0],
            *self.window_requires(inputs),
        ]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x, w = inputs[0].shape, inputs[1].shape
        return [AbsTensor([x[0], w[0], *self.window_shape(inputs)], inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return dict(self.attrs)

    def to_torch(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        conv = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 3]
        x = F.pad(x, torch_pad_order(self.attrs["pads"]))
        return conv(x, w, b, self.attrs["strides"], 0, self.attrs["dilations"], self.attrs["group"])


class Pool(SlidingWindow):
    """Pools: the kernel is an attribute, channels pass through."""

    ranks = tuple((r,) for r in (3, 4, 5))
    dtypes = same_dtype(1, FLOAT_TYPES)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        spatial = inputs[0].rank - 2
        attrs = cls.sample_window(rng, spatial, syms)
        attrs["kernel_shape"] = [syms.int(f"kernel{i}") for i in range(spatial)]
        return attrs

    def kernel(self, inputs: list[AbsTensor]) -> list[Dim]:
        return self.attrs["kernel_shape"]

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return self.window_requires(inputs)

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x = inputs[0].shape
        return [AbsTensor([x[0], x[1], *self.window_shape(inputs)], inputs[0].dtype)]


@register
class MaxPool(Pool):
    """Pads never win a max; lowered to torch as an explicit -inf pad so pads may be asymmetric."""

    onnx_op = "MaxPool"

    def pad_limit(self, kernel: Dim, dilation: int) -> Dim:
        # ONNX Runtime insists on pads < kernel, which also keeps a real element in every window;
        # dilated taps can straddle the real elements and see only padding (-inf), so they get none.
        if dilation > 1:
            return 0
        return if_(kernel - 1 < MAX_PAD, kernel - 1, MAX_PAD)

    def onnx_attrs(self) -> dict[str, Any]:
        return dict(self.attrs)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[x.dim() - 3]
        x = F.pad(x, torch_pad_order(self.attrs["pads"]), value=float("-inf"))
        kernel, strides, dilations = self.attrs["kernel_shape"], self.attrs["strides"], self.attrs["dilations"]
        return pool(x, kernel, strides, 0, dilations)


@register
class AveragePool(Pool):
    """torch pads symmetrically and at most half a kernel; the spec keeps to that."""

    onnx_op = "AveragePool"
    dilated = False
    symmetric_pads = True

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        attrs = super().sample_attrs(rng, inputs, syms)
        attrs["count_include_pad"] = rng.randint(0, 1)
        return attrs

    def pad_limit(self, kernel: Dim, dilation: int) -> Dim:
        return kernel / 2

    def onnx_attrs(self) -> dict[str, Any]:
        return {k: v for k, v in self.attrs.items() if k != "dilations"}

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[x.dim() - 3]
        spatial = x.dim() - 2
        pads = self.attrs["pads"][:spatial]
        return pool(
            x,
            self.attrs["kernel_shape"],
            self.attrs["strides"],
            pads,
            ceil_mode=False,
            count_include_pad=bool(self.attrs["count_include_pad"]),
        )
