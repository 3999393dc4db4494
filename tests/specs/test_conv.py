from __future__ import annotations

import numpy as np
import torch

from fuzzer.generate import GenOptions, generate
from fuzzer.values import evaluate, random_values


def test_every_max_pool_window_holds_a_real_element() -> None:
    """Padding is -inf to MaxPool: a window of padding alone (dilated taps straddling the data) gives -inf."""
    options = GenOptions(max_nodes=1, ops=("MaxPool",), dtypes=("float32",), reuse_probability=0.0)
    for seed in range(200):
        graph = generate(seed, options)
        output = evaluate(graph, random_values(graph, np.random.default_rng(seed)))[graph.outputs[0]]
        assert torch.isfinite(output).all(), graph.text()
