"""Corners of the class losses: ignored targets, the mean's divisor, SoftmaxCrossEntropyLoss's log_prob."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from fuzzer.core.ir import TensorType
from specs import REGISTRY, AbsTensor
from specs.base import Symbols
from specs.values import Values
from tests.specs.single_node import run_both

SCORES = np.random.default_rng(0).uniform(-3, 3, (3, 4, 2)).astype(np.float32)
TARGETS = np.array([[0, -1], [2, 3], [-1, 1]], np.int64)
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5], np.float32)


@pytest.mark.parametrize("op", ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
@pytest.mark.parametrize(("reduction", "weighted"), [("none", False), ("sum", False), ("mean", True)])
def test_targets_equal_to_ignore_index_minus_one_are_skipped_alike(op: str, reduction: str, weighted: bool) -> None:
    attrs = {"reduction": reduction, "ignore_index": -1, "log_prob": 1}
    eager, ort = run_both(op, attrs, SCORES, TARGETS, *([WEIGHT] if weighted else []))
    for mine, theirs in zip(eager, ort):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert REGISTRY[op](attrs).index_bounds(1, [TensorType(SCORES.shape, "float32")]) == (-1, 3)


@pytest.mark.parametrize("op", ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
def test_an_unweighted_mean_never_draws_an_ignore_index(op: str) -> None:
    rng = random.Random(0)
    unweighted = [AbsTensor([3, 4], "float32"), AbsTensor([3], "int64")]
    draws = [REGISTRY[op].sample_attrs(rng, unweighted, Symbols("n")) for _ in range(300)]
    means = [attrs for attrs in draws if attrs["reduction"] == "mean"]
    assert means and all(attrs["ignore_index"] is None for attrs in means)
    assert any(attrs["ignore_index"] is not None for attrs in draws)


def test_a_mean_whose_kept_weights_cancel_is_out_of_domain() -> None:
    spec = REGISTRY["NegativeLogLikelihoodLoss"]({"reduction": "mean", "ignore_index": 0})
    scores, target = torch.zeros(3, 3), torch.tensor([0, 1, 2])
    assert spec.domain_loss(scores, target, torch.tensor([1.0, 1.0, 1.0])).item() == 0.0
    weight = torch.tensor([5.0, 1.0, -0.98], requires_grad=True)  # the ignored class 0 does not count
    loss = spec.domain_loss(scores, target, weight)
    loss.backward()
    assert loss.item() > 0 and weight.grad[0] == 0 and weight.grad[1] != 0


def test_an_unweighted_loss_declares_its_bounds_from_the_scores() -> None:
    # Regression: losses declared nothing, so Acosh(NegativeLogLikelihoodLoss(Cos(x), t)) was drawn,
    # whose loss lies in [-1, 1] whatever the search does (a 30-node search failure).
    acosh, log = REGISTRY["Acosh"].needs[0], REGISTRY["Log"].needs[0]
    cosines = Values(-1.0, 1.0)
    for reduction in ("none", "mean"):
        (nll,) = REGISTRY["NegativeLogLikelihoodLoss"]({"reduction": reduction, "ignore_index": None}).values([cosines])
        assert (nll.low, nll.high) == (-1.0, 1.0) and not nll.meets(acosh)
    (summed,) = REGISTRY["NegativeLogLikelihoodLoss"]({"reduction": "sum", "ignore_index": 0}).values([Values(0.5)])
    assert summed.high == 0.0 and not summed.meets(log)
    sce = REGISTRY["SoftmaxCrossEntropyLoss"]({"reduction": "mean", "ignore_index": None, "log_prob": 1})
    loss, log_prob = sce.values([Values()])
    assert loss.low == 0.0 and not log_prob.meets(log)
    assert not REGISTRY["NegativeLogLikelihoodLoss"]({"reduction": "mean", "ignore_index": None}).values(
        [cosines, Values(), Values()]
    ), "weights of either sign say nothing"
