"""The checked-in corpus replays without regressions on the pinned compilers (the CI regression job)."""

from __future__ import annotations

from pathlib import Path

from fuzzer.campaign.replay import corpus_cases, replay_case
from oracles.session import OracleSession

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def test_corpus_replays_without_regressions(real_session: OracleSession) -> None:
    results = [r for folder in corpus_cases(CORPUS) for r in replay_case(folder, real_session)]
    assert results
    assert [(r.case, r.backend, r.result, r.detail) for r in results if r.failed] == []
