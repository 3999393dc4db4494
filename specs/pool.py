"""Pools over 1-3 spatial dims: Max/Average/Lp over a sliding window, and their Global forms."""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
import z3

from fuzzer.core.dtypes import FLOATS
from specs.base import AbsTensor, Dim, OpSpec, Symbols, if_, register, same_dtype
from specs.conv import (
    MAX_PAD,
    SPATIAL,
    SlidingWindow,
    effective_kernel,
    floor_div,
    same_needed,
    split_pads,
    torch_pad_order,
)
from specs.elementwise import MARGIN
from specs.values import ZERO, Values

POOL_RANKS = tuple((r + 2,) for r in SPATIAL)
LP_ORDERS = (1, 2, 3)


class Pool(SlidingWindow):
    """The kernel is an attribute and channels pass through.

    With ceil_mode the last window must start inside the input or its begin pad: torch and ONNX
    Runtime drop a window that would start in the end pad, ONNX shape inference counts it.
    """

    solved = frozenset({"kernel_shape", "pads"})
    ranks = POOL_RANKS
    dtypes = same_dtype(1, FLOATS)
    extra_onnx_attrs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        spatial = inputs[0].rank - 2
        attrs = cls.sample_window(rng, spatial, syms)
        attrs["kernel_shape"] = [syms.int(f"kernel{i}") for i in range(spatial)]
        attrs["ceil_mode"] = rng.randint(0, 1) if attrs["auto_pad"] == "NOTSET" else 0
        return attrs

    def kernel(self, inputs: list[AbsTensor]) -> list[Dim]:
        return self.attrs["kernel_shape"]

    def pad_limit(self, kernel: Dim, dilation: int) -> Dim:
        # ONNX Runtime insists on pads < kernel, which also keeps a real element in every window.
        return if_(kernel - 1 < MAX_PAD, kernel - 1, MAX_PAD)

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        cons = self.window_requires(inputs)
        if self.attrs["auto_pad"].startswith("SAME"):
            # ONNX Runtime's Max/AveragePool reject the negative pad SAME_* asks of a kernel narrower
            # than its stride (Conv and LpPool take it as 0).
            attrs = self.attrs
            axes = zip(inputs[0].shape[2:], self.kernel(inputs), attrs["dilations"], attrs["strides"])
            cons += [same_needed(n, effective_kernel(k, d), s) >= 0 for n, k, d, s in axes]
        if self.attrs["ceil_mode"]:
            size = inputs[0].shape[2:]
            begins, _ = self.window_pads(size, self.kernel(inputs))
            for n, out, stride, begin in zip(size, self.window_shape(inputs, True), self.attrs["strides"], begins):
                cons.append((out - 1) * stride < n + begin)
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x = inputs[0].shape
        return [AbsTensor([x[0], x[1], *self.window_shape(inputs, bool(self.attrs["ceil_mode"]))], inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        names = ("kernel_shape", "ceil_mode", *self.extra_onnx_attrs)
        return self.window_onnx_attrs() | {k: self.attrs[k] for k in names}

    def concrete_pads(self, x: torch.Tensor) -> tuple[list[int], list[int]]:
        """(begins, ends) for this input, auto_pad resolved."""
        return self.window_pads(list(x.shape[2:]), self.attrs["kernel_shape"])

    def whole_window_pads(self, x: torch.Tensor) -> tuple[list[int], list[int]]:
        """Concrete pads with the end pads grown so that ceil_mode's partial windows become whole."""
        begins, ends = self.concrete_pads(x)
        outs = self.window_shape([AbsTensor(list(x.shape), "")], bool(self.attrs["ceil_mode"]))
        kernel, strides, dilations = self.attrs["kernel_shape"], self.attrs["strides"], self.attrs["dilations"]
        covered = [(out - 1) * s + effective_kernel(k, d) for out, s, k, d in zip(outs, strides, kernel, dilations)]
        padded = [n + b + e for n, b, e in zip(x.shape[2:], begins, ends)]
        return begins, [e + max(0, c - p) for e, c, p in zip(ends, covered, padded)]


def needs_float32(x: torch.Tensor) -> bool:
    """torch's CPU avg_pool3d has no float16 kernel: such pools run in float32 and round back."""
    return x.dtype == torch.float16 and x.dim() == 5


def lowest(x: torch.Tensor) -> float:
    """A pad value that never wins a max."""
    return float("-inf") if x.is_floating_point() else float(torch.iinfo(x.dtype).min)


def torch_max_pool(x: torch.Tensor, kernel: list[int], *args: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """F.max_poolNd with indices; torch has no 1-d integer max pool, so that runs as 2-d."""
    if x.dim() == 3 and not x.is_floating_point():
        strides, pads, dilations, ceil_mode = args
        values, indices = F.max_pool2d(
            x.unsqueeze(2), [1, *kernel], [1, *strides], [0, *pads], [1, *dilations], ceil_mode, return_indices=True
        )
        return values.squeeze(2), indices.squeeze(2)
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[x.dim() - 3]
    return pool(x, kernel, *args, return_indices=True)


def onnx_indices(
    plane_index: torch.Tensor, pooled: list[int], size: list[int], shift: list[int], column_major: bool
) -> torch.Tensor:
    """torch's index into one plane of the pooled input as ONNX numbers it: over the whole tensor."""
    coords = []
    rest = plane_index
    for extent in reversed(pooled):
        coords.append(rest % extent)
        rest = rest // extent
    coords = [c - s for c, s in zip(reversed(coords), shift)]
    axes = list(zip(coords, size))
    flat = torch.zeros_like(plane_index)
    for coord, extent in reversed(axes) if column_major else axes:
        flat = flat * extent + coord
    planes = plane_index.shape[0] * plane_index.shape[1]
    offsets = torch.arange(planes, dtype=torch.int64).reshape(*plane_index.shape[:2], *[1] * len(size))
    return flat + offsets * math.prod(size)


@register
class MaxPool(Pool):
    """Pads never win a max; pads beyond torch's own (symmetric, at most half a kernel) lower as F.pad.

    The optional Indices output (float inputs only) numbers elements over the whole N x C x spatial
    tensor, row- or column-major in a plane (storage_order); torch numbers them in one plane of
    what it pooled, so the lowering converts. Tied maxima make the index implementation-defined:
    the domain loss keeps the two largest elements of every window apart.
    """

    onnx_op = "MaxPool"
    dtypes = same_dtype(1, (*FLOATS, "int8", "uint8"))
    extra_onnx_attrs = ("storage_order",)

    def values(self, inputs: list[Values]) -> list[Values]:
        """A window inside an earlier Pad's fill holds only that fill; its own pads never win."""
        x = inputs[0]
        return [Values(x.low, x.high, x.forced, integral=x.integral)]

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        attrs = super().sample_attrs(rng, inputs, syms)
        attrs["indices"] = inputs[0].dtype in FLOATS and rng.random() < 0.4
        attrs["storage_order"] = rng.randint(0, 1) if attrs["indices"] else 0
        return attrs

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        # A dilated window could otherwise step over every real element of a short input.
        spread = [n >= d for n, d in zip(inputs[0].shape[2:], self.attrs["dilations"]) if d > 1]
        return [*super().requires(inputs), *spread]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        values = super().infer(inputs)
        return values + [AbsTensor(list(values[0].shape), "int64")] if self.attrs["indices"] else values

    def to_torch(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        begins, ends = self.concrete_pads(x)
        kernel = self.attrs["kernel_shape"]
        native, rest = split_pads(begins, ends, [k // 2 for k in kernel])
        padded = F.pad(x, rest, value=lowest(x)) if any(rest) else x
        attrs = self.attrs
        values, indices = torch_max_pool(
            padded, kernel, attrs["strides"], native, attrs["dilations"], bool(attrs["ceil_mode"])
        )
        if not attrs["indices"]:
            return values
        shift = [b - n for b, n in zip(begins, native)]
        size = list(x.shape[2:])
        return values, onnx_indices(indices, list(padded.shape[2:]), size, shift, bool(attrs["storage_order"]))

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        if not self.attrs["indices"]:
            return None
        begins, ends = self.whole_window_pads(x)
        floor = float(x.detach().min()) - 1.0
        windows = F.pad(x, torch_pad_order(begins + ends), value=floor)
        kernel, strides, dilations = self.attrs["kernel_shape"], self.attrs["strides"], self.attrs["dilations"]
        for axis, (k, s, d) in enumerate(zip(kernel, strides, dilations)):
            windows = windows.unfold(2 + axis, effective_kernel(k, d), s)[..., ::d]
        flat = windows.flatten(start_dim=x.dim())
        if flat.shape[-1] < 2:
            return torch.zeros(())
        top = flat.topk(2, dim=-1).values
        return torch.relu(MARGIN - (top[..., 0] - top[..., 1])).sum()


@register
class AveragePool(Pool):
    """torch pads symmetrically and at most half a kernel; the spec keeps to that, SAME_* included.

    A ceil_mode window that runs past the end pad divides by its part inside the padded input when
    count_include_pad is set (by its real elements otherwise): torch, ONNX Runtime and the ONNX
    reference evaluator agree on that. Opset 18 has no dilations for AveragePool.
    """

    onnx_op = "AveragePool"
    dilated = False
    symmetric_pads = True
    extra_onnx_attrs = ("count_include_pad",)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {"count_include_pad": rng.randint(0, 1)}

    def pad_limit(self, kernel: Dim, dilation: int) -> Dim:
        return floor_div(kernel, 2)

    def values(self, inputs: list[Values]) -> list[Values]:
        """A mean of the window, its own pads counted as zeros when count_include_pad says so; a
        window inside an earlier Pad's fill holds only that fill."""
        x = inputs[0]
        if self.attrs["count_include_pad"]:
            return [Values(min(x.low, 0.0), max(x.high, 0.0), x.forced)]
        return [Values(x.low, x.high, x.forced)]

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        cons = super().requires(inputs)
        if inputs[0].rank == 5:  # torch's avg_pool3d checks the unpadded input against the kernel
            cons += [n >= k for n, k in zip(inputs[0].shape[2:], self.kernel(inputs))]
        return cons

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        if needs_float32(x):
            return self.to_torch(x.float()).half()
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[x.dim() - 3]
        begins, _ = self.concrete_pads(x)
        attrs = self.attrs
        return pool(
            x,
            attrs["kernel_shape"],
            attrs["strides"],
            begins,
            ceil_mode=bool(attrs["ceil_mode"]),
            count_include_pad=bool(attrs["count_include_pad"]),
        )


@register
class LpPool(Pool):
    """(sum |x|^p)^(1/p) over each window.

    torch's lp_pool sums x^p (the wrong sign for odd p), has no pads and rescales partial ceil_mode
    windows; so the lowering feeds it |x| with pads and the ceil_mode overhang as explicit zeros,
    which add nothing to the sum. No dilations: torch's lp_pool has none.
    """

    onnx_op = "LpPool"
    dilated = False
    extra_onnx_attrs = ("p",)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {"p": rng.choice(LP_ORDERS)}

    def values(self, inputs: list[Values]) -> list[Values]:
        """A norm: never negative, and zero on a window inside an earlier Pad's zeros."""
        return [Values(low=0.0, forced=inputs[0].forced & ZERO)]

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        if needs_float32(x):
            return self.to_torch(x.float()).half()
        pool = (F.lp_pool1d, F.lp_pool2d, F.lp_pool3d)[x.dim() - 3]
        begins, ends = self.whole_window_pads(x)
        padded = F.pad(x.abs(), torch_pad_order(begins + ends))
        kernel = self.attrs["kernel_shape"]
        # lp_pool1d multiplies by its kernel_size, so it must be an int there.
        return pool(padded, self.attrs["p"], kernel if len(kernel) > 1 else kernel[0], self.attrs["strides"])


class GlobalPool(OpSpec):
    """Reduces every spatial dim to 1."""

    ranks = POOL_RANKS
    dtypes = same_dtype(1, FLOATS)

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        x = inputs[0]
        return [AbsTensor([*x.shape[:2], *[1] * (x.rank - 2)], x.dtype)]

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduce(x, list(range(2, x.dim())))

    def reduce(self, x: torch.Tensor, dims: list[int]) -> torch.Tensor:
        raise NotImplementedError


@register
class GlobalAveragePool(GlobalPool):
    onnx_op = "GlobalAveragePool"
    averages = True

    def reduce(self, x: torch.Tensor, dims: list[int]) -> torch.Tensor:
        return x.mean(dims, keepdim=True)

    def values(self, inputs: list[Values]) -> list[Values]:
        """A mean stays within its input's bounds."""
        return [Values(inputs[0].low, inputs[0].high)]


@register
class GlobalMaxPool(GlobalPool):
    onnx_op = "GlobalMaxPool"
    moves_values = True

    def reduce(self, x: torch.Tensor, dims: list[int]) -> torch.Tensor:
        return x.amax(dims, keepdim=True)


@register
class GlobalLpPool(GlobalPool):
    onnx_op = "GlobalLpPool"

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"p": rng.choice(LP_ORDERS)}

    def onnx_attrs(self) -> dict[str, Any]:
        return {"p": self.attrs["p"]}

    def reduce(self, x: torch.Tensor, dims: list[int]) -> torch.Tensor:
        return torch.linalg.vector_norm(x, self.attrs["p"], dims, keepdim=True)

    def values(self, inputs: list[Values]) -> list[Values]:
        """A norm: never negative."""
        return [Values(low=0.0)]
