"""Corners of Split, Trilu and Pad where ONNX and torch could part ways."""

from __future__ import annotations

import numpy as np
import pytest

from fuzzer.generate.generator import GenOptions, generate
from specs import spec
from specs.base import AbsTensor
from tests.specs.single_node import agreed_outputs

SEEDS = range(40)


def test_split_num_outputs_leaves_the_remainder_to_the_last_chunk() -> None:
    data = np.arange(14, dtype=np.int32).reshape(2, 7)
    attrs = {"axis": 1, "onnx_axis": -1, "count": 3, "sizes": None}
    outputs = agreed_outputs("Split", attrs, data)
    assert [o.shape[1] for o in outputs] == [3, 3, 1]  # torch.tensor_split would give 3, 2, 2


def test_split_rejects_counts_whose_last_onnx_chunk_would_be_empty() -> None:
    split = spec("Split")({"axis": 0, "onnx_axis": 0, "count": 4, "sizes": None})
    assert False in split.requires([AbsTensor([5], "float32")])  # ONNX's rule: 2, 2, 2, -1


def test_split_sizes_input() -> None:
    data = np.arange(12, dtype=np.float16).reshape(6, 2)
    outputs = agreed_outputs("Split", {"axis": 0, "onnx_axis": 0, "count": 3, "sizes": [1, 4, 1]}, data)
    assert [o.shape[0] for o in outputs] == [1, 4, 1]


@pytest.mark.parametrize("k", [None, -9, -1, 2, 9])
@pytest.mark.parametrize("upper", [0, 1])
def test_trilu_diagonals_inside_and_outside_the_matrix(k: int | None, upper: int) -> None:
    data = np.arange(1, 25, dtype=np.int64).reshape(2, 3, 4)
    (out,) = agreed_outputs("Trilu", {"upper": upper, "k": k}, data)
    triangle = np.triu if upper else np.tril
    np.testing.assert_array_equal(out, triangle(data, k or 0))


def pad_attrs(mode: str, axes: list[int], begins: list[int], ends: list[int], **extra: object) -> dict[str, object]:
    """Concrete Pad attrs; `extra` overrides onnx_axes or value."""
    crops = [p < 0 for p in begins + ends]
    attrs = {"mode": mode, "axes": axes, "begins": begins, "ends": ends, "crops": crops}
    return attrs | {"onnx_axes": None, "value": None} | extra


@pytest.mark.parametrize(("mode", "numpy_mode"), [("reflect", "reflect"), ("edge", "edge")])
def test_pad_reflect_and_edge_on_the_last_three_axes_of_rank_four(mode: str, numpy_mode: str) -> None:
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    attrs = pad_attrs(mode, [1, 2, 3], [2, 0, 1], [1, 3, 4], onnx_axes=[-3, 2, -1])
    (out,) = agreed_outputs("Pad", attrs, data)
    np.testing.assert_array_equal(out, np.pad(data, [(0, 0), (2, 1), (0, 3), (1, 4)], mode=numpy_mode))


def test_pad_edge_on_bool_and_rank_one() -> None:
    (out,) = agreed_outputs("Pad", pad_attrs("edge", [0], [2], [1]), np.array([True, False, False]))
    np.testing.assert_array_equal(out, [True, True, True, False, False, False])


def test_pad_negative_pads_crop_in_constant_mode() -> None:
    data = np.arange(20, dtype=np.int8).reshape(4, 5)
    (out,) = agreed_outputs("Pad", pad_attrs("constant", [0, 1], [-1, 2], [-2, -3], value=7), data)
    expected = np.pad(data[1:2, :2], [(0, 0), (2, 0)], constant_values=7)
    np.testing.assert_array_equal(out, expected)


def test_pad_requires_reflect_pads_below_the_dim_and_crops_to_keep_an_element() -> None:
    pad = spec("Pad")
    assert False in pad(pad_attrs("reflect", [0], [3], [0])).requires([AbsTensor([3], "float32")])
    assert False in pad(pad_attrs("constant", [0], [-2], [-1])).requires([AbsTensor([3], "float32")])
    assert False not in pad(pad_attrs("reflect", [0], [2], [2])).requires([AbsTensor([3], "float32")])


def test_generated_pads_respect_torchs_reflect_and_edge_limits() -> None:
    modes = set()
    for seed in SEEDS:
        graph = generate(seed, GenOptions(max_nodes=1, ops=("Pad",), dtypes=("float32",), reuse_probability=0.0))
        node = graph.nodes[0]
        shape = graph.types[node.inputs[0]].shape
        modes.add(node.attrs["mode"])
        if node.attrs["mode"] != "constant":
            assert min(node.attrs["axes"]) >= len(shape) - 3, graph.text()
        if node.attrs["mode"] == "reflect":
            for axis, begin, end in zip(node.attrs["axes"], node.attrs["begins"], node.attrs["ends"]):
                assert 0 <= begin < shape[axis] and 0 <= end < shape[axis], graph.text()
    assert modes == {"constant", "reflect", "edge"}


def test_center_crop_pad_rounds_crops_down_and_puts_the_odd_pad_at_the_end() -> None:
    data = np.arange(20, dtype=np.float32).reshape(4, 5)
    attrs = {"axes": [0, 1], "onnx_axes": [-2, 1], "sizes": [1, 8]}
    (out,) = agreed_outputs("CenterCropPad", attrs, data)
    expected = np.pad(data[1:2], [(0, 0), (1, 2)])  # crop 4 -> 1 starts at row 1; pad 5 -> 8 is 1 + 2
    np.testing.assert_array_equal(out, expected)


def test_center_crop_pad_without_axes_covers_every_axis() -> None:
    data = np.arange(6, dtype=np.int64).reshape(2, 3)
    (out,) = agreed_outputs("CenterCropPad", {"axes": [0, 1], "onnx_axes": None, "sizes": [3, 2]}, data)
    np.testing.assert_array_equal(out, [[0, 1], [3, 4], [0, 0]])
