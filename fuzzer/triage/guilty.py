"""The guilty configuration and pass of a reduced finding: the first of the backend's stages (Inductor's
eager → aot_eager → decompositions → inductor, ORT's levels, TVM's pass list) that shows it, then
which of its switches (Inductor subsystems, ORT optimizers, TVM passes through disabled_pass) it needs.

A stage is searched by bisection over prefixes, as torch's compiler bisector does over its backends;
a switch is guilty when leaving it out, and nothing else, cures the failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.sampling import case_uncomparable
from fuzzer.judge import judge_case
from fuzzer.judge.compare import Finding
from fuzzer.triage.reduce import BudgetSpent
from fuzzer.triage.signature import message_key, normalize_message
from oracles.base import Outcome, Restriction
from oracles.registry import REFERENCES
from oracles.session import OracleSession


@dataclass
class Guilt:
    """Where a failure comes in: the first stage that shows it and the switches it needs there."""

    stages: tuple[str, ...]
    first: int  # 1-based: the failure shows with stages[:first] and not with one stage fewer
    switches: list[str] = field(default_factory=list)
    checks: int = 0
    complete: bool = True

    @property
    def stage(self) -> str:
        return self.stages[self.first - 1]

    @property
    def label(self) -> str:
        """What a title and signature name: the guilty switches, else the first stage showing it."""
        return "+".join(self.switches) if self.switches else self.stage

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "stage_index": self.first,
            "stages": list(self.stages),
            "switches": self.switches,
            "label": self.label,
            "checks": self.checks,
            "complete": self.complete,
        }


class GuiltChecker:
    """Runs the failing backend (and the references) under restrictions and says what each does."""

    def __init__(self, session: OracleSession, case: TestCase, finding: Finding, deadline: float) -> None:
        self.session = session
        self.case = case
        self.finding = finding
        self.uncomparable = case_uncomparable(case)
        self.only = [finding.backend, *(name for name in REFERENCES if name in session.infos)]
        self.deadline = deadline
        self.checks = 0

    def fails(self, restriction: Restriction) -> bool:
        """Whether the backend still fails the same way under the restriction."""
        return self._judge(restriction)[0]

    def cures(self, restriction: Restriction) -> bool:
        """Whether the backend runs and agrees with the references under the restriction."""
        failing, outcome, agrees = self._judge(restriction)
        return not failing and outcome.status == "ok" and agrees

    def _judge(self, restriction: Restriction) -> tuple[bool, Outcome, bool]:
        if time.monotonic() > self.deadline:
            raise BudgetSpent
        self.checks += 1
        backend = self.finding.backend
        outcomes, verdict = judge_case(self.session, self.case, self.uncomparable, self.only, {backend: restriction})
        failing = any(same_failure(self.finding, found) for found in verdict.findings)
        agrees = verdict.kind != "invalid" and not any(f.backend == backend for f in verdict.findings)
        return failing, outcomes[backend], agrees


def same_failure(original: Finding, found: Finding) -> bool:
    """Same backend and symptom, and for a crash the same exception and message: not the same
    culprit, which names the pass the crash surfaced in, and that is what the search moves."""
    if (found.backend, found.symptom) != (original.backend, original.symptom):
        return False
    if original.outcome is None or found.outcome is None or original.symptom == "mismatch":
        return True
    key = (original.outcome.exc_type, normalize_message(message_key(original.outcome)))
    return key == (found.outcome.exc_type, normalize_message(message_key(found.outcome)))


def find_guilt(
    session: OracleSession, case: TestCase, finding: Finding, outcome: Outcome, budget: float
) -> Guilt | None:
    """The guilty stage and switches of a reduced finding, or None where the backend has no stages or
    the failure does not show on the full configuration; a spent budget keeps what was found."""
    if not outcome.stages:
        return None
    check = GuiltChecker(session, case, finding, time.monotonic() + budget)
    guilt = Guilt(outcome.stages, len(outcome.stages))
    try:
        guilt.first = first_failing_stage(check, len(outcome.stages))
        for switch in outcome.switches:
            if check.cures(Restriction(guilt.first, (switch,))):
                guilt.switches.append(switch)
    except BudgetSpent:
        guilt.complete = False
    guilt.checks = check.checks
    return guilt


def first_failing_stage(check: GuiltChecker, count: int) -> int:
    """The fewest stages that still fail, by bisection: a stage that brings a failure in keeps it
    for every longer prefix (the full configuration, `count`, fails)."""
    low, high = 0, count  # stages[:low] is taken to pass, stages[:high] fails
    while high - low > 1:
        middle = (low + high) // 2
        if check.fails(Restriction(middle)):
            high = middle
        else:
            low = middle
    return high
