"""The operator-spec contract: Z3 validity rules, shape inference, and two lowerings with one meaning."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import torch
import z3

from fuzzer.core.dtypes import dtype
from fuzzer.core.ir import Node, TensorType
from specs.values import Need, Values, exactly

Dim = int | z3.ArithRef
MAX_RANK = 4


@dataclass
class AbsTensor:
    """A tensor during generation: shape dims may be Z3 expressions, dtype and rank are fixed."""

    shape: list[Dim]
    dtype: str

    @property
    def rank(self) -> int:
        return len(self.shape)


class Symbols:
    """Fresh Z3 integers whose names say which node they belong to.

    Each generated graph has its own Z3 context, so a solve never depends on what was solved
    before in the process. Spec code must therefore never build a Z3 term from Python values
    alone (that lands in Z3's global context): use `if_`, `or_` and `and_` below.
    """

    def __init__(self, prefix: str, context: z3.Context | None = None, lows: dict[str, int] | None = None) -> None:
        self.prefix = prefix
        self.context = context
        self.lows = {} if lows is None else lows  # shared across one graph's Symbols: attrs may read earlier dims

    def int(self, name: str, low: int = 1) -> z3.ArithRef:
        """A fresh integer; `low` is the least value the spec's `requires` admit (0 for pads)."""
        full_name = f"{self.prefix}.{name}"
        self.lows[full_name] = low
        return z3.Int(full_name, self.context)

    def low(self, var: z3.ArithRef) -> int:
        """The declared lower bound of a variable made by this object or one sharing its `lows`."""
        return self.lows[var.decl().name()]  # not str(var): Z3's printer costs a tenth of generation


class OnnxEmitter:
    """Collects the ONNX nodes and constant initializers that one spec's lowering writes."""

    def __init__(self, prefix: str, input_types: list[TensorType]) -> None:
        self.prefix = prefix
        self.input_types = input_types
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def temp(self) -> str:
        self._count += 1
        return f"{self.prefix}_t{self._count}"

    def node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any) -> None:
        attrs = {k: v for k, v in attrs.items() if v is not None}
        name = f"{self.prefix}_{op_type}{len(self.nodes)}"
        self.nodes.append(onnx.helper.make_node(op_type, list(inputs), list(outputs), name=name, **attrs))

    def const(self, value: np.ndarray | Sequence[int] | float, dtype_name: str = "int64") -> str:
        """An initializer holding `value`; returns its name for use as a node input."""
        array = np.asarray(value, dtype=dtype(dtype_name).numpy)
        name = self.temp()
        self.initializers.append(onnx.numpy_helper.from_array(array, name))
        return name


class OpSpec:
    """One operator. Subclasses set the class attributes and override what their family needs.

    Contract (the property suite in tests/specs checks it for every registered spec):
    - `ranks` and `dtypes` list the accepted input combinations (tuples of equal length: the arity;
      variadic ops list combinations of several lengths);
    - `sample_attrs` picks attributes: concrete Python choices, or Z3 ints from `syms` — exactly
      the attributes named in `solved` (an int or a list of ints), which the reducer re-solves;
    - `requires` returns Z3 constraints under which the op is valid, `infer` the output types;
    - after solving, attrs are concrete and `to_onnx` / `to_torch` must compute the same function;
    - `domain_loss` is zero where inputs are inside the numeric domain and positive outside;
    - `leaf_inputs` are positions fed by a fresh graph input or weight, whose integer values
      `index_bounds` keeps in range (indices, counts);
    - `needs` says which values an input position must reach (it mirrors `domain_loss`: inside
      every need the loss is zero unless `joint_domain` says inputs are also constrained together;
      it is declared before attributes are drawn, and `drawn_needs` drops those a drawn instance's
      attributes lift, so outside each drawn need the loss is positive), and
      `values` what the outputs can hold, so the generator never feeds Acosh from a Cos;
      `moves_values` marks ops whose output holds (some of) input 0's elements unchanged, and
      `pulled_need` what input 0 must hold for output 0 to meet a reader's need;
    - `pattern_only` specs are placed by optimization patterns alone, never drawn on their own, and
      a pattern may set their `free_attrs` to any value directly (every value is valid).
    """

    onnx_op: ClassVar[str]
    dtypes: ClassVar[tuple[tuple[str, ...], ...]]  # accepted input dtype combinations
    ranks: ClassVar[tuple[tuple[int, ...], ...]]  # accepted input rank combinations
    leaf_inputs: ClassVar[tuple[int, ...]] = ()
    solved: ClassVar[frozenset[str]] = frozenset()
    needs: ClassVar[dict[int, Need]] = {}
    joint_domain: ClassVar[bool] = False  # domain_loss also ties inputs together, beyond `needs`
    moves_values: ClassVar[bool] = False
    # output 0 holds its inputs' elements where broadcasting lines them up (Identity, Expand, Concat): a
    # node reading both reads one tensor twice, and x - Expand(x) is all zeros, Concat(x, y) - x partly
    copies_inputs: ClassVar[bool] = False
    # output 0 averages groups of input 0's elements (ReduceMean, GlobalAveragePool), and `subtracts` marks
    # input 0 minus input 1 (Sub): a tensor minus its average has both signs in every group, or is zero
    averages: ClassVar[bool] = False
    subtracts: ClassVar[bool] = False
    pattern_only: ClassVar[bool] = False
    free_attrs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    @classmethod
    def arity(cls) -> int:
        return len(cls.ranks[0])

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        """Attributes for one instance: concrete choices, or Z3 ints that `requires` constrains."""
        return {}

    def copies(self) -> bool:
        """Whether output 0 holds the inputs' elements (`copies_inputs`), or this instance's attributes
        make the op a copy (a Transpose by the identity, a reduction of each element alone)."""
        return type(self).copies_inputs

    def selects(self) -> bool:
        """Whether output 0 holds only elements of input 0, unchanged (a Gather, a Slice, a maximum): an
        op whose domain ties its inputs together (`joint_domain`: Mod, comparisons) never reads both."""
        return type(self).moves_values

    @classmethod
    def need_at(cls, position: int, dtype: str) -> Need | None:
        """What input `position` must hold when it is a `dtype` tensor (Exp's bound is lower in float16)."""
        need = cls.needs.get(position)
        return need.at(dtype) if need else None

    def drawn_needs(self) -> dict[int, Need]:
        """The needs this instance really has: the generator plans with `needs` before attributes exist."""
        return self.needs

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return []

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        raise NotImplementedError

    def to_onnx(self, emit: OnnxEmitter, inputs: list[str], outputs: list[str]) -> None:
        emit.node(self.onnx_op, inputs, outputs, **self.onnx_attrs())

    def onnx_attrs(self) -> dict[str, Any]:
        return {}

    def to_torch(self, *xs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def domain_loss(self, *xs: torch.Tensor) -> torch.Tensor | None:
        """Zero where the inputs are inside the operator's numeric domain, positive outside."""
        return None

    def values(self, inputs: list[Values]) -> list[Values]:
        """What each output can hold, given what the inputs can; unknown outputs may be left out."""
        return []

    def mapped(self, values: frozenset[float], others: dict[int, float] | None = None) -> frozenset[float]:
        """What this op's lowering, run in float64, makes of each value one input holds (Exp of a
        padding's zeros holds ones), each other input holding the one value `others` gives it;
        non-finite results are dropped."""
        if not values:
            return frozenset()
        others = others or {}
        arguments = [torch.tensor(sorted(values), dtype=torch.float64)]
        for position in sorted(others):  # positions, the held input's among them, in order
            arguments.insert(position, torch.tensor(others[position], dtype=torch.float64))
        held = self.to_torch(*arguments).double().tolist()
        return frozenset(value for value in held if math.isfinite(value))

    def pulled_need(self, need: Need) -> Need | None:
        """What input 0 must hold for output 0 to meet `need`; None where the op cannot say.

        Needs flow back so a tensor's earlier readers see them: Acosh(Floor(x)) asks x >= 2, which
        a later Asin(x) could never read.
        """
        return need if self.moves_values else None

    def output_values(self, inputs: list[Values], outputs: int) -> list[Values]:
        """`values` for every output; whatever only shapes and attributes decide stays fixed, and bounds
        closed on one value hold it everywhere (Clip(x, 0, 0), Floor of values inside (0, 1))."""
        known = self.values(inputs) or ([inputs[0]] * outputs if self.moves_values else [])
        known = [v if v.one_value is None else exactly(v.one_value) for v in known]
        result = known + [Values()] * (outputs - len(known))
        if inputs and all(v.fixed for v in inputs):
            result = [replace(v, fixed=True) for v in result]
        return result

    def index_bounds(self, input_index: int, inputs: list[TensorType]) -> tuple[int, int] | None:
        """Inclusive value range an integer leaf input must stay in (indices, counts), if any."""
        return None


REGISTRY: dict[str, type[OpSpec]] = {}


def spec_of(node: Node) -> OpSpec:
    """The spec instance a concrete node stands for."""
    try:
        return REGISTRY[node.op](node.attrs)
    except KeyError:
        raise ValueError(f"unknown operator {node.op!r} in graph") from None


def register(cls: type[OpSpec]) -> type[OpSpec]:
    """Class decorator: make a spec visible to the generator and the property tests."""
    if cls.name() in REGISTRY:
        raise ValueError(f"spec {cls.name()} registered twice")
    REGISTRY[cls.name()] = cls
    return cls


def any_rank(arity: int, ranks: Sequence[int] = range(MAX_RANK + 1)) -> tuple[tuple[int, ...], ...]:
    """Every combination of the given ranks for `arity` inputs."""
    return tuple(itertools.product(ranks, repeat=arity))


def same_rank(arity: int, ranks: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """All inputs share one rank from `ranks`."""
    return tuple((r,) * arity for r in ranks)


def same_dtype(arity: int, names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """All inputs share one dtype from `names`."""
    return tuple((n,) * arity for n in names)


Cond = bool | z3.BoolRef


def if_(cond: Cond, then: Dim, otherwise: Dim) -> Dim:
    """z3.If that stays a Python value when the condition is already decided."""
    if isinstance(cond, bool):
        return then if cond else otherwise
    return z3.If(cond, then, otherwise)


def or_(*conds: Cond) -> Cond:
    symbolic = [c for c in conds if not isinstance(c, bool)]
    if any(c is True for c in conds):
        return True
    return z3.Or(*symbolic) if symbolic else False


def and_(*conds: Cond) -> Cond:
    symbolic = [c for c in conds if not isinstance(c, bool)]
    if any(c is False for c in conds):
        return False
    return z3.And(*symbolic) if symbolic else True


def eq_or_one(a: Dim, b: Dim) -> Cond:
    return or_(a == b, a == 1, b == 1)


def broadcast_requires(shapes: Sequence[Sequence[Dim]]) -> list[z3.BoolRef]:
    """Numpy multidirectional broadcasting, as both ONNX and torch define it."""
    cons = []
    for a, b in itertools.combinations(shapes, 2):
        for da, db in zip(reversed(a), reversed(b)):
            cons.append(eq_or_one(da, db))
    return cons


def broadcast_shape(shapes: Sequence[Sequence[Dim]]) -> list[Dim]:
    rank = max(len(s) for s in shapes)
    out: list[Dim] = []
    for axis in range(rank):
        dims = [s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0]
        dim = dims[0]
        for other in dims[1:]:
            dim = if_(dim == 1, other, dim)
        out.append(z3.simplify(dim) if isinstance(dim, z3.ExprRef) else dim)
    return out


def product(dims: Sequence[Dim]) -> Dim:
    """Element count of a shape (a Z3 expression when any dim is symbolic)."""
    total: Dim = 1
    for dim in dims:
        total = total * dim
    return total


def sample_axes(rng: random.Random, rank: int, allow_empty: bool = False) -> list[int]:
    """A sorted random subset of a tensor's axes."""
    axes = [axis for axis in range(rank) if rng.random() < 0.5]
    if not axes and not allow_empty and rank:
        axes = [rng.randrange(rank)]
    return axes


def spell_axis(rng: random.Random, axis: int, rank: int) -> int:
    """Write an axis as ONNX allows, sometimes negative, so frontends normalize it."""
    return axis - rank if rng.random() < 0.3 else axis


def concrete(model: z3.ModelRef, value: Any) -> Any:
    """A solved value: Z3 terms (also inside lists) evaluated in `model`, Python values as they are."""
    if isinstance(value, z3.ExprRef):
        return model.eval(value, model_completion=True).as_long()
    if isinstance(value, list):
        return [concrete(model, item) for item in value]
    return value
