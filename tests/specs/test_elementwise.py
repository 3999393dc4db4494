from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch

from fuzzer.core.ir import Graph, Node
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import sample_values
from fuzzer.judge.compare import all_finite, compare_outputs
from specs import REGISTRY
from specs.base import OpSpec
from specs.elementwise import Unary
from specs.interpret import interpret, node_outputs
from specs.lowering import to_onnx
from specs.values import LEAF, Values, constant, exactly
from tests.specs.single_node import run_both
from tests.specs.test_specs import run_ort_noopt

F32, F16, I8, I32, U8 = np.float32, np.float16, np.int8, np.int32, np.uint8

# (op, attrs, dtype, operands inside the domain, operands outside it)
DOMAIN_CASES: list[tuple[str, dict[str, Any], type, tuple[list, ...], tuple[list, ...]]] = [
    ("Acos", {}, F32, ([0.0, 0.9, -0.9],), ([1.0],)),
    ("Asin", {}, F32, ([0.5],), ([-1.2],)),
    ("Atanh", {}, F32, ([-0.5, 0.9],), ([0.99],)),
    ("Acosh", {}, F32, ([1.1, 5.0],), ([1.0],)),
    ("Tan", {}, F32, ([0.0, 1.0, -1.2],), ([math.pi / 2],)),
    ("Cosh", {}, F32, ([3.0, -9.0],), ([12.0],)),
    ("Sinh", {}, F16, ([3.0],), ([6.0],)),
    ("Sign", {}, F32, ([0.0, 1.0, -0.5],), ([1e-3],)),
    ("Sign", {}, I8, ([0, 1],), ([],)),
    ("Abs", {}, I8, ([-127],), ([-128],)),
    ("Add", {}, F16, ([1000.0], [1000.0]), ([10000.0], [10000.0])),
    ("Sub", {}, U8, ([5], [2]), ([1], [2])),
    ("Mul", {}, I8, ([10], [12]), ([20], [10])),
    ("Sum", {}, F32, ([1.0], [2.0], [3.0]), ([3e38], [3e38], [0.0])),
    ("Equal", {}, F32, ([1.0, 2.0], [1.0, 3.0]), ([1.0], [1.01])),
    ("Cast", {"to": "uint8"}, F32, ([0.5, 3.5],), ([-1.5],)),
    ("Cast", {"to": "int32"}, F32, ([2.5],), ([2.01],)),
    ("Cast", {"to": "bool"}, F32, ([0.0, 1.0],), ([1e-3],)),
    ("Cast", {"to": "int8"}, I32, ([100, -100],), ([200],)),
    ("Cast", {"to": "float16"}, F32, ([1000.0],), ([1e5],)),
]


def case_operands(dtype: type, operands: tuple[list, ...]) -> list[torch.Tensor]:
    return [torch.tensor(np.array(values, dtype=dtype)) for values in operands]


@pytest.mark.parametrize(("op", "attrs", "dtype", "inside", "outside"), DOMAIN_CASES)
def test_domain_loss_is_zero_inside_and_positive_outside(
    op: str, attrs: dict[str, Any], dtype: type, inside: tuple[list, ...], outside: tuple[list, ...]
) -> None:
    spec = REGISTRY[op](attrs)
    assert float(spec.domain_loss(*case_operands(dtype, inside))) == 0.0
    if outside[0]:
        assert float(spec.domain_loss(*case_operands(dtype, outside))) > 0.0


def test_castlike_domain_follows_the_target_type() -> None:
    spec = REGISTRY["CastLike"]({})
    like = torch.zeros(1, dtype=torch.uint8)
    assert float(spec.domain_loss(torch.tensor([2.5]), like)) == 0.0
    assert float(spec.domain_loss(torch.tensor([-2.5]), like)) > 0.0


def domain_loss(graph: Graph, leaves: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of every node's domain loss on the current leaf values."""
    losses: list[torch.Tensor] = []

    def collect(index: int, node: Node, spec: OpSpec, args: list[torch.Tensor]) -> list[torch.Tensor]:
        loss = spec.domain_loss(*args)
        if loss is not None:
            losses.append(loss)
        return node_outputs(spec, args)

    interpret(graph, leaves, collect)
    return sum(losses, torch.zeros(()))


def descend_into_domain(graph: Graph, values: dict[str, np.ndarray], steps: int = 400) -> dict[str, np.ndarray]:
    """Signed-gradient steps on the float leaves until the domain loss is zero."""
    leaves = {n: torch.tensor(v, requires_grad=v.dtype.kind == "f") for n, v in values.items()}
    for _ in range(steps):
        loss = domain_loss(graph, leaves)
        if loss.item() == 0.0:
            break
        loss.backward()
        with torch.no_grad():
            for leaf in leaves.values():
                if leaf.grad is not None:
                    leaf -= 0.02 * leaf.grad.sign()
                    leaf.grad = None
    assert domain_loss(graph, leaves).item() == 0.0, graph.text()
    return {n: leaf.detach().numpy() for n, leaf in leaves.items()}


DOMAIN_OPS = [
    "Acos",
    "Acosh",
    "Asin",
    "Atanh",
    "Tan",
    "Cosh",
    "Sinh",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Exp",
    "Softplus",
    "Floor",
    "Round",
    "Div",
    "Mod",
    "Pow",
    "ThresholdedRelu",
    "Shrink",
    "Greater",
]


@pytest.mark.parametrize("op", DOMAIN_OPS)
def test_domain_loss_leads_random_values_to_where_onnx_and_torch_agree(op: str) -> None:
    for seed in range(3):
        graph = generate(seed, GenOptions(max_nodes=1, ops=(op,), dtypes=("float32",), reuse_probability=0.0))
        values = descend_into_domain(graph, sample_values(graph, seed).values)
        model = to_onnx(graph, {n: values[n] for n in graph.weights})
        with torch.no_grad():
            tensors = interpret(graph, {n: torch.from_numpy(v) for n, v in values.items()})
        expected = {n: tensors[n].numpy() for n in graph.outputs}
        actual = run_ort_noopt(model.SerializeToString(), {n: values[n] for n in graph.inputs}, graph.outputs)
        assert all_finite(expected), graph.text()
        assert compare_outputs(expected, actual) is None, graph.text()


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
def test_variadic_ops_take_one_to_four_inputs(op: str) -> None:
    arities = set()
    for seed in range(30):
        graph = generate(seed, GenOptions(max_nodes=2, ops=(op,), dtypes=("float32",)))
        arities.update(len(node.inputs) for node in graph.nodes)
    assert arities == {1, 2, 3, 4}


def test_single_input_max_and_sum_copy_their_input() -> None:
    x = np.array([1.5, -2.0], dtype=F32)
    for op in ("Max", "Sum", "Mean"):
        (eager,), (ort,) = run_both(op, {}, x)
        np.testing.assert_array_equal(eager, x)
        np.testing.assert_array_equal(ort, x)


@pytest.mark.parametrize("detect", [(None, None), (1, 0), (0, 1), (0, 0)])
def test_isinf_detects_the_signs_asked_for(detect: tuple[int | None, int | None]) -> None:
    x = np.array([np.inf, -np.inf, 1.0, np.nan], dtype=F32)
    attrs = {"detect_positive": detect[0], "detect_negative": detect[1]}
    (eager,), (ort,) = run_both("IsInf", attrs, x)
    np.testing.assert_array_equal(eager, ort)
    positive, negative = (1 if flag is None else flag for flag in detect)
    np.testing.assert_array_equal(eager, [bool(positive), bool(negative), False, False])


def test_integer_arithmetic_wraps_alike_outside_its_domain() -> None:
    """Out of domain means 'compilers may differ', not 'the references differ': uint8 wraps in both."""
    a, b = np.array([1, 250], dtype=U8), np.array([2, 10], dtype=U8)
    for op in ("Sub", "Add"):
        (eager,), (ort,) = run_both(op, {}, a, b)
        np.testing.assert_array_equal(eager, ort)


INPUT_BOUNDS = [(-3.0, -0.5), (-1.0, 0.0), (0.05, 0.9), (1.1, 4.0), (0.0, math.inf), (-math.inf, 2.0)]


@pytest.mark.parametrize("op", sorted(name for name, cls in REGISTRY.items() if issubclass(cls, Unary)))
def test_monotone_ops_map_their_input_bounds_to_sound_output_bounds(op: str) -> None:
    cls = REGISTRY[op]
    choices = [{}] + [{name: choice} for name, param in cls.params.items() for choice in param.choices]
    for chosen in choices:
        spec = cls({name: None for name in cls.params} | chosen)
        if not spec.direction() and cls.valley is None:
            continue
        for low, high in INPUT_BOUNDS:
            declared = spec.output_values([Values(low, high)], 1)[0]
            points = torch.linspace(max(low, -30.0), min(high, 30.0), 401, dtype=torch.float64)
            held = spec.to_torch(points)
            held = held[torch.isfinite(held)]
            assert bool((held >= declared.low).all() and (held <= declared.high).all()), (op, chosen, low, high)


def test_bounds_pass_through_monotone_maps() -> None:
    log_softmax = Values(high=0)
    sinh = REGISTRY["Sinh"]({}).output_values([log_softmax], 1)[0]
    assert sinh.high == 0 and not sinh.meets(REGISTRY["Sqrt"].needs[0])  # Sqrt(Sinh(LogSoftmax)) is NaN
    exp = REGISTRY["Exp"]({}).output_values([Values(-math.inf, 0)], 1)[0]
    assert (exp.low, exp.high) == (0, 1) and not exp.meets(REGISTRY["Acosh"].needs[0])
    threshold = REGISTRY["ThresholdedRelu"]({"alpha": 0.5}).output_values([Values(0, 1)], 1)[0]
    assert threshold.high == 1 and not threshold.meets(REGISTRY["Acosh"].needs[0])  # seen: of a Softmax
    negative = REGISTRY["ThresholdedRelu"]({"alpha": -1.0})
    assert negative.output_values([Values(0, 1)], 1)[0].high == 1  # not monotone, still bounded
    for low, high in INPUT_BOUNDS:
        declared = negative.output_values([Values(low, high)], 1)[0]
        held = negative.to_torch(torch.linspace(max(low, -30.0), min(high, 30.0), 401, dtype=torch.float64))
        assert bool((held >= declared.low).all() and (held <= declared.high).all()), (low, high)
    hardswish = REGISTRY["HardSwish"]({}).output_values([Values(0)], 1)[0]  # seen: Sqrt(Neg(HardSwish(Sqrt x)))
    assert hardswish.low == 0 and REGISTRY["HardSwish"]({}).output_values([Values()], 1)[0].low == -0.375
    acos = REGISTRY["Acos"]({}).output_values([Values(0.5, 0.9)], 1)[0]
    assert acos.low == pytest.approx(math.acos(0.9)) and acos.high == pytest.approx(math.acos(0.5))


def test_bounds_that_close_on_one_value_hold_it_everywhere() -> None:
    # seen: Div(y, Erf(Floor(Softmax(x)))): Floor's input never sits on 1, so each element is 0
    unit = Values(0, 1).within(REGISTRY["Floor"].needs[0])
    floored = REGISTRY["Floor"]({}).output_values([unit], 1)[0]
    assert floored == exactly(0) and not floored.meets(REGISTRY["Reciprocal"].needs[0])
    ceiled = REGISTRY["Ceil"]({}).output_values([unit], 1)[0]
    assert ceiled == exactly(1) and ceiled.meets(REGISTRY["Reciprocal"].needs[0])
    assert REGISTRY["Relu"]({}).output_values([Values(high=0)], 1)[0] == exactly(0)
    assert REGISTRY["Floor"]({}).output_values([Values(0, 2).within(REGISTRY["Floor"].needs[0])], 1)[0].high == 1


def test_tan_maps_bounds_between_its_poles_only() -> None:
    # seen: Sqrt(Sub(Tan(Clip(Softsign(Sigmoid x))), Softplus(PRelu(Exp y, s)))), below zero everywhere
    tan = REGISTRY["Tan"]({})
    held = tan.output_values([Values(0, 0.5)], 1)[0]
    assert (held.low, held.high) == (0, pytest.approx(math.tan(0.5)))
    softplus = REGISTRY["Softplus"]({}).output_values([Values(0)], 1)[0]
    difference = REGISTRY["Sub"]({}).output_values([held, softplus], 1)[0]
    assert difference.high < 0 and not difference.meets(REGISTRY["Sqrt"].needs[0])
    assert tan.output_values([Values(0, 2)], 1)[0].high == math.inf, "past the pole at pi/2"


def test_sin_and_cos_map_finite_bounds_through_their_turns() -> None:
    """Seen: Log(Shrink(Erf(Cos(Tanh(x))), bias=1, lambd=0)): Cos of (-1, 1) is at least cos(1) > 0, so the
    Erf is positive and the Shrink below zero everywhere."""
    cos, sin = REGISTRY["Cos"]({}), REGISTRY["Sin"]({})
    (near_zero,) = cos.values([Values(-1.0, 1.0)])
    assert (near_zero.low, near_zero.high) == (pytest.approx(math.cos(1.0)), 1.0)
    (erf,) = REGISTRY["Erf"]({}).values([near_zero])
    (shrunk,) = REGISTRY["Shrink"]({"bias": 1.0, "lambd": 0.0}).values([erf])
    assert shrunk.high < 0 and not shrunk.meets(REGISTRY["Log"].needs[0])
    (rising,) = sin.values([Values(0.5, 2.0)])
    assert (rising.low, rising.high) == (pytest.approx(math.sin(0.5)), 1.0)
    assert (sin.values([Values(-4.0, 4.0)])[0].low, sin.values([Values(-4.0, 4.0)])[0].high) == (-1.0, 1.0)
    assert (cos.values([LEAF])[0].low, cos.values([Values(2.0, 9.0)])[0].high) == (-1.0, 1.0)
    x = torch.linspace(-1.0, 1.0, 101)
    assert cos.to_torch(x).min() >= near_zero.low - 1e-12


def test_a_where_on_a_finite_check_picks_its_else_branch() -> None:
    """Seen: ReduceLogSum(Min(Neg(Where(IsInf(ReduceProd(x)), y, GlobalLpPool(z))))): IsInf is false on the
    finite values the search keeps, so the Where holds the pooled norms, negated below zero everywhere."""
    (never,) = REGISTRY["IsInf"]({}).output_values([LEAF], 1)
    assert never.one_value == 0 and never.fixed
    where = REGISTRY["Where"]({})
    (picked,) = where.values([never, LEAF, Values(low=0.0)])
    assert picked.low == 0.0
    (negated,) = REGISTRY["Neg"]({}).values([picked])
    assert not negated.meets(REGISTRY["Log"].needs[0])
    assert where.values([exactly(1), Values(high=-1.0), LEAF])[0].high == -1.0
    assert where.values([Values(0, 1), Values(high=-1.0), Values(low=0.0)])[0] == Values(high=-1.0).union(
        Values(low=0.0)
    )


def test_an_op_of_one_constant_everywhere_carries_what_its_other_input_holds() -> None:
    # seen: Log(Sub(ConstantOfShape(0), CumSum(x, exclusive))): the CumSum's first slice is 0, so is 0 - 0
    cumsum = REGISTRY["CumSum"]({"axis": 0, "onnx_axis": 0, "exclusive": 1, "reverse": 0}).values([LEAF])[0]
    difference = REGISTRY["Sub"]({}).output_values([exactly(0), cumsum], 1)[0]
    assert difference.forced == {0.0} and not difference.meets(REGISTRY["Log"].needs[0])
    shifted = REGISTRY["Sub"]({}).output_values([exactly(2), cumsum], 1)[0]
    assert shifted.forced == {2.0} and shifted.meets(REGISTRY["Log"].needs[0])
    assert not REGISTRY["Sub"]({}).output_values([LEAF, cumsum], 1)[0].forced, "no constant: nothing carried"


def test_reciprocal_maps_bounds_on_one_side_of_its_pole_only() -> None:
    reciprocal = REGISTRY["Reciprocal"]({})
    assert reciprocal.output_values([Values(0.5, 4)], 1)[0] == Values(0.25, 2)
    assert reciprocal.output_values([Values(-2, 4)], 1)[0] == Values()
    pulled = reciprocal.pulled_need(REGISTRY["Acosh"].needs[0])  # 1/x >= 1.05 asks 0 < x <= 0.95
    assert 0 < pulled.low < 1e-3 and pulled.high == pytest.approx(1 / 1.05, rel=1e-2) and pulled.high <= 1 / 1.05
    exp = REGISTRY["Exp"]({}).pulled_need(REGISTRY["Log"].needs[0])  # overflow is Exp's own domain, not a bound
    assert exp.high == math.inf and exp.low == pytest.approx(math.log(0.1), abs=1e-2)


@pytest.mark.parametrize("op", ["Add", "Sub", "Sum", "Mean", "Max", "Min"])
def test_ops_monotone_in_every_input_bound_their_output_by_the_inputs_bounds(op: str) -> None:
    rng = np.random.default_rng(0)
    for arity in (1, 2, 3) if op not in ("Add", "Sub") else (2,):
        for bounds in itertools.combinations(INPUT_BOUNDS, arity):
            declared = REGISTRY[op]({}).output_values([Values(low, high) for low, high in bounds], 1)[0]
            points = [torch.from_numpy(rng.uniform(max(low, -30), min(high, 30), 200)) for low, high in bounds]
            held = REGISTRY[op]({}).to_torch(*points)
            assert bool((held >= declared.low).all() and (held <= declared.high).all()), (op, bounds)


def test_a_max_of_log_softmaxes_stays_below_zero() -> None:
    """Seen: Acosh(Max(LogSoftmax)) with a single-input Max, NaN whatever the inputs."""
    held = REGISTRY["Max"]({}).output_values([Values(high=0)], 1)[0]
    assert held.high == 0 and not held.meets(REGISTRY["Acosh"].needs[0])
    assert REGISTRY["Max"]({}).output_values([Values(high=0), Values()], 1)[0].high == math.inf
    difference = REGISTRY["Sub"]({}).output_values([Values(0, 1), Values(2.4, math.inf)], 1)[0]
    assert (difference.low, difference.high) == (-math.inf, -1.4)  # a HardSigmoid minus an Exp above 2.4


@pytest.mark.parametrize("op", ["Mul", "Div"])
def test_products_and_quotients_are_bounded_by_interval_arithmetic(op: str) -> None:
    rng = np.random.default_rng(1)
    for a, b in itertools.product(INPUT_BOUNDS, repeat=2):
        declared = REGISTRY[op]({}).output_values([Values(*a), Values(*b)], 1)[0]
        points = [torch.from_numpy(rng.uniform(max(low, -30), min(high, 30), 500)) for low, high in (a, b)]
        held = REGISTRY[op]({}).to_torch(*points)
        held = held[torch.isfinite(held)]
        assert bool((held >= declared.low).all() and (held <= declared.high).all()), (op, a, b)


def test_a_positive_over_a_negative_stays_negative() -> None:
    """Seen: ReduceLogSum(Div(Softplus(LogSoftmax x), LogSoftmax x)), NaN whatever x."""
    quotient = REGISTRY["Div"]({}).output_values([Values(0), Values(high=0)], 1)[0]
    assert quotient.high == 0 and not quotient.meets(REGISTRY["Log"].needs[0])
    across_zero = REGISTRY["Div"]({}).output_values([Values(0), Values(-1, 1)], 1)[0]
    assert (across_zero.low, across_zero.high) == (-math.inf, math.inf)


def test_a_unary_map_carries_the_values_its_input_is_forced_to_hold() -> None:
    """Exp of a padding's zeros holds ones, whatever the search does: Acosh may not read it, Log may."""
    padded = Values(-3.0, 3.0).union(constant(0))
    (exp,) = REGISTRY["Exp"]({}).values([padded])
    assert exp.forced == {1.0} and exp.meets(REGISTRY["Log"].needs[0])
    assert not exp.meets(REGISTRY["Acosh"].needs[0])
    (clipped,) = REGISTRY["Clip"]({"min": 0.5, "max": None}).values([padded])
    assert clipped.forced == {0.5}
    (product,) = REGISTRY["Mul"]({}).values([padded, Values()])
    assert product.forced == {0.0}, "a product keeps the zeros"
    (total,) = REGISTRY["Add"]({}).values([Values().union(constant(2.0)), Values()])
    assert not total.forced, "a sum moves with its other input"


def test_castlike_keeps_what_every_cast_keeps() -> None:
    """Seen: Atanh(Cos(CastLike(Relu(ConstantOfShape 0), x))) is Atanh(1), infinite whatever x."""
    cast_like = REGISTRY["CastLike"]({})
    (zeros,) = cast_like.values([exactly(0), Values()])
    assert zeros.forced == {0.0} and zeros.fixed
    (cosine,) = REGISTRY["Cos"]({}).values([zeros])
    assert not cosine.meets(REGISTRY["Atanh"].needs[0])
    (cast,) = cast_like.values([Values(-2.5, 3.5).union(constant(0.5)), Values()])
    assert (cast.low, cast.high) == (-2.5, 3.5), "whichever type it casts to, it stays inside the float hull"
    assert not cast.forced, "0.5 truncates to 0 in an integer and to 1 in bool: no value is certain"


def test_clamps_and_comparisons_pile_values_that_maps_and_products_carry() -> None:
    """Relu, HardSigmoid, Clip and comparisons hold their bounds wherever the input is beyond them."""
    (relu,) = REGISTRY["Relu"]({}).values([Values()])
    assert relu.piled == {0.0} and not relu.meets(REGISTRY["Log"].needs[0])
    (exp,) = REGISTRY["Exp"]({}).values([relu])
    assert exp.piled == {1.0}
    (product,) = REGISTRY["Mul"]({}).values([relu, Values()])
    assert product.piled == {0.0}, "a product keeps the zeros"
    (clipped,) = REGISTRY["Clip"]({"min": 0.5, "max": 2.0}).values([Values()])
    assert clipped.piled == {0.5, 2.0}
    (less,) = REGISTRY["Less"]({}).values([Values(), Values()])
    (as_float,) = REGISTRY["Cast"]({"to": "float32"}).values([less])
    assert as_float.piled == {0.0, 1.0} and not as_float.meets(REGISTRY["Reciprocal"].needs[0])
    (as_int,) = REGISTRY["Cast"]({"to": "int64"}).values([Values(-2.5, 2.5, piled=frozenset({-2.5}))])
    assert as_int.piled == {-2.0}


def test_exp_needs_its_input_below_the_overflow_limit_of_its_dtype() -> None:
    """Exp(Cast(Size x)) of a fixed 24 overflows at every step of the search (seen: a 20-node search
    failure); float16 overflows sooner than float32, so the need follows the dtype as the domain does."""
    exp = REGISTRY["Exp"]
    assert not exactly(24).meets(exp.need_at(0, "float32"))
    assert exactly(7).meets(exp.need_at(0, "float32")) and not exactly(7).meets(exp.need_at(0, "float16"))
    assert LEAF.meets(exp.need_at(0, "float16"))


@pytest.mark.parametrize("name", ["Sinh", "Cosh"])
def test_sinh_and_cosh_need_their_input_inside_the_overflow_limits_of_its_dtype(name: str) -> None:
    """Seen: Cosh(ReduceL1(ConstantOfShape(-1.5))) of 10 elements, 15 whatever the inputs (a 20-node search
    failure); like Exp's, the limit follows the dtype, but on both sides."""
    op = REGISTRY[name]
    fixed_total = Values(low=0.0, fixed=True)
    assert not fixed_total.meets(op.need_at(0, "float32")) and not exactly(-24).meets(op.need_at(0, "float32"))
    assert exactly(-7).meets(op.need_at(0, "float32")) and not exactly(-7).meets(op.need_at(0, "float16"))
    assert Values().meets(op.need_at(0, "float16")), "a sum the search can shrink, as a convolution's"
