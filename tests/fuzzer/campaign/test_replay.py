from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fuzzer.campaign.replay import (
    EXPECT_FILE,
    FIXED,
    PASS,
    REGRESSION,
    STILL_BROKEN,
    corpus_cases,
    junit_xml,
    replay_case,
)
from fuzzer.core.testcase import CaseFormatError, TestCase
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import sample_values
from oracles.session import OracleSession

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
