"""Corners of the dim-rearranging specs: Flatten's axis at both ends of its range."""

from __future__ import annotations

import numpy as np
import pytest

from tests.specs.single_node import agreed_outputs


@pytest.mark.parametrize(("axis", "onnx_axis", "rows"), [(0, 0, 1), (0, -3, 1), (2, -1, 6), (3, 3, 24)])
def test_flatten_axis_from_zero_to_rank(axis: int, onnx_axis: int, rows: int) -> None:
    data = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    (out,) = agreed_outputs("Flatten", {"axis": axis, "onnx_axis": onnx_axis}, data)
    np.testing.assert_array_equal(out, data.reshape(rows, -1))


def test_flatten_of_a_scalar_is_one_by_one() -> None:
    (out,) = agreed_outputs("Flatten", {"axis": 0, "onnx_axis": 0}, np.array(2.5, dtype=np.float32))
    assert out.shape == (1, 1)
