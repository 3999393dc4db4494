"""Known bugs: the kept bugs of a corpus, so that a campaign counts a finding it already holds as known
instead of filing it again, and draws less of what triggers one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from fuzzer.campaign.replay import corpus_cases, expected_signatures, load_expectations
from fuzzer.core.ir import Graph
from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import DrawWeight
from fuzzer.report.bug import META

KNOWN_WEIGHT = 0.2  # draw share left to an (op, dtypes) pair that triggers a kept bug: still drawn, seldom


@dataclass
class KnownBugs:
    """Signature of each kept bug -> its corpus folder name, and the (op, input dtypes) of its failing node."""

    folders: dict[str, str] = field(default_factory=dict)
    triggers: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)

    @classmethod
    def load(cls, corpus: Path) -> KnownBugs:
        """Read every kept case of `corpus` that some backend is expected to fail."""
        known = cls()
        for folder in corpus_cases(corpus):
            failing = [sig for e in load_expectations(folder)["backends"].values() for sig in expected_signatures(e)]
            if not failing:
                continue
            known.add_trigger(TestCase.load(folder).graph)
            known.folders |= {sig: folder.name for sig in failing}
        return known

    def add_trigger(self, reduced: Graph) -> None:
        """Draw less of what a reduced bug case fails on: the reducer leaves the failing node last."""
        last = reduced.nodes[-1]
        self.triggers.add((last.op, tuple(reduced.types[name].dtype for name in last.inputs)))

    def learn(self, bug_folder: Path) -> None:
        """A bug the campaign itself filed is known from now on; an unreduced case names no failing node."""
        if json.loads((bug_folder / META).read_text()).get("reduction"):
            self.add_trigger(TestCase.load(bug_folder).graph)

    def weight(self, inner: DrawWeight | None) -> DrawWeight:
        """`inner`'s share (1 without one), lowered for the pairs that trigger a kept bug."""

        def weight(op: str, dtypes: tuple[str, ...]) -> float:
            share = inner(op, dtypes) if inner else 1.0
            return share * KNOWN_WEIGHT if (op, dtypes) in self.triggers else share

        return weight
