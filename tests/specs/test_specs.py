"""One property suite for every spec: ONNX validity, shapes from ONNX and torch, and agreement."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch
from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

from fuzzer.generate import GenOptions, generate
from fuzzer.ir import Graph
from fuzzer.materialize import spec_of, to_onnx
from fuzzer.validate import check_onnx, check_torch
from fuzzer.values import evaluate, sample_values
from oracles.compare import all_finite, compare_outputs
from specs import REGISTRY
from specs.base import Values

SEEDS_PER_DTYPE_SET = 4


def run_ort_noopt(model_bytes: bytes, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return dict(zip(outputs, session.run(outputs, inputs)))


def outside_domain(graph: Graph, tensors: dict[str, torch.Tensor]) -> bool:
    """Whether any node's inputs violate its spec's numeric domain (near-ties, tiny variances, ...)."""
    for node in graph.nodes:
        loss = spec_of(node).domain_loss(*(tensors[name] for name in node.inputs))
        if loss is not None and float(loss) > 0:
            return True
    return False


def outside_declared_values(graph: Graph, tensors: dict[str, torch.Tensor]) -> list[str]:
    """Outputs holding values beyond the bounds their spec declares for unknown inputs."""
    wrong = []
    for node in graph.nodes:
        declared = spec_of(node).output_values([Values()] * len(node.inputs), len(node.outputs))
        for name, values in zip(node.outputs, declared):
            held = tensors[name].double()
            held = held[torch.isfinite(held)]
            if held.numel() and (held.min() < values.low - 1e-6 or held.max() > values.high + 1e-6):
                wrong.append(f"{name} of {node.op} in [{held.min():g}, {held.max():g}], declared {values}")
    return wrong


def dtype_sets(name: str) -> list[tuple[str, ...]]:
    """Each distinct set of dtypes the spec declares, so every declared dtype gets instances."""
    return sorted({tuple(sorted(set(combo))) for combo in REGISTRY[name].dtypes})


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_spec_lowerings_agree_with_onnx_and_torch(name: str) -> None:
    compared = 0
    for dtypes in dtype_sets(name):
        options = GenOptions(max_nodes=1, ops=(name,), dtypes=dtypes, reuse_probability=0.0)
        for seed in range(SEEDS_PER_DTYPE_SET):
            graph = generate(seed, options)
            assert [node.op for node in graph.nodes] == [name]
            values = sample_values(graph, seed)
            model = to_onnx(graph, {n: values.values[n] for n in graph.weights})
            assert check_onnx(graph, model) == [], graph.text()
            tensors = evaluate(graph, values.values)
            assert check_torch(graph, tensors) == [], graph.text()
            assert outside_declared_values(graph, tensors) == [], graph.text()
            inputs = {n: values.values[n] for n in graph.inputs}
            try:
                actual = run_ort_noopt(model.SerializeToString(), inputs, graph.outputs)
            except OrtNotImplemented:
                continue  # no kernel for this instance's dtypes (an attr may pick the output dtype)
            expected = {n: tensors[n].numpy() for n in graph.outputs}
            if not all_finite(expected) or outside_domain(graph, tensors):
                continue  # comparisons mean nothing there; the input search keeps campaigns out
            assert compare_outputs(expected, actual) is None, graph.text()
            compared += 1
    assert compared > 0, f"no instance of {name} could be compared with ONNX Runtime"
