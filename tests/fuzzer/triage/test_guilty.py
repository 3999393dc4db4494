from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.sampling import case_uncomparable
from fuzzer.judge import judge_case
from fuzzer.judge.compare import Finding
from fuzzer.report.bug import record_filing
from fuzzer.triage.filing import ALIASES, BugFolders, file_findings
from fuzzer.triage.guilty import find_guilt
from oracles.base import Outcome
from oracles.session import OracleSession
from tests.fuzzer.conftest import FAULTY, cases_with_sigmoid

REPORTS = Path(__file__).parents[3] / "reports" / "bugs"


@pytest.fixture(scope="module")
def staged_session() -> Iterator[OracleSession]:
    with OracleSession(["eager", "ort-noopt", f"{FAULTY}:StagedWrongOnSigmoid"], timeout=60) as session:
        yield session


def _finding(session: OracleSession, case: TestCase, backend: str) -> tuple[Finding, Outcome]:
    outcomes, verdict = judge_case(session, case, case_uncomparable(case))
    (finding,) = [f for f in verdict.findings if f.backend == backend]
    return finding, outcomes[backend]


def test_the_first_stage_showing_it_and_the_switch_it_needs_are_named(staged_session: OracleSession) -> None:
    case = cases_with_sigmoid(1)[0]
    finding, outcome = _finding(staged_session, case, "staged-sigmoid")
    assert outcome.stages == ("parse", "fold", "fuse") and "FoldSigmoid" in outcome.switches
    guilt = find_guilt(staged_session, case, finding, outcome, 60)
    assert guilt is not None and guilt.complete
    assert (guilt.stage, guilt.first, guilt.switches, guilt.label) == ("fold", 2, ["FoldSigmoid"], "FoldSigmoid")


def test_a_spent_budget_is_an_incomplete_search(staged_session: OracleSession) -> None:
    case = cases_with_sigmoid(1)[0]
    finding, outcome = _finding(staged_session, case, "staged-sigmoid")
    guilt = find_guilt(staged_session, case, finding, outcome, 0)
    assert guilt is not None and not guilt.complete and guilt.checks == 0


def test_a_new_bug_is_filed_under_its_guilty_pass_and_its_later_sightings_join_it(
    tmp_path: Path, staged_session: OracleSession
) -> None:
    filed = []
    for case in cases_with_sigmoid(2):
        outcomes, verdict = judge_case(staged_session, case, case_uncomparable(case))
        filed += file_findings(BugFolders(tmp_path, record_filing), case, outcomes, verdict, staged_session, 60)
    assert len(set(filed)) == 1 and filed[0].startswith("staged-sigmoid@FoldSigmoid-mismatch-Sigmoid-")
    folder = tmp_path / filed[0]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["guilt"]["stage"] == "fold" and meta["guilt"]["switches"] == ["FoldSigmoid"]
    report = (folder / "report.md").read_text()
    assert report.startswith("# [staged-sigmoid] wrong result by FoldSigmoid for a graph of Sigmoid")
    assert "parse → **fold** → fuse" in report and "leaving out `FoldSigmoid` alone cures it" in report
    assert len((folder / "occurrences.jsonl").read_text().splitlines()) == 2
    aliases = json.loads((tmp_path / ALIASES).read_text())
    assert filed[0] in aliases.values()


def test_a_real_tvm_crash_that_surfaces_in_fold_constant_comes_in_with_the_build(real_session: OracleSession) -> None:
    """TVM's resize legalization divides by zero; FoldConstant only legalizes the constant first."""
    case = TestCase.load(REPORTS / "tvm-crash-compile-InternalError-FoldConstant-4bdfd87f")
    finding, outcome = _finding(real_session, case, "tvm")
    guilt = find_guilt(real_session, case, finding, outcome, 120)
    assert guilt is not None and guilt.complete
    assert (guilt.stage, guilt.first, guilt.switches) == ("tvm.compile", 1, [])


def test_a_real_inductor_mismatch_is_its_lowerings(real_session: OracleSession) -> None:
    """int32 MatMul returns int64 only with Inductor's own lowerings; aot_eager with decompositions is right."""
    case = TestCase.load(REPORTS / "inductor-mismatch-MatMul-0bb92d42")
    finding, outcome = _finding(real_session, case, "inductor")
    guilt = find_guilt(real_session, case, finding, outcome, 120)
    assert guilt is not None and guilt.complete
    assert (guilt.stage, guilt.switches) == ("inductor", ["lowerings"])
