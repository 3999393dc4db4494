"""Corners of the one-axis specs: ties in ArgMax/ArgMin, TopK and Hardmax; CumSum's modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fuzzer.generate.generator import GenOptions, generate
from specs import REGISTRY
from tests.specs.single_node import run_both


@pytest.mark.parametrize("largest", [0, 1])
def test_topk_breaks_integer_ties_by_the_lower_index_like_onnx(largest: int) -> None:
    x = np.array([[2, 7, 2, 7, 2, 7]], np.int32)
    attrs = {"axis": 1, "onnx_axis": -1, "k": 4, "largest": largest}
    (values, indices), (ort_values, ort_indices) = run_both("TopK", attrs, x)
    assert indices.tolist() == ort_indices.tolist() == ([[1, 3, 5, 0]] if largest else [[0, 2, 4, 1]])
    assert values.tolist() == ort_values.tolist()


def test_topk_float_neighbours_closer_than_the_margin_are_out_of_domain() -> None:
    spec = REGISTRY["TopK"]({"axis": 0, "onnx_axis": 0, "k": 2, "largest": 1})
    assert spec.domain_loss(torch.tensor([3.0, 2.0, 1.0, 0.99])).item() == 0.0  # the near tie is below k+1
    x = torch.tensor([3.0, 2.0, 1.99, 0.0], requires_grad=True)
    loss = spec.domain_loss(x)
    loss.backward()
    assert loss.item() > 0 and x.grad[1] != 0


@pytest.mark.parametrize(
    ("exclusive", "reverse", "want"), [(0, 0, [1, 3, 6]), (1, 0, [0, 1, 3]), (0, 1, [6, 5, 3]), (1, 1, [5, 3, 0])]
)
@pytest.mark.parametrize("axis_dtype", ["int32", "int64"])
def test_cumsum_modes_match_the_onnx_examples(exclusive: int, reverse: int, want: list[int], axis_dtype: str) -> None:
    attrs = {"axis": 0, "onnx_axis": -1, "exclusive": exclusive, "reverse": reverse, "axis_dtype": axis_dtype}
    (eager,), (ort,) = run_both("CumSum", attrs, np.array([1.0, 2.0, 3.0], np.float32))
    assert eager.tolist() == ort.tolist() == want


def test_hardmax_marks_only_the_first_of_tied_maxima() -> None:
    x = np.array([[1.0, 4.0, 4.0], [5.0, 0.0, 5.0]], np.float32)
    (eager,), (ort,) = run_both("Hardmax", {"axis": 1, "onnx_axis": -1}, x)
    assert eager.tolist() == ort.tolist() == [[0, 1, 0], [1, 0, 0]]
    assert REGISTRY["Hardmax"]({"axis": 1, "onnx_axis": -1}).domain_loss(torch.from_numpy(x)).item() > 0


def test_log_softmax_keeps_the_spread_small_enough_for_exp_then_log() -> None:
    spec = REGISTRY["LogSoftmax"]({"axis": 0, "onnx_axis": 0})
    assert spec.domain_loss(torch.tensor([1.0, -5.0, 3.0])).item() == 0.0
    assert spec.domain_loss(torch.tensor([1.0, -500.0])).item() > 0


@pytest.mark.parametrize(("op", "first", "last"), [("ArgMax", 0, 3), ("ArgMin", 1, 2)])
def test_integer_ties_pick_the_index_select_last_index_asks_for(op: str, first: int, last: int) -> None:
    x = np.array([5, -2, -2, 5], np.int64)
    for select_last, want in ((0, first), (1, last)):
        attrs = {"axis": 0, "onnx_axis": -1, "keepdims": 0, "select_last_index": select_last}
        (eager,), (ort,) = run_both(op, attrs, x)
        assert int(eager) == int(ort) == want


def test_float_near_ties_of_the_extreme_are_out_of_domain() -> None:
    spec = REGISTRY["ArgMin"]({"axis": 1, "onnx_axis": 1, "keepdims": 1, "select_last_index": 0})
    assert float(spec.domain_loss(torch.tensor([[0.0, 1.0, -1.0]]))) == 0.0
    x = torch.tensor([[0.0, -1.0, -1.01]], requires_grad=True)
    loss = spec.domain_loss(x)
    loss.backward()
    assert loss.item() > 0 and x.grad[0, 1] != 0


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax", "ArgMax", "ArgMin", "LpNormalization"])
def test_ops_that_turn_a_one_element_axis_into_a_constant_never_get_one(op: str) -> None:
    for seed in range(30):
        graph = generate(seed, GenOptions(max_nodes=1, ops=(op,), dtypes=("float32",), max_dim=3))
        node = graph.nodes[0]
        assert graph.types[node.inputs[0]].shape[node.attrs["axis"]] >= 2, graph.text()
