"""Verdicts: outputs compared with the references, and float64 attribution of what rounding explains.

`judge_case` is the one entry point: every stage that runs a case (campaign, reducer, triggers,
replay, the CLI) judges it here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.sampling import Uncomparable
from fuzzer.judge.compare import Verdict, crashes_only, judge
from fuzzer.judge.rounding import refine
from oracles.base import Outcome, Restriction
from oracles.session import OracleSession


def judge_case(
    session: OracleSession,
    case: TestCase,
    uncomparable: Uncomparable | None,
    only: Collection[str] | None = None,
    restrictions: Mapping[str, Restriction] | None = None,
) -> tuple[dict[str, Outcome], Verdict]:
    """Run the case on the session's backends (or those in `only`, some with less of their compiler
    under `restrictions`) and judge it, dropping what rounding explains. A case whose values are
    `uncomparable` is judged on crashes alone: a NaN that a Max absorbs, or a near-constant group
    normalized, leaves outputs any two implementations may compute differently."""
    outcomes = session.run(case, only, restrictions)
    verdict = judge(outcomes, session.infos)
    if uncomparable:
        return outcomes, crashes_only(verdict, uncomparable)
    return outcomes, refine(case, outcomes, verdict, session.infos)
