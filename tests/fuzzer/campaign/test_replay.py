from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fuzzer.campaign.known import KnownBugs
from fuzzer.campaign.replay import (
    CHANGED,
    EXPECT_FILE,
    FIXED,
    FLAKY,
    PASS,
    REGRESSION,
    STILL_BROKEN,
    ReplayResult,
    bug_backends,
    corpus_cases,
    junit_xml,
    markdown_summary,
    refresh,
    replay_all,
    replay_case,
)
from fuzzer.core.testcase import CaseFormatError, TestCase
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import case_uncomparable, sample_values
from fuzzer.judge import judge_case
from fuzzer.report.bug import record_filing
from fuzzer.triage.filing import BugFolders, file_findings
from fuzzer.triage.signature import signature
from oracles.session import OracleSession
from tests.fuzzer.conftest import NOOP, reduce_case

RAISES = "tests.oracles.faulty_backends:Raises"


def kept_case(corpus: Path, name: str, expect: dict[str, dict[str, str]]) -> Path:
    graph = generate(1, GenOptions(max_nodes=2, ops=("Relu", "Add", "Mul")))
    folder = corpus / name
    TestCase(graph, sample_values(graph, 1).values).save(folder)
    (folder / EXPECT_FILE).write_text(json.dumps({"backends": expect}))
    return folder


@pytest.fixture(scope="module")
def session() -> OracleSession:
    with OracleSession(["eager", "ort-noopt", RAISES], timeout=30) as s:
        yield s


def test_replay_tells_regressions_known_bugs_and_fixes_apart(tmp_path: Path, session: OracleSession) -> None:
    known = kept_case(tmp_path, "known", {"raises": {"status": "crash"}, "eager": {"status": "ok"}})
    regressed = kept_case(tmp_path, "regressed", {"raises": {"status": "ok"}})
    fixed = kept_case(tmp_path, "fixed", {"ort-noopt": {"status": "crash"}})
    assert corpus_cases(tmp_path) == [fixed, known, regressed]
    results = {(r.case, r.backend): r.result for f in corpus_cases(tmp_path) for r in replay_case(f, session)}
    assert results == {
        ("known", "eager"): PASS,
        ("known", "raises"): STILL_BROKEN,
        ("regressed", "raises"): REGRESSION,
        ("fixed", "ort-noopt"): FIXED,
    }


def test_a_kept_bug_filed_under_its_guilty_pass_still_fails_by_its_plain_signature(
    tmp_path: Path, session: OracleSession
) -> None:
    # Regression: keep wrote only the folder's name (tvm@FoldConstant-...), which a replay never computes,
    # so every kept bug named by a trigger or a guilty pass replayed as 'changed', a CI failure.
    folder = kept_case(tmp_path, "guilty", {"raises": {"status": "crash"}})
    case = TestCase.load(folder)
    (finding,) = judge_case(session, case, None)[1].findings
    for aliases, result in (([signature(finding, case.graph)], STILL_BROKEN), ([], CHANGED)):
        wanted = {"status": "crash", "signature": "raises@SomePass-crash-run-0123abcd", "aliases": aliases}
        (folder / EXPECT_FILE).write_text(json.dumps({"backends": {"raises": wanted}}))
        assert [r.result for r in replay_case(folder, session)] == [result]


def test_junit_report_marks_regressions_as_failures(tmp_path: Path, session: OracleSession) -> None:
    kept_case(tmp_path, "regressed", {"raises": {"status": "ok"}, "eager": {"status": "ok"}})
    results = [r for f in corpus_cases(tmp_path) for r in replay_case(f, session)]
    suite = ET.fromstring(junit_xml(results))
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failing = [t.get("name") for t in suite.iter("testcase") if t.find("failure") is not None]
    assert failing == ["raises"]


def test_a_folder_without_kept_cases_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match="no kept cases"):
        corpus_cases(tmp_path)


def test_a_backend_whose_re_run_disagrees_is_flaky(tmp_path: Path) -> None:
    kept_case(tmp_path, "kept", {"flaky": {"status": "crash"}, "eager": {"status": "ok"}})
    with OracleSession(["eager", "ort-noopt", "tests.oracles.faulty_backends:CrashesEveryOtherRun"], 30) as flaky:
        results = {r.backend: r for r in replay_all(corpus_cases(tmp_path), [flaky])}
    assert results["eager"].result == PASS
    assert results["flaky"].result == FLAKY and results["flaky"].detail == f"{FIXED}, then a re-run: {STILL_BROKEN}"


def test_replay_spreads_cases_over_sessions_and_keeps_corpus_order(tmp_path: Path, session: OracleSession) -> None:
    for name in ("a", "b", "c"):
        kept_case(tmp_path, name, {"raises": {"status": "crash"}})
    with OracleSession(["eager", "ort-noopt", RAISES], timeout=30) as other:
        results = replay_all(corpus_cases(tmp_path), [session, other])
    assert [(r.case, r.result) for r in results] == [(name, STILL_BROKEN) for name in ("a", "b", "c")]


def test_markdown_summary_lists_what_is_not_a_plain_pass_worst_first() -> None:
    results = [
        ReplayResult("ok-case", "tvm", "ok", "ok", PASS, "", 1.0),
        ReplayResult("kept", "tvm", "crash", "crash", STILL_BROKEN, "tvm-crash-x", 1.0),
        ReplayResult("broke", "ort", "ok", "mismatch", REGRESSION, "now mismatch: ort-mismatch-y", 1.0),
    ]
    text = markdown_summary(results, {"kept": "[Apache TVM] ValueError in convert on Resize"})
    assert "**1** regressed · **1** still-failing · **1** pass" in text
    rows = [line for line in text.splitlines() if line.startswith(("| regressed", "| still-failing", "| pass"))]
    assert rows == [
        "| regressed | broke | ort | ok | mismatch | now mismatch: ort-mismatch-y |",
        "| still-failing | kept: [Apache TVM] ValueError in convert on Resize | tvm | crash | crash | tvm-crash-x |",
    ]


def test_a_first_run_that_regresses_and_a_re_run_that_passes_is_flaky_not_a_regression(tmp_path: Path) -> None:
    folder = kept_case(tmp_path, "kept", {"flaky": {"status": "ok"}, "eager": {"status": "ok"}})
    with OracleSession(["eager", "ort-noopt", "tests.oracles.faulty_backends:CrashesEveryOtherRun"], 30) as flaky:
        flaky.run(TestCase.load(folder))  # the stub's first run passes: the replay's first run is its second
        results = {r.backend: r for r in replay_all(corpus_cases(tmp_path), [flaky])}
    assert results["eager"].result == PASS
    assert results["flaky"].result == FLAKY and results["flaky"].detail == f"{REGRESSION}, then a re-run: {PASS}"
    assert not any(r.failed for r in results.values())
    assert ET.fromstring(junit_xml(list(results.values()))).get("failures") == "0"


def test_a_refreshed_kept_bug_is_known_by_the_name_triage_files_its_other_faces_under(
    tmp_path: Path, faulty_session: OracleSession
) -> None:
    # Regression: a kept bug whose expectation held only its reduced case's op signature (ReduceSumSquare)
    # was filed again as new when a campaign met another face of it (ReduceL2), named by its trigger.
    kept = reduce_case("ReduceSumSquare", NOOP)
    (finding,) = judge_case(faulty_session, kept, None)[1].findings
    folder = tmp_path / "corpus" / "reduce-noop"
    kept.save(folder)
    wanted = {"status": "mismatch", "signature": signature(finding, kept.graph)}
    (folder / EXPECT_FILE).write_text(json.dumps({"backends": {"reduce-faults": wanted}}))
    other_face = reduce_case("ReduceL2", NOOP)
    outcomes, verdict = judge_case(faulty_session, other_face, case_uncomparable(other_face))

    def filed_by_campaign(bugs: Path) -> list[str]:
        known = KnownBugs.load(tmp_path / "corpus").folders
        return file_findings(BugFolders(bugs, record_filing), other_face, outcomes, verdict, faulty_session, 60, known)

    assert filed_by_campaign(tmp_path / "before")[0].startswith("reduce-faults-mismatch-Reduce-noop_with_empty_axes-")
    assert (tmp_path / "before").exists(), "the regression: filed as new"
    assert refresh(folder, faulty_session, 60) == {"reduce-faults": [filed_by_campaign(tmp_path / "before")[0]]}
    assert filed_by_campaign(tmp_path / "after") == [filed_by_campaign(tmp_path / "before")[0]]
    assert not (tmp_path / "after").exists()
    assert [r.result for r in replay_case(folder, faulty_session)] == [STILL_BROKEN]
    assert refresh(folder, faulty_session, 60) == {}, "nothing new to record"


def test_a_replay_runs_the_configurations_kept_bugs_were_found_on(tmp_path: Path) -> None:
    kept_case(tmp_path, "a", {"eager": {"status": "ok"}, "tvm-passes": {"status": "crash", "signature": "s"}})
    kept_case(tmp_path, "b", {"ort": {"status": "mismatch", "signature": "t"}, "tvm": {"status": "ok"}})
    kept_case(tmp_path, "c", {"inductor-freezing": {"status": "ok"}})
    assert bug_backends(corpus_cases(tmp_path)) == ["ort", "tvm-passes"]
