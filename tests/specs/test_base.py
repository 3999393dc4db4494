"""What the generator may bind where: declared output values against the needs of readers."""

from __future__ import annotations

import math

import pytest

from specs import REGISTRY
from specs.values import ZERO, Need, Values, constant

LOG = Need(0.1)
ACOSH = Need(1.05)
UNIT = Need(-0.95, 0.95)
DIVISOR = Need(nonzero=True)


@pytest.mark.parametrize(
    ("values", "need", "meets"),
    [
        (Values(), LOG, True),  # a fresh input can be moved anywhere
        (Values(0, 1), LOG, True),  # Sigmoid into Log
        (Values(-1, 1), ACOSH, False),  # Cos into Acosh
        (Values(high=0), LOG, False),  # LogSoftmax into Log
        (Values(0, 1, ZERO), DIVISOR, False),  # Hardmax as a divisor
        (Values(0, 1, ZERO), UNIT, True),  # zeros are fine inside (-1, 1)
        (Values(centered=True, spread=1), Need(0.05), False),  # MeanVarianceNormalization into Sqrt
        (Values(centered=True, spread=1), UNIT, False),  # ... or into Atanh
        (Values(centered=True, spread=1), DIVISOR, True),
        (Values(fixed=True), DIVISOR, False),  # Range: no input value moves it
        (Values(-math.inf, math.inf), DIVISOR, True),
    ],
)
def test_values_meet_a_need_only_where_the_search_can_get_there(values: Values, need: Need, meets: bool) -> None:
    assert values.meets(need) is meets


def test_a_tensor_read_under_one_need_keeps_it_for_later_readers() -> None:
    leaf = Values().within(ACOSH)
    assert leaf.meets(LOG) and not leaf.meets(UNIT)


def test_union_keeps_forced_values_and_widens_bounds() -> None:
    padded = Values(0.5, 2).union(constant(0))
    assert padded == Values(0, 2, ZERO)
    assert not padded.meets(LOG)
    filled = Values(1, 2).union(constant(-1.5))
    assert filled == Values(-1.5, 2, frozenset({-1.5}))
    assert not Values().union(constant(-1.5)).meets(LOG), "the fill is there whatever the search does"


def test_whole_numbers_cannot_serve_a_need_that_only_zero_fits() -> None:
    sign = Values(-1, 1, integral=True)  # Sign, Round or a cast to int
    assert not sign.meets(UNIT)
    assert sign.meets(DIVISOR) and Values(integral=True, steered=True).meets(ACOSH)


def test_whole_numbers_and_zeros_cannot_serve_floor_or_ceil() -> None:
    floor = REGISTRY["Floor"].needs[0]
    assert not Values(-1, 1, integral=True).meets(floor)  # Ceil of a Sign only ever reads integers
    assert not constant(0).meets(floor) and not Values(0, 1, fixed=True).meets(floor)
    assert Values(0, 1).meets(floor) and Values(steered=True).meets(REGISTRY["Ceil"].needs[0])


def test_a_narrow_need_reads_bounded_or_steered_values_only() -> None:
    assert not Values().meets(UNIT)  # a Conv or a sum: every element inside (-0.95, 0.95) is rarely reachable
    assert not Values(0).meets(UNIT)  # ReduceL1
    assert Values(steered=True).meets(UNIT) and Values(-3, 3).meets(UNIT)
    assert Values().meets(LOG) and Values().meets(DIVISOR)  # one-sided needs are left to the search


def test_a_need_beyond_the_unit_interval_reads_steered_values_or_values_bounded_off_it() -> None:
    """Seen, a quarter of the 30-node failures: Acosh of a Softmax's mean, of Atan, of a LayerNorm over
    a leaf: unknown bounds, yet most of such a tensor's elements sit inside [-1, 1]."""
    assert not Values().meets(ACOSH) and not Values(0).meets(ACOSH)
    assert Values(steered=True).meets(ACOSH), "Acosh of a leaf, or of Exp of one"
    assert Values(1).meets(ACOSH), "Cosh of anything: above 1 but where its input is 0"
    assert not Values().meets(Need(high=-1.05)) and Values(high=-1).meets(Need(high=-1.05))


def test_values_piled_at_a_bound_serve_a_reader_that_excludes_it_only_where_steered() -> None:
    """Seen: Mod by Reshape(Relu(Conv + b)), Log(Cast(GreaterOrEqual)): NaN unless every element moved off."""
    relu_of_conv = Values(0, piled=ZERO)
    assert not relu_of_conv.meets(DIVISOR) and not relu_of_conv.meets(LOG)
    assert relu_of_conv.meets(Need(-1)), "zeros are fine where the reader takes them"
    assert Values(0, piled=ZERO, steered=True).meets(LOG), "Relu of a leaf: the search moves each element"
    assert Values(piled=ZERO).union(Values()).piled == ZERO and not Values(piled=ZERO).join(Values()).piled


def test_rounding_keeps_its_input_within_whole_bounds() -> None:
    log_softmax = Values(high=0)
    rounded = REGISTRY["Round"]({}).output_values([log_softmax], 1)[0]
    assert rounded.high == 0 and rounded.integral and not rounded.meets(LOG)
