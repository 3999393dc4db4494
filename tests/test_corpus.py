"""The checked-in corpus replays on the pinned compilers as it was kept (the CI regression job): every
kept bug still fails, every coverage case passes on every backend, and nothing regressed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer.campaign.cover import consistent_corpus_pairs
from fuzzer.campaign.replay import PASS, STILL_BROKEN, bug_backends, corpus_cases, expects_consistent, replay_case
from oracles.session import OracleSession
from tests.conftest import ALL_BACKENDS

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


@pytest.mark.slow  # the whole corpus on all five backends: minutes (README, "Corpus and CI", gives the time)
def test_corpus_replays_as_kept() -> None:
    cases = corpus_cases(CORPUS)
    found_on = [name for name in bug_backends(cases) if name not in ALL_BACKENDS]  # tvm-passes
    with OracleSession([*ALL_BACKENDS, *found_on], timeout=120) as session:
        results = [r for folder in cases for r in replay_case(folder, session)]
    coverage = {folder.name for folder in cases if expects_consistent(folder)}
    assert coverage and len(coverage) < len(cases)  # kept bugs and coverage cases both
    assert [(r.case, r.backend, r.result, r.detail) for r in results if r.failed] == []
    assert [(r.case, r.backend, r.result) for r in results if r.case in coverage and r.result != PASS] == []
    kept_bugs = [r for r in results if r.case not in coverage and r.expected != "ok"]
    assert [(r.case, r.backend, r.result) for r in kept_bugs if r.result != STILL_BROKEN] == []


def test_coverage_cases_hold_most_specs() -> None:
    covered_ops = {op for op, _ in consistent_corpus_pairs(CORPUS)}
    assert len(covered_ops) >= 110  # of 135 specs; README, "Corpus and CI", lists what stays uncovered
