"""Verdicts: outputs compared with the references, and float64 attribution of what rounding explains.

`judge_outcomes` is the one place a verdict is made: every stage that runs a case (campaign, reducer,
triggers, replay, the CLI) judges it here, through `judge_case` where running and judging need not be
timed apart.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from fuzzer.core.testcase import TestCase
from fuzzer.judge.compare import Verdict, crashes_only, judge
from fuzzer.judge.rounding import refine
from oracles.base import BackendInfo, Outcome, Restriction
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
    return outcomes, judge_outcomes(case, outcomes, session.infos, finite)


def judge_outcomes(
    case: TestCase, outcomes: dict[str, Outcome], infos: dict[str, BackendInfo], finite: bool
) -> Verdict:
    """The verdict on outcomes already run, apart from running them so a campaign can time comparing
    on its own; `judge_case` says what it drops."""
    verdict = judge(outcomes, infos)
    if not finite:
        return crashes_only(verdict)
    return refine(case, outcomes, verdict, infos)
