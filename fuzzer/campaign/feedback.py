"""The feedback loop: what a campaign has covered steers what it draws and which cases it mutates.

Coverage is folded from stats lines alone (each backend's fired optimizations, each node's op, dtypes
and attribute bins, the patterns a case holds), so a resumed campaign rebuilds it from stats.jsonl;
the pool's graphs are kept on disk beside it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzer.core.files import write_atomic
from fuzzer.core.ir import Graph
from fuzzer.generate.generator import DrawWeight, PatternWeight

MUTATION_SHARE = 0.3  # of cases, once the pool holds any, that grow a pooled case instead of a new graph
UNDER_DRAWN_BOOST = 4.0
POOL_SIZE = 256  # the newest cases that fired something new


def attribute_bin(value: Any) -> str:
    """A coarse class of an attribute value: what changes an optimizer's decision, not the exact number."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return "neg" if value < 0 else str(value) if value < 2 else "many"
    if isinstance(value, float):
        return "neg" if value < 0 else "0" if value == 0 else "pos"
    if isinstance(value, (list, tuple)):
        return f"len{len(value)}"
    return type(value).__name__


def node_kinds(graph: Graph) -> list[str]:
    """Each node as op, input dtypes and attribute bins: the (op, dtype, attribute) coverage of a case."""
    kinds = set()
    for node in graph.nodes:
        dtypes = ",".join(graph.types[name].dtype for name in node.inputs)
        attrs = ",".join(f"{key}={attribute_bin(value)}" for key, value in sorted(node.attrs.items()))
        kinds.add(f"{node.op}({dtypes}){{{attrs}}}")
    return sorted(kinds)


@dataclass
class Coverage:
    """What a campaign has exercised so far. A backend's composition records (what it fused or folded,
    named by the ops involved: BackendInfo.compositions) are counted apart from its optimizations: almost
    every new graph makes new ones, so as novelty they would pool every case and favour every pattern alike."""

    compositions_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # backend -> composition families
    optimizations: dict[str, Counter[str]] = field(default_factory=dict)  # backend -> optimization -> cases
    compositions: dict[str, Counter[str]] = field(default_factory=dict)  # backend -> composition -> cases
    kinds: Counter[str] = field(default_factory=Counter)
    ops: Counter[str] = field(default_factory=Counter)
    pattern_uses: Counter[str] = field(default_factory=Counter)
    pattern_finds: Counter[str] = field(default_factory=Counter)  # new coverage found by cases holding it

    def fold(self, line: dict[str, Any]) -> int:
        """Add one stats line; returns how many (backend, optimization) and node kinds it covered first."""
        new = 0
        for backend, result in line.get("backends", {}).items():
            families = self.compositions_of.get(backend, ())
            fired = self.optimizations.setdefault(backend, Counter())
            composed = self.compositions.setdefault(backend, Counter())
            for key, count in result.get("optimizations", {}).items():
                if count <= 0:
                    continue
                if key.partition(":")[0] in families:
                    composed[key] += 1
                else:
                    new += key not in fired
                    fired[key] += 1
        for kind in line.get("kinds", []):
            new += kind not in self.kinds
            self.kinds[kind] += 1
            self.ops[kind.partition("(")[0]] += 1
        for name in line.get("patterns", {}):
            self.pattern_uses[name] += 1
            self.pattern_finds[name] += new
        return new

    def pattern_weight(self, name: str) -> float:
        """Patterns drawn rarely, or whose cases keep firing new optimizations, are drawn more."""
        return (1 + self.pattern_finds[name]) / (1 + self.pattern_uses[name])

    def op_weight(self, support: DrawWeight | None) -> DrawWeight:
        """The support matrix's share, lowered for ops drawn more often than the average op and raised
        (up to UNDER_DRAWN_BOOST) for those drawn less: spliced patterns take node slots, so without the
        raise a guided campaign drew fewer op types than the blind draw and fired fewer distinct fusions."""

        def weight(op: str, dtypes: tuple[str, ...]) -> float:
            share = support(op, dtypes) if support else 1.0
            if not self.ops:
                return share
            mean = sum(self.ops.values()) / len(self.ops)
            return share * min(UNDER_DRAWN_BOOST, max(0.25, (mean + 1) / (self.ops[op] + 1)))

        return weight


@dataclass
class Plan:
    """How one case is drawn: the weights to use, and the pooled case it grows (if any)."""

    op_weight: DrawWeight | None = None
    pattern_weight: PatternWeight | None = None
    base_id: str | None = None
    base: Graph | None = None


@dataclass
class Feedback:
    """Coverage plus the pool of cases that covered something first; pooled graphs live in `<out>/pool/`."""

    folder: Path
    coverage: Coverage = field(default_factory=Coverage)
    pool: dict[str, Graph] = field(default_factory=dict)

    @classmethod
    def resume(cls, folder: Path, lines: list[dict[str, Any]], compositions: dict[str, tuple[str, ...]]) -> Feedback:
        """Rebuild from a campaign's stats lines and pool folder, as the campaign left them; `compositions`
        are the backends' composition families."""
        feedback = cls(folder, Coverage(compositions))
        for line in lines:
            feedback.coverage.fold(line)
            path = folder / f"{line['id']}.json"
            if line.get("pooled") and path.exists():
                feedback._keep(line["id"], Graph.from_json(json.loads(path.read_text())))
        return feedback

    def plan(self, seed: int, support: DrawWeight | None) -> Plan:
        """Deterministic in the seed and the coverage so far."""
        plan = Plan(self.coverage.op_weight(support), self.coverage.pattern_weight)
        rng = random.Random(f"mutate-{seed}")  # a stream apart from the generator's own
        if self.pool and rng.random() < MUTATION_SHARE:
            plan.base_id = rng.choice(sorted(self.pool))
            plan.base = self.pool[plan.base_id]
        return plan

    def learn(self, line: dict[str, Any], graph: Graph | None) -> None:
        """Fold a finished case in; a valid one that covered something first joins the pool (marked in its line)."""
        new = self.coverage.fold(line)
        if new and graph is not None and line.get("verdict") not in (None, "invalid"):
            write_atomic(self.folder / f"{line['id']}.json", graph.dumps().encode())
            self._keep(line["id"], graph)
            line["pooled"] = True

    def _keep(self, case_id: str, graph: Graph) -> None:
        self.pool[case_id] = graph
        while len(self.pool) > POOL_SIZE:
            del self.pool[next(iter(self.pool))]
