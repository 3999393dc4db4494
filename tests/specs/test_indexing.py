"""Corners of the index-driven specs: negative indices, the duplicate rule of scatters, batch dims."""

from __future__ import annotations

import numpy as np
import pytest

from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import sample_values
from specs import REGISTRY
from specs.values import Values, constant
from tests.specs.single_node import agreed_outputs

SEEDS = range(40)
FOLDS = {"none": lambda old, new: new, "add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def single_nodes(op: str, dtypes: tuple[str, ...]) -> list[tuple[Graph, Node, dict[str, np.ndarray]]]:
    """Generated one-node graphs of `op` with the values the fuzzer would feed them."""
    options = GenOptions(max_nodes=1, ops=(op,), dtypes=dtypes, reuse_probability=0.0)
    cases = []
    for seed in SEEDS:
        graph = generate(seed, options)
        cases.append((graph, graph.nodes[0], sample_values(graph, seed).values))
    return cases


def addressed_sizes(graph: Graph, node: Node) -> list[int]:
    """Sizes of the axes an index tensor's values address, read from ONNX's definition of each op."""
    data = graph.types[node.inputs[0]].shape
    if node.op in ("Gather", "GatherElements", "ScatterElements"):
        return [data[node.attrs["axis"]]]
    if node.op == "GatherND":
        batch = node.attrs["batch_dims"]
        return list(data[batch : batch + node.attrs["tuple_length"]])
    if node.op == "ScatterND":
        return list(data[: node.attrs["tuple_length"]])
    return [node.attrs["depth"]]  # OneHot


INDEX_INPUT = {"Gather": 1, "GatherElements": 1, "GatherND": 1, "ScatterElements": 1, "ScatterND": 1, "OneHot": 0}


@pytest.mark.parametrize("op", sorted(INDEX_INPUT))
def test_index_values_stay_in_onnx_range_and_include_negatives(op: str) -> None:
    negatives = 0
    for graph, node, values in single_nodes(op, ("float32", "int32", "int64")):
        indices = values[node.inputs[INDEX_INPUT[op]]]
        sizes = np.array(addressed_sizes(graph, node))
        tuples = indices.reshape(-1, len(sizes)) if op in ("GatherND", "ScatterND") else indices.reshape(-1, 1)
        assert ((tuples >= -sizes) & (tuples < sizes)).all(), graph.text()
        negatives += int((indices < 0).sum())
    assert negatives > 0, "negative indices are legal in ONNX and must be exercised"


def test_gather_wraps_negative_indices_like_numpy_take() -> None:
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    indices = np.array([[-1, -4, 0], [3, -2, -3]], dtype=np.int64)
    (out,) = agreed_outputs("Gather", {"axis": 1, "onnx_axis": -1}, data, indices)
    np.testing.assert_array_equal(out, np.take(data, indices, axis=1))


def test_gather_with_scalar_index_drops_the_axis() -> None:
    data = np.arange(6, dtype=np.int32)
    (out,) = agreed_outputs("Gather", {"axis": 0, "onnx_axis": 0}, data, np.array(-2, dtype=np.int32))
    assert out.shape == () and out == 4


def scatter_elements_reference(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, axis: int, reduction: str
) -> np.ndarray:
    """ONNX's loop, one update at a time."""
    out = data.copy()
    for position in np.ndindex(indices.shape):
        target = list(position)
        target[axis] = indices[position]
        out[tuple(target)] = FOLDS[reduction](out[tuple(target)], updates[position])
    return out


@pytest.mark.parametrize("reduction", ["add", "mul", "max", "min"])
def test_scatter_elements_reductions_fold_duplicate_indices(reduction: str) -> None:
    data = np.arange(1, 13, dtype=np.int64).reshape(3, 4)
    indices = np.array([[0, -1, 2, 2], [0, 1, 2, -1]], dtype=np.int64)  # column 3 hits row 2 twice
    updates = np.array([[5, -2, 3, 4], [-1, 2, 6, 3]], dtype=np.int64)
    attrs = {"axis": 0, "onnx_axis": -2, "reduction": reduction}
    (out,) = agreed_outputs("ScatterElements", attrs, data, indices, updates)
    np.testing.assert_array_equal(out, scatter_elements_reference(data, indices, updates, 0, reduction))


def test_scatter_elements_without_reduction_hits_each_target_once() -> None:
    seen_none = 0
    for graph, node, values in single_nodes("ScatterElements", ("float32", "int64")):
        if node.attrs["reduction"] != "none":
            continue
        seen_none += 1
        axis = node.attrs["axis"]
        indices = values[node.inputs[1]]
        size = graph.types[node.inputs[0]].shape[axis]
        targets = np.indices(indices.shape)
        targets[axis] = indices % size
        flat = targets.reshape(len(indices.shape), -1).T
        assert len({tuple(t) for t in flat}) == len(flat), graph.text()
    assert seen_none > 0


def test_scatter_nd_without_reduction_writes_a_single_tuple() -> None:
    seen_none = 0
    for graph, node, _ in single_nodes("ScatterND", ("float32", "int64")):
        if node.attrs["reduction"] == "none":
            seen_none += 1
            assert np.prod(graph.types[node.inputs[1]].shape[:-1]) == 1, graph.text()
    assert seen_none > 0


def test_scatter_nd_add_accumulates_duplicate_tuples_into_slices() -> None:
    data = np.zeros((3, 2), dtype=np.float32)
    indices = np.array([[1], [-2], [0]], dtype=np.int64)  # row 1 twice
    updates = np.array([[1.0, 2.0], [10.0, 20.0], [0.5, 0.25]], dtype=np.float32)
    (out,) = agreed_outputs("ScatterND", {"tuple_length": 1, "reduction": "add"}, data, indices, updates)
    np.testing.assert_array_equal(out, [[0.5, 0.25], [11.0, 22.0], [0.0, 0.0]])


def test_gather_nd_batch_dims_with_negative_tuples() -> None:
    data = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    indices = np.array([[[-1, 0], [0, -4]], [[2, 3], [-3, -1]]], dtype=np.int64)
    (out,) = agreed_outputs("GatherND", {"batch_dims": 1, "tuple_length": 2}, data, indices)
    expected = [[data[b, i, j] for i, j in indices[b]] for b in range(2)]
    np.testing.assert_array_equal(out, expected)


ONE_HOT_AXES: list[tuple[int, int]] = [(0, 0), (1, -2), (2, 2), (2, -1)]


@pytest.mark.parametrize(("axis", "onnx_axis"), ONE_HOT_AXES)
def test_one_hot_negative_indices_on_every_axis(axis: int, onnx_axis: int) -> None:
    indices = np.array([[-3, 0], [2, -1]], dtype=np.int64)
    attrs = {
        "depth": 3,
        "depth_as_vector": axis == 1,
        "depth_dtype": "float32" if axis == 2 else "int64",
        "axis": axis,
        "onnx_axis": onnx_axis,
        "values": [-1.5, 2],
        "dtype": "float32",
    }
    (out,) = agreed_outputs("OneHot", attrs, indices)
    hot = np.moveaxis(np.eye(3, dtype=bool)[indices % 3], -1, axis)
    np.testing.assert_array_equal(out, np.where(hot, 2.0, -1.5))


@pytest.mark.parametrize("batch_axis", [0, 1])
def test_reverse_sequence_reverses_each_prefix(batch_axis: int) -> None:
    data = np.arange(16, dtype=np.float32).reshape(4, 4)
    lengths = np.array([4, 3, 2, 1], dtype=np.int64)
    (out,) = agreed_outputs("ReverseSequence", {"batch_axis": batch_axis, "time_axis": 1 - batch_axis}, data, lengths)
    rows = data if batch_axis == 0 else data.T
    expected = np.stack([np.concatenate([row[:n][::-1], row[n:]]) for row, n in zip(rows, lengths)])
    np.testing.assert_array_equal(out, expected if batch_axis == 0 else expected.T)


def test_reverse_sequence_lengths_stay_within_the_time_axis() -> None:
    for graph, node, values in single_nodes("ReverseSequence", ("float32", "int64")):
        steps = graph.types[node.inputs[0]].shape[node.attrs["time_axis"]]
        lengths = values[node.inputs[1]]
        assert ((lengths >= 1) & (lengths <= steps)).all(), graph.text()


def test_gather_left_without_axis_by_the_trigger_search_bounds_no_index() -> None:
    """The trigger search tries each attribute left out (None); the index bound then is unknown, not a crash."""
    assert REGISTRY["Gather"]({"axis": None}).index_bounds(1, [TensorType((4, 3), "float32")]) is None


def test_a_scatters_reader_needs_its_data_to_meet_its_need_too() -> None:
    """Seen: Sqrt(ReduceMax(ScatterND(Elu(ReduceMin(Sinh(log-probabilities))), i, x, reduction=mul))): the
    elements no index addresses keep data's values, all at most 0."""
    read = 0
    for seed in range(80):
        graph = generate(
            seed, GenOptions(max_nodes=5, ops=("LogSoftmax", "ScatterND", "Sqrt"), dtypes=("float32", "int64"))
        )
        made_by = {name: node for node in graph.nodes for name in node.outputs}
        for node in graph.nodes:
            scatter = made_by.get(node.inputs[0])
            if node.op == "Sqrt" and scatter is not None and scatter.op == "ScatterND":
                read += 1
                assert getattr(made_by.get(scatter.inputs[0]), "op", None) != "LogSoftmax", graph.text()
    assert read > 5


@pytest.mark.parametrize("op", ["ScatterElements", "ScatterND"])
def test_a_scatter_keeps_what_its_data_and_updates_hold(op: str) -> None:
    # Regression: scatters declared nothing, so Log(ScatterND(CenterCropPad(x), ...)) read the
    # padding zeros that the updates did not overwrite.
    padded = Values(0.5, 2.0).union(constant(0))
    index = Values()
    for reduction in ("none", "max", "add", "mul"):
        (held,) = REGISTRY[op]({"axis": 0, "tuple_length": 1, "reduction": reduction}).values(
            [padded, index, Values(1.0, 4.0)]
        )
        assert held.zeros and not held.meets(REGISTRY["Log"].needs[0]), reduction
    (bounded,) = REGISTRY[op]({"axis": 0, "tuple_length": 1, "reduction": "min"}).values(
        [Values(high=0.0), index, Values(-2.0, -1.0)]
    )
    assert bounded.high == 0.0, "a min or a plain write keeps within both operands' bounds"
