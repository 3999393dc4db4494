"""Verdicts: outputs compared with the references, and float64 attribution of what rounding explains.

`judge_case` is the one entry point: every stage that runs a case (reducer, triggers, replay, the
CLI) judges it here, and a campaign's lanes through `judge_cases`, which batches and times it.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

import numpy as np

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.readouts import Readout, case_leaves, interpreted, read_all, readouts_of
from fuzzer.inputs.sampling import Uncomparable
from fuzzer.judge.compare import Verdict, all_finite, crashes_only, judge
from fuzzer.judge.rounding import refine
from oracles.base import BackendInfo, Outcome, Restriction
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
    return _judged(session, case, uncomparable, outcomes)


def _judged(
    session: OracleSession, case: TestCase, uncomparable: Uncomparable | None, outcomes: dict[str, Outcome]
) -> tuple[dict[str, Outcome], Verdict]:
    """The outcomes, eager's readout values added to the torch reference's, and their verdict."""
    readouts = readouts_of(case, {kind for name in outcomes for kind in session.infos[name].readouts})
    values = reference_readouts(case, readouts)
    outcomes = {
        name: replace(o, outputs={**o.outputs, **values})
        if _torch_reference(session.infos[name]) and o.status == "ok" and o.outputs is not None
        else o
        for name, o in outcomes.items()
    }
    verdict = judge(outcomes, session.infos, readouts)
    if uncomparable:
        return outcomes, crashes_only(verdict, uncomparable)
    return outcomes, refine(case, outcomes, verdict, session.infos, readouts)


def judge_cases(
    session: OracleSession,
    cases: Sequence[TestCase],
    uncomparable: Sequence[Uncomparable | None],
    batch_sizes: Mapping[str, int],
) -> list[tuple[dict[str, Outcome], Verdict, dict[str, float]]]:
    """`judge_case` for several cases at once, with the backends in `batch_sizes` compiling them in
    batches. A batched result that is not ok is judged again from a run of its case alone, so every
    finding stands on a case of its own and a batch never decides a verdict. With each verdict come
    the seconds of dlfuzz's own work on it: `compare`, and `ipc` (the run beyond its backends' work,
    shared evenly)."""
    clock = time.monotonic()
    runs = session.run_many(cases, batch_sizes)
    busy = sum(max((outcome.seconds for outcome in run.values()), default=0.0) for run in runs)
    ipc = max(0.0, time.monotonic() - clock - busy) / max(1, len(cases))
    judged = []
    for case, unjudged, outcomes in zip(cases, uncomparable, runs):
        clock = time.monotonic()
        outcomes, verdict = _judged(session, case, unjudged, outcomes)
        again = [name for name, outcome in outcomes.items() if outcome.batch > 1 and verdict.statuses[name] != "ok"]
        if again:
            outcomes, verdict = _judged(session, case, unjudged, outcomes | session.run(case, again))
        compare = time.monotonic() - clock - sum(outcomes[name].seconds for name in again)
        judged.append((outcomes, verdict, {"compare": max(0.0, compare), "ipc": ipc}))
    return judged


def reference_readouts(case: TestCase, readouts: Sequence[Readout]) -> dict[str, np.ndarray]:
    """Eager's values of the readouts, where they are finite: a non-finite gradient is not judged, as
    a non-finite forward value is not. They join the torch reference's outputs."""
    values = read_all(readouts, case_leaves(case), interpreted(case.graph))
    return {name: value for name, value in values.items() if all_finite({name: value})}


def _torch_reference(info: BackendInfo) -> bool:
    return info.reference and info.frontend == "torch"
