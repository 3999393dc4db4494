"""Corners of the ops that make values from attributes and shapes: Range, Shape, EyeLike, ConstantOfShape,
and the patterns' Scalar constants."""

from __future__ import annotations

import numpy as np
import pytest

from specs import REGISTRY
from specs.constant import RANGE_DTYPES
from specs.elementwise import NONZERO
from specs.values import LEAF, Need, exactly
from tests.specs.single_node import agreed_outputs


@pytest.mark.parametrize("dtype_name", RANGE_DTYPES)
@pytest.mark.parametrize(("start", "delta", "pullback"), [(1, 2, 1), (-3, -1, 0), (2, -3, -2)])
def test_range_length_is_the_solved_count_in_every_dtype(
    dtype_name: str, start: int, delta: int, pullback: float
) -> None:
    if dtype_name.startswith("float"):
        start, delta, pullback = start + 0.5, delta / 2, delta / 4
    attrs = {"dtype": dtype_name, "start": start, "delta": delta, "count": 5, "pullback": pullback}
    (out,) = agreed_outputs("Range", attrs)
    np.testing.assert_array_equal(out, start + delta * np.arange(5))


@pytest.mark.parametrize(("start", "end"), [(None, None), (-2, None), (None, -1), (-5, 9), (1, 2)])
def test_shape_start_end_clamp_like_python_slices(start: int | None, end: int | None) -> None:
    data = np.zeros((2, 3, 4), dtype=np.bool_)
    (out,) = agreed_outputs("Shape", {"start": start, "end": end}, data)
    np.testing.assert_array_equal(out, [2, 3, 4][start:end])


@pytest.mark.parametrize("out_dtype", [None, "float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("k", [0, 2, -1, 12])
def test_eye_like_diagonals_and_output_dtypes(out_dtype: str | None, k: int) -> None:
    data = np.zeros((3, 5), dtype=np.float64)
    (out,) = agreed_outputs("EyeLike", {"k": k, "dtype": out_dtype}, data)
    np.testing.assert_array_equal(out, np.eye(3, 5, k))
    assert out.dtype == np.dtype(out_dtype or "float64")


@pytest.mark.parametrize("shape", [(), (2, 1, 3)])
def test_constant_of_shape_follows_the_input_shape_and_dtype(shape: tuple[int, ...]) -> None:
    data = np.ones(shape, dtype=np.uint8)
    (out,) = agreed_outputs("ConstantOfShape", {"value": 7}, data)
    np.testing.assert_array_equal(out, np.full(shape, 7, dtype=np.uint8))


@pytest.mark.parametrize("dtype_name", ["float16", "float32", "float64"])
def test_a_scalar_is_its_value_rounded_once_to_its_dtype_in_both_lowerings(dtype_name: str) -> None:
    (out,) = agreed_outputs("Scalar", {"value": 1.4142135623730951, "dtype": dtype_name})
    assert out.shape == () and out.dtype == np.dtype(dtype_name)
    assert out == np.asarray(1.4142135623730951, dtype_name)


def test_a_known_constant_meets_a_need_exactly_or_never() -> None:
    assert exactly(2.0).meets(Need(low=0.1)) and not exactly(-1.0).meets(Need(low=0.1))
    assert exactly(0.5).meets(Need(nonzero=True)) and not exactly(0.0).meets(Need(nonzero=True))
    assert exactly(1.5).meets(Need(fractional=True)) and not exactly(1.0).meets(Need(fractional=True))
    assert not exactly(0.95).meets(Need(low=-0.95, high=0.95)), "a bound is no margin"


@pytest.mark.parametrize(
    ("value", "divisor_ok", "log_ok"),
    [(0.0, False, False), (-1.5, True, False), (0.05, True, False), (2.0, True, True)],
)
def test_constant_of_shape_holds_its_value_whatever_its_input(value: float, divisor_ok: bool, log_ok: bool) -> None:
    """Declared as unknown, its zeros became Mod divisors (through a Min) no input value could move."""
    (held,) = REGISTRY["ConstantOfShape"]({"value": value}).output_values([LEAF], 1)
    assert (held.low, held.high, held.fixed) == (value, value, True)
    assert held.meets(NONZERO) == divisor_ok
    assert held.meets(REGISTRY["Log"].needs[0]) == log_ok
