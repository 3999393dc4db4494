"""Normalizations: statistics over groups of elements (Batch/Instance/Layer/MeanVariance), Lp and LRN.

GroupNormalization is absent: its opset-18 form is deprecated, and onnx.checker rejects it in an
opset-18 model; the opset-21 form needs a newer opset than the project generates.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
import z3

from specs.axis import AlongAxis
from specs.base import MAX_RANK, AbsTensor, OpSpec, Symbols, or_, register, same_dtype, sample_axes, spell_axis
from specs.elementwise import MARGIN, above, below
from specs.reduce import FLOATS, magnitude_limit
from specs.values import ZERO, Need, Values

EPSILONS = (1e-5, 1e-3, 0.1)
# The smallest variance a normalized group may have: its standard deviation divides the rounding error of
# the ops before it, which float16 keeps within the comparison's tolerance down to MARGIN only.
SPREAD_FLOOR = {torch.float32: 0.01, torch.float64: 0.01}


def spread(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    """Loss keeping each normalized group's variance above its dtype's floor and large against its mean.

    In a near-constant group, rounding noise becomes the whole output; and a backend that rounds
    the mean to x's precision (torch does for float16) shifts every deviation by |mean| * eps.
    """
    wide = x.double()
    conditioning = (100 * torch.finfo(x.dtype).eps) ** 2 * wide.mean(axes).square()
    return above(wide.var(axes, unbiased=False) - conditioning, SPREAD_FLOOR.get(x.dtype, MARGIN))


class Normalization(OpSpec):
    """The output has the shape and dtype of X, the first input."""

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        return [AbsTensor(list(inputs[0].shape), inputs[0].dtype)]


class GroupStatistics(Normalization):
    """Normalizes groups of elements by their own mean and variance; a group needs two elements."""

    def normalized_axes(self, rank: int) -> list[int]:
        raise NotImplementedError

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        x = inputs[0]
        return [or_(*(x.shape[a] >= 2 for a in self.normalized_axes(x.rank)))]

    def domain_loss(self, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor | None:
        return spread(x, self.normalized_axes(x.dim()))


class PerChannel(Normalization):
    """X is (N, C, D1, ...); every other input is a length-C vector."""

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"epsilon": rng.choice(EPSILONS)}

    def channel_requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        channels = inputs[0].shape[1]
        return [vector.shape[0] == channels for vector in inputs[1:]]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"epsilon": self.attrs["epsilon"]}


@register
class BatchNormalization(PerChannel):
    """Inference form: (x - mean) / sqrt(var + epsilon) * scale + B with given statistics."""

    onnx_op = "BatchNormalization"
    ranks = tuple((r, 1, 1, 1, 1) for r in range(2, MAX_RANK + 1))
    dtypes = same_dtype(5, FLOATS)
    needs: ClassVar[dict[int, Need]] = {4: Need(MARGIN)}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return self.channel_requires(inputs)

    def to_torch(
        self, x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
    ) -> torch.Tensor:
        return F.batch_norm(x, mean, var, scale, bias, training=False, eps=self.attrs["epsilon"])

    def domain_loss(
        self, x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
    ) -> torch.Tensor | None:
        return above(var, MARGIN)


@register
class InstanceNormalization(PerChannel, GroupStatistics):
    """Each (n, c) slice over the spatial dims is one group; scale and B are per channel."""

    onnx_op = "InstanceNormalization"
    ranks = tuple((r, 1, 1) for r in range(3, MAX_RANK + 1))
    dtypes = same_dtype(3, FLOATS)

    def normalized_axes(self, rank: int) -> list[int]:
        return list(range(2, rank))

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return self.channel_requires(inputs) + super().requires(inputs)

    def to_torch(self, x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=scale, bias=bias, eps=self.attrs["epsilon"])


@register
class LayerNormalization(GroupStatistics):
    """Normalizes over the axes from `axis` on; Scale and the optional B broadcast one way to X.

    Most instances give Scale and B exactly the normalized shape, as models do; the rest draw any
    one-way broadcast (down to a scalar), which ONNX allows and frontends often mishandle.
    stash_type=1 (the default) computes the standardization in float32 and casts it back before
    Scale and B are applied; the torch lowering does the same.
    """

    onnx_op = "LayerNormalization"
    ranks = tuple(
        (x, *params)
        for x in range(1, MAX_RANK + 1)
        for arity in (1, 2)  # Scale, then Scale and B
        for params in itertools.product(range(x + 1), repeat=arity)
    )
    dtypes = same_dtype(2, FLOATS) + same_dtype(3, FLOATS)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        param_ranks = {param.rank for param in inputs[1:]}
        exact = len(param_ranks) == 1 and min(param_ranks) > 0 and rng.random() < 0.7
        # Scale and B broadcast to X.shape[axis:], so they have at most rank - axis dims.
        axis = rank - min(param_ranks) if exact else rng.randrange(min(rank, rank - max(param_ranks) + 1))
        return {
            "axis": axis,
            "onnx_axis": spell_axis(rng, axis, rank),
            "epsilon": rng.choice(EPSILONS),
            "exact_params": exact,
        }

    def normalized_axes(self, rank: int) -> list[int]:
        return list(range(self.attrs["axis"], rank))

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        x = inputs[0].shape
        cons = super().requires(inputs)
        for param in inputs[1:]:
            for p, d in zip(reversed(param.shape), reversed(x)):
                cons.append(p == d if self.attrs["exact_params"] else or_(p == d, p == 1))
        return cons

    def onnx_attrs(self) -> dict[str, Any]:
        return {"axis": self.attrs["onnx_axis"], "epsilon": self.attrs["epsilon"]}

    def to_torch(self, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        shape = x.shape[self.attrs["axis"] :]
        standardized = F.layer_norm(x.float(), shape, eps=self.attrs["epsilon"]).to(x.dtype)
        scaled = standardized * params[0]
        return scaled + params[1] if len(params) == 2 else scaled


@register
class MeanVarianceNormalization(GroupStatistics):
    """(x - E[x]) / (sqrt(E[x²] - E[x]²) + 1e-9) over `axes`, as ONNX's function body computes it.

    float32 only: the function body's constants are float, so ONNX Runtime cannot expand it for
    double or float16 inputs.
    """

    onnx_op = "MeanVarianceNormalization"
    ranks = tuple((r,) for r in range(1, MAX_RANK + 1))
    dtypes = (("float32",),)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        rank = inputs[0].rank
        axes = sample_axes(rng, rank)
        return {"axes": axes, "onnx_axes": [spell_axis(rng, a, rank) for a in axes]}

    def normalized_axes(self, rank: int) -> list[int]:
        return self.attrs["axes"]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"axes": self.attrs["onnx_axes"]}

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        axes = self.attrs["axes"]
        mean = x.mean(axes, keepdim=True)
        variance = (x * x).mean(axes, keepdim=True) - mean * mean
        return (x - mean) / (torch.sqrt(variance) + 1e-9)

    def values(self, inputs: list[Values]) -> list[Values]:
        """Zero mean and unit variance: no group is one-signed, none fits inside (-1, 1)."""
        return [Values(centered=True, spread=1.0)]


@register
class LpNormalization(AlongAxis):
    """x / ||x||_p along one axis, p in {1, 2}; the norm is kept away from zero."""

    onnx_op = "LpNormalization"
    min_axis_dim = 2
    needs: ClassVar[dict[int, Need]] = {0: Need(nonzero=True)}

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {"p": rng.choice([1, 2])}

    def onnx_attrs(self) -> dict[str, Any]:
        return super().onnx_attrs() | {"p": self.attrs["p"]}

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(x, self.attrs["p"], self.attrs["axis"], keepdim=True)

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.norm(x)

    def values(self, inputs: list[Values]) -> list[Values]:
        """Each group scaled by a positive norm: every element keeps its sign, so mixed signs stay mixed."""
        x = inputs[0]
        low, high = (0 if x.low >= 0 else -1), (0 if x.high <= 0 else 1)
        return [Values(low, high, x.forced & ZERO, centered=x.centered)]

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        powers = x.double().abs() ** self.attrs["p"]
        overflow = below(powers.sum(self.attrs["axis"]), magnitude_limit(x.dtype))
        return above(self.norm(x), MARGIN) + overflow


@register
class LRN(Normalization):
    """x / (bias + alpha / size * square_sum) ** beta, square_sum over a window of channels.

    Odd sizes and 4-D inputs only, since ONNX Runtime rejects the rest. The window is written out:
    torch's local_response_norm has no float16 CPU kernel and centres even sizes one channel lower.
    """

    onnx_op = "LRN"
    ranks = ((4,),)
    dtypes = tuple((t,) for t in FLOATS)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {
            "size": rng.choice([1, 3, 5]),
            "alpha": rng.choice([1e-4, 0.01, 0.5]),
            "beta": rng.choice([0.5, 0.75, 1.0]),
            "bias": rng.choice([0.5, 1.0, 2.0]),
        }

    def onnx_attrs(self) -> dict[str, Any]:
        return dict(self.attrs)

    def square_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of squares over channels [c - floor((size-1)/2), c + ceil((size-1)/2)], as ONNX defines."""
        size, channels = self.attrs["size"], x.shape[1]
        padded = F.pad(x * x, [0, 0, 0, 0, (size - 1) // 2, size // 2])
        return sum(padded.narrow(1, start, channels) for start in range(size))

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attrs
        return x / (a["bias"] + a["alpha"] / a["size"] * self.square_sum(x)) ** a["beta"]

    def domain_loss(self, x: torch.Tensor) -> torch.Tensor | None:
        return below(self.square_sum(x.double()), magnitude_limit(x.dtype))
