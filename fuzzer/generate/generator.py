"""Random valid graphs: specs add Z3 constraints node by node; one solve fixes shapes and attrs."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import z3

from fuzzer.core.dtypes import ALL
from fuzzer.core.ir import Graph, Node, TensorType
from specs import REGISTRY
from specs.base import AbsTensor, OpSpec, Symbols, concrete, product
from specs.values import LEAF, Need, Values

# How often an op x dtype set may be drawn, from 0 (never: a backend lacks it) to 1.
DrawWeight = Callable[[str, tuple[str, ...]], float]
# Z3's deterministic work limit per check: without it a check on nonlinear shape arithmetic (pads,
# strides, divisions) can run for hours; with it Z3 falls back to a solver that answers in milliseconds.
Z3_RLIMIT = 2_000_000


@dataclass(frozen=True)
class GenOptions:
    """Knobs of the generator; the same options and seed always give the same graph."""

    max_nodes: int = 10
    min_nodes: int = 0  # 0: half of max_nodes
    max_dim: int = 8
    max_numel: int = 1024
    dtypes: tuple[str, ...] = ALL
    ops: tuple[str, ...] = ()  # empty: every registered op
    reuse_probability: float = 0.8
    weight_probability: float = 0.4


@dataclass
class _Tensor:
    name: str
    abs: AbsTensor
    values: Values = LEAF


@dataclass
class _State:
    """The graph under construction, with the Z3 variables it introduced."""

    rng: random.Random
    options: GenOptions
    solver: z3.Solver
    context: z3.Context
    tensors: list[_Tensor] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    weights: list[str] = field(default_factory=list)
    nodes: list[tuple[OpSpec, list[str], list[str]]] = field(default_factory=list)
    variables: list[tuple[z3.ArithRef, int]] = field(default_factory=list)  # with declared lower bounds
    lows: dict[str, int] = field(default_factory=dict)  # every variable's declared lower bound, by name
    produced: set[str] = field(default_factory=set)  # names of node outputs
    consumed: set[str] = field(default_factory=set)
    needs: dict[str, list[Need]] = field(default_factory=dict)  # tensor -> what its readers need of it
    output_count: int = 0

    def is_dangling(self, name: str) -> bool:
        """A node output nothing reads yet: reusing it makes graphs deeper, not wider."""
        return name in self.produced and name not in self.consumed


class GenerationError(Exception):
    """The generator could not place a single node (e.g. an op filter nothing satisfies)."""


def generate(seed: int, options: GenOptions = GenOptions(), weight: DrawWeight | None = None) -> Graph:
    """A random valid graph; deterministic in (seed, options, weight)."""
    rng = random.Random(seed)
    context = z3.Context()
    solver = z3.Solver(ctx=context)
    solver.set("rlimit", Z3_RLIMIT)
    state = _State(rng, options, solver, context)
    specs = _candidate_specs(options)
    target = rng.randint(options.min_nodes or max(1, options.max_nodes // 2), options.max_nodes)
    attempts = 0
    while len(state.nodes) < target and attempts < 30 * target:
        attempts += 1
        _try_insert(state, rng.choice(specs), weight, attempts)
    if not state.nodes:
        raise GenerationError(f"no node could be placed with ops {', '.join(s.name() for s in specs)}")
    _spread(state)
    return _concretize(state)


def _candidate_specs(options: GenOptions) -> list[type[OpSpec]]:
    names = options.ops or tuple(sorted(REGISTRY))
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise GenerationError(f"unknown ops: {', '.join(unknown)}")
    return [REGISTRY[n] for n in names]


def _try_insert(state: _State, cls: type[OpSpec], weight: DrawWeight | None, attempt: int) -> bool:
    rng, options = state.rng, state.options
    dtype_choices = [d for d in cls.dtypes if all(t in options.dtypes for t in d) and _drawn(rng, weight, cls, d)]
    combos = [(r, d) for r in cls.ranks for d in dtype_choices if len(r) == len(d)]
    if not combos:
        return False
    arities = sorted({len(r) for r, _ in combos})
    if len(arities) > 1:  # variadic: pick the arity first, each equally likely
        arity = rng.choice(arities)
        combos = [(r, d) for r, d in combos if len(r) == arity]
    syms = Symbols(f"n{len(state.nodes)}a{attempt}", state.context, state.lows)
    bound: list[_Tensor] = []
    fresh: list[tuple[_Tensor, str]] = []
    cons: list[Any] = []
    for position in range(len(combos[0][0])):
        kinds = {(r[position], d[position]) for r, d in combos}
        # A node never reads one tensor twice: x-x, x/x and Equal(x, x) are constants that test nothing
        # and put NaNs (Div by x-x) in the graph that no input values can avoid.
        taken = {t.name for t in bound}
        need = cls.needs.get(position)
        existing = [
            t
            for t in state.tensors
            if (t.abs.rank, t.abs.dtype) in kinds and t.name not in taken and (need is None or t.values.meets(need))
        ]
        if existing and position not in cls.leaf_inputs and rng.random() < options.reuse_probability:
            tensor = rng.choices(existing, [3 if state.is_dangling(t.name) else 1 for t in existing])[0]
        else:
            ranks, dtypes = rng.choices(combos, [_dtype_weight(d) for _, d in combos])[0]
            tensor = _placeholder(state, syms, position, ranks[position], dtypes[position], fresh)
            cons += [z3.And(d >= 1, d <= options.max_dim) for d in tensor.abs.shape]
            cons.append(product(tensor.abs.shape) <= options.max_numel)
        combos = [(r, d) for r, d in combos if (r[position], d[position]) == (tensor.abs.rank, tensor.abs.dtype)]
        bound.append(tensor)
    abs_inputs = [t.abs for t in bound]
    attrs = cls.sample_attrs(rng, abs_inputs, syms)
    op = cls(attrs)
    cons += op.requires(abs_inputs)
    outputs = op.infer(abs_inputs)
    for out in outputs:
        cons += [d >= 1 for d in out.shape]
        cons.append(product(out.shape) <= options.max_numel)
    if any(c is False for c in cons):
        return False
    needs = {name: list(needed) for name, needed in state.needs.items()}
    for position, tensor in enumerate(bound):
        if position in cls.needs:
            needs.setdefault(tensor.name, []).append(cls.needs[position])
    out_names = [f"t{state.output_count + i}" for i in range(len(outputs))]
    node = (op, [t.name for t in bound], out_names)
    values = _propagated(state.tensors + [t for t, _ in fresh], [*state.nodes, node], needs)
    if values is None:
        return False
    state.solver.push()
    state.solver.add(*(c for c in cons if not isinstance(c, bool)))
    if state.solver.check() != z3.sat:
        state.solver.pop()
        return False
    for tensor, kind in fresh:
        (state.weights if kind == "weight" else state.inputs).append(tensor.name)
        state.tensors.append(tensor)
        state.variables += [(d, syms.low(d)) for d in tensor.abs.shape if isinstance(d, z3.ArithRef)]
    state.variables += [(v, syms.low(v)) for v in _z3_leaves(list(attrs.values())) if z3.is_const(v)]
    state.output_count += len(outputs)
    state.tensors += [_Tensor(n, o) for n, o in zip(out_names, outputs)]
    state.nodes.append(node)
    state.produced.update(out_names)
    state.consumed.update(t.name for t in bound)
    state.needs = needs
    for tensor in state.tensors:
        tensor.values = values[tensor.name]
    return True


def _propagated(
    tensors: list[_Tensor], nodes: list[tuple[OpSpec, list[str], list[str]]], needs: dict[str, list[Need]]
) -> dict[str, Values] | None:
    """Every tensor's values once all its readers' needs hold, or None if one can no longer be met.

    A need narrows what a tensor can hold, and so what every tensor computed from it can (once
    Asin keeps w inside (-1, 1), Floor(w) is at most 0, which an earlier Log of it cannot read);
    and it asks what an invertible map's input must hold (Acosh(Floor(x)) asks x >= 2).
    """
    needs = {name: list(found) for name, found in needs.items()}
    for op, ins, outs in reversed(nodes):
        for need in needs.get(outs[0], []) if ins else []:
            pulled = op.pulled_need(need)
            if pulled is not None:
                needs.setdefault(ins[0], []).append(pulled)
    values: dict[str, Values] = {}

    def settle(name: str, held: Values) -> bool:
        for need in needs.get(name, ()):
            if not held.meets(need):
                return False
            held = held.within(need)
        values[name] = held
        return True

    produced = {name for _, _, outs in nodes for name in outs}
    if not all(settle(t.name, LEAF) for t in tensors if t.name not in produced):
        return None
    for op, ins, outs in nodes:
        held = op.output_values([values[name] for name in ins], len(outs))
        if not all(settle(name, v) for name, v in zip(outs, held)):
            return None
    return values


def _drawn(rng: random.Random, weight: DrawWeight | None, cls: type[OpSpec], dtypes: tuple[str, ...]) -> bool:
    """Whether this attempt may use `dtypes`: always without weights, else with the pair's probability."""
    if weight is None:
        return True
    share = weight(cls.name(), dtypes)
    return share >= 1 or (share > 0 and rng.random() < share)


# float32 is what models mostly run in; the other dtypes still come up in most graphs.
DTYPE_WEIGHTS = {"float32": 6, "float64": 2, "int64": 2, "bool": 2}


def _dtype_weight(dtypes: tuple[str, ...]) -> int:
    return min(DTYPE_WEIGHTS.get(d, 1) for d in dtypes)


def _placeholder(
    state: _State, syms: Symbols, position: int, rank: int, dtype_name: str, fresh: list[tuple[_Tensor, str]]
) -> _Tensor:
    """A new graph input or weight; it joins the graph only if the node is kept."""
    kind = "weight" if state.rng.random() < state.options.weight_probability else "input"
    existing = state.weights if kind == "weight" else state.inputs
    count = len(existing) + sum(k == kind for _, k in fresh)
    dims = [syms.int(f"in{position}d{i}") for i in range(rank)]
    tensor = _Tensor(f"{'w' if kind == 'weight' else 'x'}{count}", AbsTensor(dims, dtype_name))
    fresh.append((tensor, kind))
    return tensor


def _z3_leaves(value: Any) -> list[z3.ArithRef]:
    if isinstance(value, z3.ArithRef):
        return [value]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _z3_leaves(item)]
    return []


def _spread(state: _State) -> None:
    """Z3 likes boundary values; nudge each variable toward a random value where still satisfiable."""
    rng, solver = state.rng, state.solver
    for var, low in state.variables:
        target = rng.randint(low, state.options.max_dim)
        solver.push()
        solver.add(var == target)
        if solver.check() != z3.sat:
            solver.pop()


def _concretize(state: _State) -> Graph:
    if state.solver.check() != z3.sat:
        raise GenerationError("constraints became unsatisfiable")  # cannot happen: every step was sat
    model = state.solver.model()
    types = {t.name: TensorType(tuple(concrete(model, d) for d in t.abs.shape), t.abs.dtype) for t in state.tensors}
    nodes = [
        Node(op.name(), ins, outs, {k: concrete(model, v) for k, v in op.attrs.items()})
        for op, ins, outs in state.nodes
    ]
    outputs = [name for _, _, outs in state.nodes for name in outs if name not in state.consumed]
    inputs, weights = list(state.inputs), list(state.weights)
    if not inputs and weights:  # graphs of arity-0 ops (Range) have no leaves at all
        inputs.append(weights.pop(0))
    return Graph(inputs=inputs, weights=weights, nodes=nodes, outputs=outputs, types=types)
