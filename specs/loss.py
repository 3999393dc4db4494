"""Classification losses that reduce over samples: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
import z3

from fuzzer.core.ir import TensorType
from specs.axis import log_softmax_spread
from specs.base import MAX_RANK, AbsTensor, OpSpec, Symbols, register
from specs.elementwise import MARGIN
from specs.reduce import FLOATS
from specs.values import Need, Values

INDEX_TYPES = ("int32", "int64")
TORCH_DEFAULT_IGNORE = -100  # never drawn as a target, so "no ignore_index" means the same in torch


class ClassLoss(OpSpec):
    """Scores (N, C, d1..dk), targets (N, d1..dk) in [0, C), optional per-class weight (C).

    Targets are a leaf input kept in range by `index_bounds`; with ignore_index = -1 that range
    starts at -1. An unweighted mean over ignored targets divides by every target in the ONNX text
    ("mean(loss)") and, for ignore_index = -1, in the ONNX reference, but by the kept targets in
    ONNX Runtime and torch; so an unweighted mean never draws an ignore_index.
    """

    ranks = tuple(r for x in range(2, MAX_RANK + 1) for r in ((x, x - 1), (x, x - 1, 1)))
    dtypes = tuple(combo for t in FLOATS for i in INDEX_TYPES for combo in ((t, i), (t, i, t)))
    leaf_inputs = (1,)
    needs: ClassVar[dict[int, Need]] = {2: Need(nonzero=True)}  # a weighted mean divides by the weights
    torch_loss: ClassVar[Callable[..., torch.Tensor]]

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        reduction = rng.choice(["none", "sum", "mean"])
        may_ignore = reduction != "mean" or len(inputs) == 3
        return {"reduction": reduction, "ignore_index": rng.choice([None, -1, 0]) if may_ignore else None}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        scores, target = inputs[0].shape, inputs[1].shape
        cons = [t == s for t, s in zip(target, [scores[0], *scores[2:]])]
        cons.append(scores[1] >= 2)  # one class: every log-probability is 0, the loss a constant
        if len(inputs) == 3:
            cons.append(inputs[2].shape[0] == scores[1])
        return cons

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        shape = list(inputs[1].shape) if self.attrs["reduction"] == "none" else []
        return [AbsTensor(shape, inputs[0].dtype)]

    def onnx_attrs(self) -> dict[str, Any]:
        return {"reduction": self.attrs["reduction"], "ignore_index": self.attrs["ignore_index"]}

    def index_bounds(self, input_index: int, inputs: list[TensorType]) -> tuple[int, int] | None:
        if input_index != 1:
            return None
        return (-1 if self.attrs["ignore_index"] == -1 else 0, inputs[0].shape[1] - 1)

    def drawn_needs(self) -> dict[int, Need]:
        return self.needs if self.attrs["reduction"] == "mean" else {}

    def values(self, inputs: list[Values]) -> list[Values]:
        """Unweighted, each target's loss lies in `target_losses` and a mean among them; a sum keeps their
        sign; an ignored target's is 0. Weights of either sign leave the loss unknown."""
        if len(inputs) == 3:
            return []
        low, high = self.target_losses(inputs[0])
        if self.attrs["reduction"] == "sum":
            low, high = (0.0 if low >= 0 else -math.inf), (0.0 if high <= 0 else math.inf)
        if self.attrs["ignore_index"] is not None and self.attrs["reduction"] != "mean":
            low, high = min(low, 0.0), max(high, 0.0)
        return [Values(low, high)]

    def target_losses(self, scores: Values) -> tuple[float, float]:
        """Bounds of one target's loss, given the scores'."""
        raise NotImplementedError

    def loss(self, scores: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        ignore = self.attrs["ignore_index"]
        return type(self).torch_loss(
            scores,
            target.long(),
            weight=weight,
            ignore_index=TORCH_DEFAULT_IGNORE if ignore is None else ignore,
            reduction=self.attrs["reduction"],
        )

    def mean_divisor_loss(self, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """A mean divides by the weights of the targets that are not ignored: keep that from zero."""
        if self.attrs["reduction"] != "mean":
            return torch.zeros(())
        ignore = self.attrs["ignore_index"]
        kept = target != ignore if ignore is not None else torch.ones_like(target, dtype=torch.bool)
        per_target = weight[target.long().clamp_min(0)] if weight is not None else torch.ones(target.shape)
        divisor = (per_target * kept).sum()
        return torch.relu(MARGIN - divisor.abs())


@register
class NegativeLogLikelihoodLoss(ClassLoss):
    onnx_op = "NegativeLogLikelihoodLoss"
    torch_loss = staticmethod(F.nll_loss)

    def to_torch(self, scores: torch.Tensor, target: torch.Tensor, *weight: torch.Tensor) -> torch.Tensor:
        return self.loss(scores, target, *weight)

    def domain_loss(self, scores: torch.Tensor, target: torch.Tensor, *weight: torch.Tensor) -> torch.Tensor | None:
        return self.mean_divisor_loss(target, *weight)

    def target_losses(self, scores: Values) -> tuple[float, float]:
        return -scores.high, -scores.low


@register
class SoftmaxCrossEntropyLoss(ClassLoss):
    """The optional log_prob output (log_softmax over C) is drawn as a second output."""

    onnx_op = "SoftmaxCrossEntropyLoss"
    torch_loss = staticmethod(F.cross_entropy)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {"log_prob": rng.randint(0, 1)}

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        log_prob = [AbsTensor(list(inputs[0].shape), inputs[0].dtype)] if self.attrs["log_prob"] else []
        return super().infer(inputs) + log_prob

    def to_torch(
        self, scores: torch.Tensor, target: torch.Tensor, *weight: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        loss = self.loss(scores, target, *weight)
        return (loss, torch.log_softmax(scores, 1)) if self.attrs["log_prob"] else loss

    def domain_loss(self, scores: torch.Tensor, target: torch.Tensor, *weight: torch.Tensor) -> torch.Tensor | None:
        return log_softmax_spread(scores, 1) + self.mean_divisor_loss(target, *weight)

    def target_losses(self, scores: Values) -> tuple[float, float]:
        return 0.0, math.inf  # minus a log-probability

    def values(self, inputs: list[Values]) -> list[Values]:
        log_prob = [Values(high=0.0)] if self.attrs["log_prob"] else []
        return (super().values(inputs) or [Values()]) + log_prob
