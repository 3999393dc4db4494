"""Random valid graphs: specs add Z3 constraints node by node; one solve fixes shapes and attrs."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import z3

from fuzzer.core.dtypes import ALL, FLOATS
from fuzzer.core.ir import Graph, Node, TensorType
from specs import REGISTRY
from specs.base import AbsTensor, OpSpec, Symbols, concrete, product
from specs.patterns import CONSTANT_OP, PATTERNS, Operand, Pattern
from specs.values import LEAF, Need, Values

# How often an op x dtype set may be drawn, from 0 (never: a backend lacks it) to 1.
DrawWeight = Callable[[str, tuple[str, ...]], float]
# How much more often one optimization pattern is drawn than another (the campaign's feedback).
PatternWeight = Callable[[str], float]
PATTERN_MODES = ("none", "mixed", "only")
# Z3's deterministic work limit per check: without it a check on nonlinear shape arithmetic (pads,
# strides, divisions) can run for hours; with it Z3 falls back to a solver that answers in milliseconds.
Z3_RLIMIT = 2_000_000
# Not every Z3 procedure honours the work limit: a nonlinear Reshape check after Pad+AveragePool ran for
# over ten minutes under it (campaign seed 31, case 242, guided) and stalled the campaign. A check this
# long ends as unknown, so the node is not placed; a wall-clock cap, it can only change such draws.
Z3_CHECK_MS = 5000


@dataclass(frozen=True)
class GenOptions:
    """Knobs of the generator; the same options and seed always give the same graph."""

    max_nodes: int = 10  # ops; the constants a pattern pins come beside them, as its weights do
    min_nodes: int = 0  # 0: half of max_nodes
    max_dim: int = 8
    max_numel: int = 1024
    dtypes: tuple[str, ...] = ALL
    ops: tuple[str, ...] = ()  # empty: every registered op
    reuse_probability: float = 0.8
    weight_probability: float = 0.4
    # none: every node drawn alone (the blind draw); mixed: 1-3 optimization patterns spliced among drawn
    # nodes; only: patterns alone, chained.
    patterns: str = "mixed"


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
    # an Identity's, Expand's or Concat's output -> the tensors whose elements it holds
    copied: dict[str, frozenset[str]] = field(default_factory=dict)
    # a copy's or a selection's output (Gather, Slice, ReduceMax) -> the tensors some of whose elements it holds
    selected: dict[str, frozenset[str]] = field(default_factory=dict)
    output_count: int = 0
    beside: set[str] = field(default_factory=set)  # outputs of the constants patterns pinned: no node budget
    # The model of the last check that was sat; it satisfies every assertion kept since (unknown and
    # unsat steps are popped), so the final solve needs no check of its own that Z3 may cancel.
    model: z3.ModelRef | None = None

    def size(self) -> int:
        """The nodes that count toward max_nodes: a pattern's constants are operands, as weights are
        (a Scalar drawn as an op, where --ops names it, counts)."""
        return sum(outs[0] not in self.beside for _, _, outs in self.nodes)

    def add_node(self, op: OpSpec, inputs: list[str], outputs: list[str]) -> None:
        """Append a node, recording the outputs it produces and the tensors it reads."""
        self.nodes.append((op, inputs, outputs))
        self.produced.update(outputs)
        self.consumed.update(inputs)
        if op.copies():
            self.copied[outputs[0]] = frozenset().union(*(self.origins(name) for name in inputs))
            self.selected[outputs[0]] = frozenset().union(*(self.elements(name) for name in inputs))
        elif op.selects():
            self.selected[outputs[0]] = self.elements(inputs[0]) | {outputs[0]}

    def origins(self, name: str) -> frozenset[str]:
        """The tensors whose elements `name` holds, through Identity, Expand and Concat."""
        return self.copied.get(name, frozenset({name}))

    def elements(self, name: str) -> frozenset[str]:
        """The tensors some of whose elements `name` holds unchanged, through copies and selections."""
        return self.selected.get(name, frozenset({name}))

    def is_dangling(self, name: str) -> bool:
        """A node output nothing reads yet: reusing it makes graphs deeper, not wider."""
        return name in self.produced and name not in self.consumed


class GenerationError(Exception):
    """The generator could not place a single node (e.g. an op filter nothing satisfies)."""


def generate(
    seed: int,
    options: GenOptions = GenOptions(),
    weight: DrawWeight | None = None,
    pattern_weight: PatternWeight | None = None,
    base: Graph | None = None,
) -> Graph:
    """A random valid graph; deterministic in (seed, options, weights, base).

    With a `base` graph (a mutation), 1 to MUTATION_NODES nodes are added to it, reading its tensors.
    """
    rng = random.Random(seed)
    context = z3.Context()
    solver = z3.Solver(ctx=context)
    solver.set("rlimit", Z3_RLIMIT)
    solver.set("timeout", Z3_CHECK_MS)
    state = _State(rng, options, solver, context)
    specs = _candidate_specs(options)
    patterns = _candidate_patterns(options)
    readers = _first_input_readers(tuple(specs), options.dtypes) if options.patterns != "none" else {}
    if base is None:
        target = rng.randint(options.min_nodes or max(1, options.max_nodes // 2), options.max_nodes)
    else:
        _adopt(state, base)
        grown = rng.randint(1, MUTATION_NODES)
        if options.patterns == "only" and patterns:  # nothing but whole patterns may grow it
            grown = max(grown, min(p.size for p in patterns))
        target = state.size() + grown
    planned = (rng.randint(1, 3) if options.patterns == "mixed" else target) if patterns else 0
    placed_before = len(state.nodes)
    spliced = attempts = 0
    while state.size() < target and attempts < 30 * target:
        attempts += 1
        fitting = [p for p in patterns if p.size <= target - state.size()]
        if fitting and spliced < planned and (options.patterns == "only" or rng.random() < 0.5):
            chosen = rng.choices(fitting, [pattern_weight(p.name) if pattern_weight else 1.0 for p in fitting])[0]
            spliced += _splice(state, chosen, weight, attempts)
        elif options.patterns == "only" and patterns:
            if not fitting:
                break
        else:
            cls, tip = _next_spec(state, specs, readers)
            _try_insert(state, cls, weight, attempts, (), None, tip)
    if len(state.nodes) == placed_before:
        raise GenerationError(f"no node could be placed with ops {', '.join(s.name() for s in specs)}")
    _spread(state)
    return _concretize(state)


@functools.cache
def _first_input_readers(
    specs: tuple[type[OpSpec], ...], dtypes: tuple[str, ...]
) -> dict[tuple[int, str], list[type[OpSpec]]]:
    """For each (rank, dtype), the specs whose first input can read such a tensor (the same for every
    graph of a campaign, so kept)."""
    readers: dict[tuple[int, str], list[type[OpSpec]]] = {}
    for cls in (cls for cls in specs if 0 not in cls.leaf_inputs):  # those read a fresh leaf there
        for kind in sorted(_first_input_kinds(cls)):
            if kind[1] in dtypes:
                readers.setdefault(kind, []).append(cls)
    return readers


@functools.cache
def _first_input_kinds(cls: type[OpSpec]) -> frozenset[tuple[int, str]]:
    """The (rank, dtype) pairs a spec's first input accepts: fixed per class, and a third of a graph's
    drawing time when recounted from every (ranks, dtypes) signature each time."""
    return frozenset((r[0], d[0]) for r in cls.ranks for d in cls.dtypes if r and len(r) == len(d))


def _next_spec(
    state: _State, specs: list[type[OpSpec]], readers: dict[tuple[int, str], list[type[OpSpec]]]
) -> tuple[type[OpSpec], _Tensor | None]:
    """A uniform draw; guided draws mostly pick an op to read the newest output (returned too), so chains grow."""
    tip = _tip(state)
    if readers and tip is not None and state.rng.random() < TIP_READER_PROBABILITY:
        fitting = readers.get((tip.abs.rank, tip.abs.dtype))
        if fitting:
            return state.rng.choice(fitting), tip
    return state.rng.choice(specs), None


def _reads_first(cls: type[OpSpec], tensor: _Tensor) -> bool:
    """Whether the spec's first input accepts the tensor's rank and dtype."""
    return (tensor.abs.rank, tensor.abs.dtype) in _first_input_kinds(cls)


def _tip(state: _State) -> _Tensor | None:
    """The newest node output: what a deep chain reads next."""
    return next((t for t in reversed(state.tensors) if t.name in state.produced), None)


def _candidate_patterns(options: GenOptions) -> list[Pattern]:
    """Patterns whose every op the options allow (none for the blind draw)."""
    if options.patterns not in PATTERN_MODES:
        raise GenerationError(f"patterns must be one of {', '.join(PATTERN_MODES)}, not {options.patterns!r}")
    if options.patterns == "none":
        return []
    allowed = set(options.ops or REGISTRY)
    return [p for _, p in sorted(PATTERNS.items()) if allowed.issuperset(p.ops)]


def _splice(state: _State, pattern: Pattern, weight: DrawWeight | None, attempt: int) -> bool:
    """Place a pattern's steps in order, all or none; its named operands bind the graph's tensors."""
    mark = _Mark.of(state)
    named: dict[str, _Tensor] = {}
    firsts: list[_Tensor] = []
    entry, tip = pattern.steps[0].operands[0], _tip(state)
    fits = entry.name and not entry.leaf and tip and entry.rank in (None, tip.abs.rank)
    if fits and _reads_first(REGISTRY[pattern.steps[0].op], tip) and state.rng.random() < TIP_READER_PROBABILITY:
        named[entry.name] = tip
    for step in pattern.steps:
        wanted = [firsts[o.step] if o.step is not None else named.get(o.name or "", o) for o in step.operands]
        if not _place_constants(state, wanted, attempt):
            mark.restore(state)
            return False
        for _ in range(PATTERN_STEP_TRIES):
            placed = _try_insert(state, REGISTRY[step.op], weight, attempt, wanted, step.attrs)
            if placed:
                break
        else:
            mark.restore(state)
            return False
        bound, outputs = placed
        named.update((o.name, t) for o, t in zip(step.operands, bound) if o.name)
        firsts.append(outputs[0])
    return True


def _place_constants(state: _State, wanted: list[_Tensor | Operand], attempt: int) -> bool:
    """Put a Scalar node before the step for each of its constant operands, in the dtype of a tensor the
    step already reads (or a drawn float dtype), and let the step read it."""
    bound = [w.abs.dtype for w in wanted if isinstance(w, _Tensor)]
    floats = [d for d in FLOATS if d in state.options.dtypes]
    for position, want in enumerate(wanted):
        if isinstance(want, _Tensor) or want.constant is None:
            continue
        if not floats:
            return False
        chosen = bound[0] if bound else state.rng.choice(floats)
        placed = _try_insert(state, REGISTRY[CONSTANT_OP], None, attempt, (), {"value": want.constant, "dtype": chosen})
        if placed is None:
            return False
        wanted[position] = placed[1][0]
        state.beside.add(placed[1][0].name)
        bound.append(chosen)
    return True


@dataclass
class _Mark:
    """What a partly placed pattern must restore when a later step does not fit."""

    nodes: int
    tensors: int
    inputs: int
    weights: int
    variables: int
    output_count: int
    produced: set[str]
    consumed: set[str]
    beside: set[str]
    needs: dict[str, list[Need]]
    values: dict[str, Values]

    @classmethod
    def of(cls, state: _State) -> _Mark:
        return cls(
            len(state.nodes),
            len(state.tensors),
            len(state.inputs),
            len(state.weights),
            len(state.variables),
            state.output_count,
            set(state.produced),
            set(state.consumed),
            set(state.beside),
            state.needs,
            {t.name: t.values for t in state.tensors},
        )

    def restore(self, state: _State) -> None:
        if len(state.nodes) > self.nodes:
            state.solver.pop(len(state.nodes) - self.nodes)  # each placed node holds one solver scope
        del state.nodes[self.nodes :], state.tensors[self.tensors :], state.inputs[self.inputs :]
        del state.weights[self.weights :], state.variables[self.variables :]
        state.output_count, state.produced, state.consumed = self.output_count, self.produced, self.consumed
        state.beside = self.beside
        state.needs = self.needs
        for tensor in state.tensors:
            tensor.values = self.values[tensor.name]


def _candidate_specs(options: GenOptions) -> list[type[OpSpec]]:
    names = options.ops or tuple(name for name, cls in sorted(REGISTRY.items()) if not cls.pattern_only)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise GenerationError(f"unknown ops: {', '.join(unknown)}")
    return [REGISTRY[n] for n in names]


PATTERN_STEP_TRIES = 6  # draws of one step (dtypes, shapes, attributes) before the whole pattern is undone
PINNED_ATTR_TRIES = 20  # attribute draws until the pattern's pinned values come up
TIP_READER_PROBABILITY = 0.9
MUTATION_NODES = 3
RECENCY_WEIGHT = 64.0  # guided draws: the newest output outweighs a leaf 64:1, the one before it 32:1, ...


def _try_insert(
    state: _State,
    cls: type[OpSpec],
    weight: DrawWeight | None,
    attempt: int,
    wanted: Sequence[_Tensor | Operand] = (),
    pinned: dict[str, Any] | None = None,
    first: _Tensor | None = None,
) -> tuple[list[_Tensor], list[_Tensor]] | None:
    """Place one node; returns its inputs and outputs, or None (and changes nothing) if it did not fit.

    `wanted` (from a pattern) fixes the arity and, per input, the tensor or the kind of operand to bind;
    `pinned` attributes must take the given values; `first` is the tensor the first input must read.
    """
    rng, options = state.rng, state.options
    dtype_choices = [d for d in cls.dtypes if all(t in options.dtypes for t in d) and _drawn(rng, weight, cls, d)]
    combos = [(r, d) for r in cls.ranks for d in dtype_choices if len(r) == len(d) and len(r) == len(wanted or r)]
    if not combos:
        return None
    arities = sorted({len(r) for r, _ in combos})
    if len(arities) > 1:  # variadic: pick the arity first, each equally likely
        arity = rng.choice(arities)
        combos = [(r, d) for r, d in combos if len(r) == arity]
    syms = Symbols(f"n{len(state.nodes)}a{attempt}", state.context, state.lows)
    bound: list[_Tensor] = []
    fresh: list[tuple[_Tensor, str]] = []
    cons: list[Any] = []
    reserved = {w.name for w in wanted if isinstance(w, _Tensor)}  # a pattern's tensors go where it says
    # An op whose domain ties its inputs together reads no two that share an element either: Mod(Gather(t), t).
    shared = state.elements if cls.joint_domain else state.origins
    for position in range(len(combos[0][0])):
        kinds = {(r[position], d[position]) for r, d in combos}
        # A node never reads one tensor twice, not even through a copy: x-x, x/x and Equal(x, Expand x)
        # are constants that test nothing and put NaNs (Div by x-x) in the graph that no values avoid.
        taken = frozenset().union(*(shared(t.name) for t in bound))
        want = wanted[position] if wanted else (first if first and position == 0 else Operand())
        if isinstance(want, _Tensor):
            if position in cls.leaf_inputs:
                return None  # a fresh leaf goes there, whose values index_bounds keeps in range
            fits = (want.abs.rank, want.abs.dtype) in kinds and not shared(want.name) & taken
            if not fits or not _meets_need(cls, position, want):
                return None
            tensor = want
        else:
            existing = [
                t
                for t in state.tensors
                if (t.abs.rank, t.abs.dtype) in kinds
                and t.name not in reserved
                and not shared(t.name) & taken
                and _meets_need(cls, position, t)
                and want.rank in (None, t.abs.rank)
            ]
            reuse = existing and not want.leaf and position not in cls.leaf_inputs
            if reuse and rng.random() < options.reuse_probability:
                tensor = rng.choices(existing, _reuse_weights(state, existing))[0]
            else:
                choices = [(r, d) for r, d in combos if want.rank in (None, r[position])]
                if not choices:
                    return None
                ranks, dtypes = rng.choices(choices, [_dtype_weight(d) for _, d in choices])[0]
                tensor = _placeholder(state, syms, position, ranks[position], dtypes[position], fresh, want.leaf)
                cons += [z3.And(d >= 1, d <= options.max_dim) for d in tensor.abs.shape]
                cons.append(product(tensor.abs.shape) <= options.max_numel)
        combos = [(r, d) for r, d in combos if (r[position], d[position]) == (tensor.abs.rank, tensor.abs.dtype)]
        bound.append(tensor)
    abs_inputs = [t.abs for t in bound]
    attrs = cls.sample_attrs(rng, abs_inputs, syms)
    free = {key: value for key, value in (pinned or {}).items() if key in cls.free_attrs}
    attrs |= free
    if pinned:
        for _ in range(PINNED_ATTR_TRIES):
            if all(_may_pin(attrs.get(key, _ABSENT), value) for key, value in pinned.items()):
                break
            attrs = cls.sample_attrs(rng, abs_inputs, syms) | free
        else:
            return None
        cons += [attrs[key] == value for key, value in pinned.items() if isinstance(attrs[key], z3.ExprRef)]
    op = cls(attrs)
    cons += op.requires(abs_inputs)
    outputs = op.infer(abs_inputs)
    for out in outputs:
        cons += [d >= 1 for d in out.shape]
        cons.append(product(out.shape) <= options.max_numel)
    if any(c is False for c in cons):
        return None
    needs = {name: list(needed) for name, needed in state.needs.items()}
    for position, tensor in enumerate(bound):
        if need := cls.need_at(position, tensor.abs.dtype):
            needs.setdefault(tensor.name, []).append(need)
    out_names = _unused_names(state, "t", state.output_count, len(outputs), {t.name for t, _ in fresh})
    node = (op, [t.name for t in bound], out_names)
    values = _propagated(state.tensors + [t for t, _ in fresh], [*state.nodes, node], needs)
    if values is None or _makes_one_value(op, [values[t.name] for t in bound], [values[n] for n in out_names]):
        return None
    state.solver.push()
    state.solver.add(*(c for c in cons if not isinstance(c, bool)))
    if not _satisfiable(state):
        state.solver.pop()
        return None
    for tensor, kind in fresh:
        (state.weights if kind == "weight" else state.inputs).append(tensor.name)
        state.tensors.append(tensor)
        state.variables += [(d, syms.low(d)) for d in tensor.abs.shape if isinstance(d, z3.ArithRef)]
    state.variables += [(v, syms.low(v)) for v in _z3_leaves(list(attrs.values())) if z3.is_const(v)]
    state.output_count += len(outputs)
    placed = [_Tensor(n, o) for n, o in zip(out_names, outputs)]
    state.tensors += placed
    state.add_node(*node)
    state.needs = needs
    for tensor in state.tensors:
        tensor.values = values[tensor.name]
    return bound, placed


_ABSENT = object()


def _may_pin(drawn: Any, value: Any) -> bool:
    """Whether a drawn attribute is the pinned value, or a Z3 variable that a constraint can make it."""
    return isinstance(drawn, z3.ExprRef) or (drawn is not _ABSENT and drawn == value)


def _reuse_weights(state: _State, existing: list[_Tensor]) -> list[float]:
    """Outputs nothing reads yet are preferred; guided draws also prefer the newest, so chains grow deep."""
    dangling = [3.0 if state.is_dangling(t.name) else 1.0 for t in existing]
    if state.options.patterns == "none":
        return dangling
    produced = [t.name for t in state.tensors if t.name in state.produced]
    order = {name: index for index, name in enumerate(produced)}
    newest = len(order) - 1
    return [
        weight + (RECENCY_WEIGHT * 2.0 ** (order[t.name] - newest) if t.name in order else 0.0)
        for weight, t in zip(dangling, existing)
    ]


def _propagated(
    tensors: list[_Tensor], nodes: list[tuple[OpSpec, list[str], list[str]]], needs: dict[str, list[Need]]
) -> dict[str, Values] | None:
    """Every tensor's values once all its readers' needs hold, or None if one can no longer be met.

    A need narrows what a tensor can hold, and so what every tensor computed from it can (once
    Asin keeps w inside (-1, 1), Floor(w) is at most 0, which an earlier Log of it cannot read);
    and it asks what an invertible map's input must hold (Acosh(Floor(x)) asks x >= 2), and a copy's
    inputs what its output must (Log(Concat(a, b)) asks a and b each to be positive).
    """
    needs = {name: list(found) for name, found in needs.items()}
    for op, ins, outs in reversed(nodes):
        for need in needs.get(outs[0], []) if ins else []:
            if op.copies():
                for name in ins:
                    needs.setdefault(name, []).append(need)
                continue
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
    averaged = {outs[0]: ins[0] for op, ins, outs in nodes if op.averages}
    for op, ins, outs in nodes:
        held = op.output_values([values[name] for name in ins], len(outs))
        if op.subtracts and (averaged.get(ins[1]) == ins[0] or averaged.get(ins[0]) == ins[1]):
            held = [replace(held[0], centered=True), *held[1:]]
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
    state: _State,
    syms: Symbols,
    position: int,
    rank: int,
    dtype_name: str,
    fresh: list[tuple[_Tensor, str]],
    kind: str | None = None,
) -> _Tensor:
    """A new graph input or weight (`kind`, else drawn); it joins the graph only if the node is kept."""
    kind = kind or ("weight" if state.rng.random() < state.options.weight_probability else "input")
    existing = state.weights if kind == "weight" else state.inputs
    count = len(existing) + sum(k == kind for _, k in fresh)
    dims = [syms.int(f"in{position}d{i}") for i in range(rank)]
    (name,) = _unused_names(state, "w" if kind == "weight" else "x", count, 1, {t.name for t, _ in fresh})
    tensor = _Tensor(name, AbsTensor(dims, dtype_name))
    fresh.append((tensor, kind))
    return tensor


def _unused_names(state: _State, prefix: str, start: int, count: int, pending: set[str]) -> list[str]:
    """`count` names from prefix+start on; a graph adopted as a base may already use some of them."""
    taken = {t.name for t in state.tensors} | pending
    names: list[str] = []
    index = start
    while len(names) < count:
        if f"{prefix}{index}" not in taken:
            names.append(f"{prefix}{index}")
        index += 1
    return names


def _makes_one_value(op: OpSpec, inputs: list[Values], outputs: list[Values]) -> bool:
    """Whether the node holds one value everywhere only because of what its inputs hold (Sign of values
    at least 1), not by its own definition (ConstantOfShape): it tests nothing, and feeds its readers a
    constant (a group of one value that no normalization can spread)."""
    if all(value.fixed for value in inputs):
        return False
    unknown = op.output_values([Values()] * len(inputs), len(outputs))
    return any(held.one_value is not None and free.one_value is None for held, free in zip(outputs, unknown))


def _meets_need(cls: type[OpSpec], position: int, tensor: _Tensor) -> bool:
    """Whether `tensor` can hold what input `position` of `cls` needs of a tensor of its dtype."""
    need = cls.need_at(position, tensor.abs.dtype)
    return need is None or tensor.values.meets(need)


def _adopt(state: _State, base: Graph) -> None:
    """Start from an existing graph (a mutation): its tensors keep their shapes, its nodes their attributes."""
    syms = Symbols("base", state.context, state.lows)
    for name, tensor_type in base.types.items():
        dims = [syms.int(f"{name}.d{i}", low=0) for i in range(tensor_type.rank)]
        state.solver.add(*(d == size for d, size in zip(dims, tensor_type.shape)))
        state.tensors.append(_Tensor(name, AbsTensor(dims, tensor_type.dtype)))
    state.inputs, state.weights = list(base.inputs), list(base.weights)
    for node in base.nodes:
        op = REGISTRY[node.op](dict(node.attrs))
        state.add_node(op, list(node.inputs), list(node.outputs))
        if node.op == CONSTANT_OP:  # a pattern's, in any base a campaign pools
            state.beside.update(node.outputs)
        for position, name in enumerate(node.inputs):
            if need := op.need_at(position, base.types[name].dtype):
                state.needs.setdefault(name, []).append(need)
    state.output_count = len(state.produced)
    values = _propagated(state.tensors, state.nodes, state.needs)
    if values is None:
        raise GenerationError("the base graph's needs cannot all be met")
    for tensor in state.tensors:
        tensor.values = values[tensor.name]


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
        if not _satisfiable(state):
            solver.pop()


def _satisfiable(state: _State) -> bool:
    """Whether the assertions so far are sat (not unsat, nor unknown under the work limit), keeping the model."""
    if state.solver.check() != z3.sat:
        return False
    state.model = state.solver.model()
    return True


def _concretize(state: _State) -> Graph:
    # The work limit counts over a solver's life: a last check can be cancelled where every step was sat.
    model = state.model
    if model is None:
        if not _satisfiable(state):
            raise GenerationError("constraints became unsatisfiable")
        model = state.model
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
