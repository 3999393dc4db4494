"""One property suite for every optimization pattern, as for specs: it splices, stays valid, lowerings agree."""

from __future__ import annotations

import pytest
from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.generate.validate import check_onnx, check_torch
from fuzzer.inputs.search import search_values
from fuzzer.judge.compare import all_finite, compare_outputs
from specs.interpret import evaluate
from specs.lowering import to_onnx
from specs.patterns import PATTERNS, occurrences, pattern
from tests.specs.test_specs import outside_domain, run_ort_noopt

SEEDS = 12


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_splices_valid_and_its_lowerings_agree(name: str) -> None:
    template = PATTERNS[name]
    size = template.size
    options = GenOptions(max_nodes=size, min_nodes=size, ops=template.ops, patterns="only")
    compared = spliced = 0
    for seed in range(SEEDS):
        graph = generate(seed, options, pattern_weight=lambda drawn: float(drawn == name))
        if name not in occurrences(graph):
            continue
        spliced += 1
        result = search_values(graph, seed)
        model = to_onnx(graph, {n: result.values[n] for n in graph.weights})
        assert check_onnx(graph, model) == [], graph.text()
        tensors = evaluate(graph, result.values)
        assert check_torch(graph, tensors) == [], graph.text()
        expected = {n: tensors[n].numpy() for n in graph.outputs}
        if not result.finite or not all_finite(expected) or outside_domain(graph, tensors):
            continue
        try:
            inputs = {n: result.values[n] for n in graph.inputs}
            actual = run_ort_noopt(model.SerializeToString(), inputs, graph.outputs)
        except OrtNotImplemented:
            continue  # no kernel for these dtypes (float16 Conv)
        assert compare_outputs(expected, actual) is None, graph.text()
        compared += 1
    assert spliced >= SEEDS // 3, f"{name} was spliced in only {spliced} of {SEEDS} graphs"
    assert compared > 0, f"no instance of {name} could be compared"


def test_pinned_attributes_hold_in_every_splice() -> None:
    for seed in range(SEEDS):
        graph = generate(seed, GenOptions(max_nodes=5, min_nodes=5, ops=PATTERNS["attention"].ops, patterns="only"))
        softmaxes = [node for node in graph.nodes if node.op == "Softmax"]
        assert all(node.attrs["onnx_axis"] == -1 for node in softmaxes), graph.text()


def test_matcher_needs_edges_shared_names_and_pinned_attributes() -> None:
    types = {name: TensorType((2, 3), "float32") for name in ("x", "y", "s", "m", "d")}
    silu = Graph(["x", "y"], [], [Node("Sigmoid", ["x"], ["s"]), Node("Mul", ["x", "s"], ["m"])], ["m"], types)
    assert occurrences(silu)["silu"] == 1
    other_input = Graph(["x", "y"], [], [Node("Sigmoid", ["x"], ["s"]), Node("Mul", ["y", "s"], ["m"])], ["m"], types)
    assert "silu" not in occurrences(other_input)  # Mul must read the tensor Sigmoid read
    softmax = [Node("MatMul", ["x", "y"], ["m"]), Node("Softmax", ["m"], ["d"], {"axis": 0, "onnx_axis": 0})]
    assert "matmul-softmax" not in occurrences(Graph(["x", "y"], [], softmax, ["d"], types))


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        (("Relu(@)",), "names no earlier step"),
        (("Relu(x)", "NoSuchOp(@)"), "no spec NoSuchOp"),
        (("Relu(x:q)",), "bad operand"),
    ],
)
def test_a_malformed_pattern_is_refused(steps: tuple[str, ...], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        pattern("malformed", "test", *steps)
    assert "malformed" not in PATTERNS


def test_there_are_at_least_forty_patterns_each_naming_its_source() -> None:
    assert len(PATTERNS) >= 40
    assert all(p.source and len(p.steps) >= 2 for p in PATTERNS.values())
