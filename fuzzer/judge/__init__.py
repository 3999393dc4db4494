"""Verdicts: outputs compared with the references, and float64 attribution of what rounding explains.

`judge_case` is the one entry point: every stage that runs a case (campaign, reducer, triggers,
replay, the CLI) judges it here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from fuzzer.core.testcase import TestCase
from fuzzer.judge.compare import Verdict, crashes_only, judge
from fuzzer.judge.rounding import refine
from oracles.base import Outcome, Restriction
from oracles.session import OracleSession


def judge_case(
    session: OracleSession,
    case: TestCase,
    finite: bool,
    only: Collection[str] | None = None,
    restrictions: Mapping[str, Restriction] | None = None,
) -> tuple[dict[str, Outcome], Verdict]:
    """Run the case on the session's backends (or those in `only`, some with less of their compiler
    under `restrictions`) and judge it, dropping what rounding explains. A case whose values are not
    all `finite` is judged on crashes alone: a NaN that a Max absorbs leaves outputs any two
    implementations may compute differently."""
    outcomes = session.run(case, only, restrictions)
    return outcomes, _verdict(session, case, finite, outcomes)


def _verdict(session: OracleSession, case: TestCase, finite: bool, outcomes: dict[str, Outcome]) -> Verdict:
    verdict = judge(outcomes, session.infos)
    if not finite:
        return crashes_only(verdict)
    return refine(case, outcomes, verdict, session.infos)


def judge_cases(
    session: OracleSession, cases: Sequence[TestCase], finite: Sequence[bool], batch_sizes: Mapping[str, int]
) -> list[tuple[dict[str, Outcome], Verdict]]:
    """`judge_case` for several cases at once, with the backends in `batch_sizes` compiling them in
    batches. A batched result that is not ok is judged again from a run of its case alone, so every
    finding stands on a case of its own and a batch never decides a verdict."""
    judged = []
    for case, case_finite, outcomes in zip(cases, finite, session.run_many(cases, batch_sizes)):
        verdict = _verdict(session, case, case_finite, outcomes)
        again = [name for name, outcome in outcomes.items() if outcome.batch > 1 and verdict.statuses[name] != "ok"]
        if again:
            outcomes |= session.run(case, again)
            verdict = _verdict(session, case, case_finite, outcomes)
        judged.append((outcomes, verdict))
    return judged
