"""Input search: step a graph's inputs and weights by gradient until every value is finite and in domain.

Leaves start from the same signed, wide draw as random sampling and move only where a spec's
`domain_loss` (or an overflow) asks them to, so negatives and sign changes survive wherever the
graph allows them. Integer and bool leaves are searched through a float shadow (rounded or
thresholded); ops without a useful gradient (Floor, comparisons, casts to int, ...) pass the
gradient straight through from their inputs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from fuzzer.core.dtypes import dtype
from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.inputs.sampling import (
    ValueResult,
    constant_outputs,
    fixed_outputs,
    leaf_bounds,
    negative_share,
    random_tensor,
)
from specs.base import OpSpec, spec_of
from specs.interpret import interpret, node_outputs

# Backward functions whose gradient is zero almost everywhere, or missing: replaced by straight-through.
FLAT_GRADIENTS = frozenset(
    {
        "FloorBackward0",
        "CeilBackward0",
        "RoundBackward0",
        "RoundBackward1",
        "SignBackward0",
        "TruncBackward0",
        "NotImplemented",
    }
)
LEAK = 0.01  # weight of the straight-through path added to elementwise ops once plain gradients vanish
HUGE = 1e300  # stands in for an infinite gradient
STEP_FRACTIONS = (1.0, 0.3, 0.1)  # backtracking: the full step, then shorter ones
PROGRESS = 0.1  # a loss must drop by this fraction to count as progress
FRUITLESS_RESTARTS = 2  # once finite, stop after this many restarts that found nothing better
USEFUL_RETRIES = 1  # fresh draws tried behind outputs that came out constant
SEPARATE_TERMS = 4  # failing nodes that get a step of their own; the rest share one
WHOLE_CONE_RESTART = 4  # from this restart on, one-signed draws cover every leaf behind the failing node


@dataclass(frozen=True)
class SearchOptions:
    """Budget and step size of the search; the defaults keep a 10-node graph within milliseconds."""

    max_steps: int = 300
    # CPU seconds of the searching thread per case (on an idle machine max_steps ends the search first):
    # a wall-clock budget would hand a busy machine's load to the search's results.
    time_budget: float = 1.0
    max_move: float = 2.0  # largest change of one leaf element in one step
    overshoot: float = 1.5  # Polyak step length as a multiple of the linearized distance to zero loss
    patience: int = 8  # accepted steps without clear progress before the elements involved are drawn again

    def __post_init__(self) -> None:
        if self.max_steps < 0 or self.time_budget <= 0 or self.max_move <= 0 or self.patience < 1:
            raise ValueError(f"search options out of range: {self}")


class _Leaf:
    """A graph input or weight as the float tensor the search steps; ints round it, bools threshold it."""

    def __init__(self, name: str, t: TensorType, bounds: tuple[int, int] | None) -> None:
        self.name = name
        self.type = dtype(t.dtype)
        self.bounds = bounds
        self.shadow = torch.zeros(t.shape, dtype=torch.float64 if t.dtype == "float64" else torch.float32)
        self.shadow.requires_grad_(True)

    def assign(self, value: np.ndarray, where: torch.Tensor | None = None) -> None:
        """Set the shadow from a drawn value, everywhere or only at the `where` mask."""
        fresh = torch.from_numpy(np.where(value, 1.0, -1.0) if self.type.is_bool else value).to(self.shadow.dtype)
        with torch.no_grad():
            self.shadow.copy_(fresh if where is None else torch.where(where, fresh, self.shadow))

    def tensor(self) -> torch.Tensor:
        """The value the graph sees; floats stay differentiable, the rest reach autograd through `shadow`."""
        if self.type.is_float:
            return self.shadow if self.shadow.dtype == self.type.torch else self.shadow.to(self.type.torch)
        if self.type.is_bool:
            return self.shadow.detach() > 0
        info = torch.iinfo(self.type.torch)
        low, high = self.bounds or (info.min, info.max)
        return self.shadow.detach().round().clamp(low, high).to(self.type.torch)

    def numpy(self) -> np.ndarray:
        return self.tensor().detach().numpy().copy()


@dataclass
class _Pass:
    """One forward run: which nodes went wrong and the losses that would set them right."""

    tensors: dict[str, torch.Tensor]
    first_bad: int | None = None  # first node out of its domain or with a non-finite output
    blocked: int | None = None  # first node whose output went non-finite from finite inputs
    hard: list[torch.Tensor] = field(default_factory=list)  # losses of nodes with non-finite outputs
    soft: list[torch.Tensor] = field(default_factory=list)  # domain violations with finite outputs

    @property
    def clean(self) -> bool:
        return self.first_bad is None

    @property
    def finite(self) -> bool:
        return self.blocked is None

    def loss(self) -> torch.Tensor:
        """While values are non-finite only their nodes count: margins elsewhere must not pull against them."""
        terms = self.hard or self.soft
        return torch.stack([term.to(torch.float64) for term in terms]).sum() if terms else torch.zeros(())

    def rank(self, nodes: int) -> tuple[int, int, float]:
        """Larger is better: a later first problem (finite beats non-finite), fewer such nodes, less loss.

        Mending one node can uncover failures behind it that were hidden (skipped) before, so how far
        the values get comes before how many nodes fail.
        """
        if self.blocked is not None:
            reach = self.blocked
        else:
            reach = nodes + (self.first_bad if self.first_bad is not None else nodes)
        return reach, -len(self.hard or self.soft), -self.loss().item()


def search_values(
    graph: Graph, seed: int, options: SearchOptions = SearchOptions(), held: Mapping[str, np.ndarray] | None = None
) -> ValueResult:
    """Values for every leaf of `graph` keeping each intermediate finite and inside its op's domain;
    the leaves in `held` keep their values (another value set of a compiled graph varies its inputs alone).

    Runs on one torch thread: the tensors are tiny, and a thread pool on a busy machine costs
    milliseconds per op.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _Search(graph, seed, options, held or {}).run()
    finally:
        torch.set_num_threads(threads)


class _Search:
    """The state of one search: the leaves, the best values seen, and the step and time counts."""

    def __init__(self, graph: Graph, seed: int, options: SearchOptions, held: Mapping[str, np.ndarray]) -> None:
        self.graph = graph
        self.options = options
        self.rng = np.random.default_rng(seed)
        self.specs: list[OpSpec] = [spec_of(node) for node in graph.nodes]
        bounds = leaf_bounds(graph)
        self.held = {name: np.asarray(value) for name, value in held.items()}
        varied = [name for name in graph.leaves if name not in self.held]
        self.leaves = [_Leaf(name, graph.types[name], bounds.get(name)) for name in varied]
        self.upstream = _upstream_leaves(graph)
        self.fixed = fixed_outputs(graph)  # constant by construction: no redraw changes them
        self.leak = False
        self.runs = 0  # forward runs so far; every run after the first is a step
        self.restarts = 0
        self.deadline = math.inf
        self.moved: list[tuple[_Leaf, torch.Tensor]] = []  # leaf elements the last gradient would move

    def run(self) -> ValueResult:
        start = time.monotonic()
        self._draw(self.leaves)
        current = self._forward()
        self.deadline = time.thread_time() + self.options.time_budget  # the first run may pay one-off imports
        current = self._settle(current)
        for _ in range(USEFUL_RETRIES):
            constant = constant_outputs(self.graph, current.tensors, self.fixed) if current.clean else []
            if not constant or not self._budget_left():
                break
            current = self._vary(current, constant)
        values = self.held | {leaf.name: leaf.numpy() for leaf in self.leaves}
        return ValueResult(
            values,
            current.finite,
            "search",
            self.runs - 1,
            time.monotonic() - start,
            first_bad_node=current.first_bad,
            constant_outputs=len(constant_outputs(self.graph, current.tensors, self.fixed)) if current.finite else 0,
            negative_share=negative_share(self.graph, values),
            extra={"in_domain": current.clean},
        )

    def _settle(self, current: _Pass) -> _Pass:
        """Step, backtrack and restart until the values are clean or the budget is spent; the best run seen."""
        best_rank, best_leaves = self._rank(current), self._snapshot()
        progress, stale, fruitless_restarts = best_rank, 0, 0
        while not current.clean and self._budget_left():
            if current.finite and fruitless_restarts >= FRUITLESS_RESTARTS:
                break  # what is left is a margin the graph's structure will not give up
            improved = self._descend(current)
            if improved is not None:
                current = improved
                rank = self._rank(current)
                stale = 0 if _clearly_better(rank, progress) else stale + 1
                progress = max(progress, rank)
            if improved is None or stale >= self.options.patience:
                self._restart(current.blocked if current.blocked is not None else current.first_bad or 0)
                current = self._forward()
                progress, stale = self._rank(current), 0
                fruitless_restarts += 1
            if self._rank(current) > best_rank:
                best_rank, best_leaves, fruitless_restarts = self._rank(current), self._snapshot(), 0
        if self._rank(current) < best_rank:
            self._restore(best_leaves)
            current = self._forward()
        return current

    def _vary(self, current: _Pass, constant: list[str]) -> _Pass:
        """Redraw the leaves behind outputs that hold one value and settle again; keep it if it is better.

        A comparison with a scalar beyond every element, or a Relu of all negatives, is constant by
        chance; such an output would hide any miscompilation in the nodes that feed it.
        """
        saved = self._snapshot()
        producers = {name: index for index, node in enumerate(self.graph.nodes) for name in node.outputs}
        behind = set().union(*(self.upstream[producers[name]] for name in constant))
        self._draw([leaf for leaf in self.leaves if leaf.name in behind])
        varied = self._settle(self._forward())
        if varied.clean and len(constant_outputs(self.graph, varied.tensors, self.fixed)) < len(constant):
            return varied
        self._restore(saved)
        return self._forward()

    def _budget_left(self) -> bool:
        return self.runs <= self.options.max_steps and time.thread_time() < self.deadline

    def _rank(self, run: _Pass) -> tuple[int, int, float]:
        return run.rank(len(self.graph.nodes))

    def _descend(self, current: _Pass) -> _Pass | None:
        """A step along the gradient that makes things better, found by backtracking, or at full length
        no worse; None if there is none."""
        direction = self._direction(current)
        if direction is None and not self.leak:
            self.leak = True  # saturated ops (Relu of negatives, Floor) hide the way; let a little through
            current = self._forward()
            direction = self._direction(current)
        if direction is None:
            return None
        rank, saved = self._rank(current), self._snapshot()
        for fraction in STEP_FRACTIONS:
            if not self._budget_left():
                break
            self._move(direction, fraction)
            trial = self._forward()
            if self._rank(trial) > rank or (fraction == STEP_FRACTIONS[0] and self._rank(trial) == rank):
                return trial  # a full step that changes nothing crosses a plateau (Floor, Sign, a threshold)
            self._restore(saved)
        return None

    def _direction(self, current: _Pass) -> list[tuple[_Leaf, torch.Tensor]] | None:
        """Per leaf, the sum of one capped Polyak step per failing node; None without any gradient.

        Failing nodes' losses differ by orders of magnitude (an overflow against a margin of 0.05):
        one step for their sum would serve only the largest.
        """
        terms = current.hard or current.soft
        groups = list(terms[: SEPARATE_TERMS - 1])
        if len(terms) >= SEPARATE_TERMS:
            groups.append(torch.stack([term.double() for term in terms[SEPARATE_TERMS - 1 :]]).sum())
        changes: dict[int, torch.Tensor] = {}
        for position, loss in enumerate(groups):
            for index, change in self._polyak(loss, retain=position < len(groups) - 1):
                changes[index] = changes[index] + change if index in changes else change
        self.moved = [(self.leaves[index], change != 0) for index, change in changes.items()]
        return [(self.leaves[index], change) for index, change in changes.items()] or None

    def _polyak(self, loss: torch.Tensor, retain: bool) -> list[tuple[int, torch.Tensor]]:
        """Leaf changes that together make a Polyak step toward zero `loss`, capped at max_move per element.

        Each leaf takes an equal share of the step, scaled by its own gradient: one step for all
        leaves at once would spend itself on a shared scalar weight whose gradient sums a whole tensor's.
        """
        value = loss.item()
        if not loss.requires_grad or not math.isfinite(value):
            return []
        shadows = [leaf.shadow for leaf in self.leaves]
        grads = torch.autograd.grad(loss, shadows, allow_unused=True, retain_graph=retain)
        present = []
        for index, grad in enumerate(grads):
            if grad is not None:
                grad = torch.nan_to_num(grad.double(), nan=0.0, posinf=HUGE, neginf=-HUGE)
                scale = float(grad.abs().max()) if grad.numel() else 0.0
                if scale > 0.0:
                    present.append((index, grad / scale, scale))
        changes = []
        for index, unit, scale in present:
            length = self.options.overshoot * value / (len(present) * scale * float((unit**2).sum()))
            if scale >= HUGE:  # an infinite slope (Sqrt at 0) says nothing of the distance: take a full step
                length = self.options.max_move
            changes.append((index, -unit * min(length, self.options.max_move)))
        return changes

    def _move(self, direction: list[tuple[_Leaf, torch.Tensor]], fraction: float) -> None:
        with torch.no_grad():
            for leaf, change in direction:
                leaf.shadow.add_((change * fraction).to(leaf.shadow.dtype))

    def _snapshot(self) -> list[torch.Tensor]:
        return [leaf.shadow.detach().clone() for leaf in self.leaves]

    def _restore(self, shadows: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for leaf, shadow in zip(self.leaves, shadows):
                leaf.shadow.copy_(shadow)

    def _draw(self, leaves: list[_Leaf]) -> None:
        for leaf in leaves:
            leaf.assign(random_tensor(self.graph.types[leaf.name], self.rng, leaf.bounds))

    def _restart(self, node_index: int) -> None:
        """Draw afresh the leaf elements the gradient would move, or else every leaf behind the failing node.

        Gradients cannot cross a pole (Log of a Reciprocal wants the reciprocal's input to jump from
        negative to positive); a new draw of just the elements involved crosses it half the time each.
        Every second restart draws them positive instead (floats only), and from the fourth on every
        leaf behind the failing node: where many elements must agree in sign (Acosh of a broadcast
        Div, Log of a sum), fair coins never all land on one side.
        """
        self.restarts += 1
        one_signed = self.restarts % 2 == 0
        moved: list[tuple[_Leaf, torch.Tensor | None]] = [(leaf, mask) for leaf, mask in self.moved if mask.any()]
        if not moved or (one_signed and self.restarts >= WHOLE_CONE_RESTART):
            moved = [(leaf, None) for leaf in self.leaves if leaf.name in self.upstream[node_index]]
        for leaf, mask in moved:
            draw = random_tensor(self.graph.types[leaf.name], self.rng, leaf.bounds)
            leaf.assign(np.asarray(np.abs(draw)) if one_signed and leaf.type.is_float else draw, mask)

    def _forward(self) -> _Pass:
        """Run every node whose inputs are finite; nodes behind a non-finite value are left out."""
        self.runs += 1
        leaves = {name: torch.from_numpy(value) for name, value in self.held.items()}
        leaves |= {leaf.name: leaf.tensor() for leaf in self.leaves}
        carriers: dict[str, torch.Tensor | None] = {name: None for name in self.held}
        carriers |= {leaf.name: leaf.shadow for leaf in self.leaves}
        result = _Pass({})

        def step(index: int, node: Node, spec: OpSpec, args: list[torch.Tensor]) -> list[torch.Tensor] | None:
            violation = _positive(spec.domain_loss(*args))
            outputs = _run_node(spec, args)
            sources = [c for c in (carriers[name] for name in node.inputs) if c is not None and c.requires_grad]
            seen, finite = [], True
            for name, out in zip(node.outputs, outputs):
                value, carriers[name] = _proxied(out, sources, self.leak)
                seen.append(value)
                finite = finite and not (out.is_floating_point() and not bool(torch.isfinite(out).all()))
            if violation is not None or not finite:
                result.first_bad = index if result.first_bad is None else result.first_bad
            if not finite:
                result.blocked = index if result.blocked is None else result.blocked
                result.hard.append(violation if violation is not None else _overflow_loss(args))
                return None  # what reads a non-finite value is not run
            if violation is not None:
                result.soft.append(violation)
            return seen

        result.tensors = interpret(self.graph, leaves, step, self.specs)
        return result


def _run_node(spec: OpSpec, args: list[torch.Tensor]) -> list[torch.Tensor]:
    """The node's outputs. A lowering torch cannot differentiate in a secondary input (batch_norm's
    running mean and variance, nll_loss's weight) runs with those detached, so the gradient still
    flows to the data; one it cannot differentiate at all runs on detached inputs, and `_proxied`
    then passes the gradient straight through it."""
    try:
        return node_outputs(spec, args)
    except RuntimeError:
        pass
    try:
        return node_outputs(spec, [args[0], *(a.detach() for a in args[1:])])
    except RuntimeError:
        return node_outputs(spec, [a.detach() for a in args])


def _clearly_better(rank: tuple[int, int, float], than: tuple[int, int, float]) -> bool:
    """Fewer or later problems, or a loss down by a real fraction: not a crawl that would take all budget."""
    return rank[:2] > than[:2] or rank[2] > than[2] + PROGRESS * abs(than[2])


def _positive(loss: torch.Tensor | None) -> torch.Tensor | None:
    """The domain loss if it signals a violation (a NaN loss counts as one, with no gradient)."""
    if loss is None:
        return None
    value = loss.item()
    if value > 0 and math.isfinite(value):
        return loss
    return None if value <= 0 else torch.ones((), dtype=torch.float64)


def _proxied(out: torch.Tensor, sources: list[torch.Tensor], leak: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The node output as later nodes see it, and the tensor that carries its gradient back.

    Where the op itself gives no usable gradient (non-float outputs, Floor-like steps, missing
    derivatives), the gradient passes straight through to the inputs; in leak mode a small
    straight-through path is added to elementwise ops too, so saturated ones (Relu of negatives) still move.
    """
    natural = out.grad_fn is not None and type(out.grad_fn).__name__ not in FLAT_GRADIENTS
    if out.is_floating_point() and natural:
        same_shape = [source for source in sources if source.shape == out.shape] if leak else []
        if not same_shape:
            return out, out
        value = out + LEAK * (same_shape[0] - same_shape[0].detach()).to(out.dtype)
        return value, value
    surrogate = _surrogate(sources, out.shape)
    if surrogate is None:
        return out, (out if out.requires_grad else None)
    through = surrogate - surrogate.detach()
    if not out.is_floating_point():
        return out, out.detach().to(through.dtype) + through
    value = out.detach() + through.to(out.dtype)
    return value, value


def _surrogate(sources: list[torch.Tensor], shape: torch.Size) -> torch.Tensor | None:
    """A differentiable stand-in of the given shape built from the inputs' gradient carriers."""
    parts = []
    numel = math.prod(shape)
    for source in sources:
        if source.shape == shape:
            parts.append(source)
        elif source.numel() == numel:
            parts.append(source.reshape(shape))
        else:
            try:
                parts.append(torch.broadcast_to(source, shape))
            except RuntimeError:
                parts.append(source.mean().expand(shape))
    return sum(parts[1:], parts[0]) if parts else None


def _overflow_loss(args: list[torch.Tensor]) -> torch.Tensor:
    """An op without a domain of its own overflowed: pull the magnitudes of its float inputs down."""
    terms = [torch.log1p(a.abs().double()).sum() for a in args if a.is_floating_point() and a.requires_grad]
    return torch.stack(terms).sum() if terms else torch.ones((), dtype=torch.float64)


def _upstream_leaves(graph: Graph) -> list[set[str]]:
    """For each node, the graph leaves its inputs depend on."""
    reach: dict[str, set[str]] = {name: {name} for name in graph.leaves}
    result = []
    for node in graph.nodes:
        behind = set().union(*(reach[name] for name in node.inputs))
        result.append(behind)
        for name in node.outputs:
            reach[name] = behind
    return result
