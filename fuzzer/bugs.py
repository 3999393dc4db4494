"""File findings into bug folders: one folder per signature, new ones reduced and reported first,
later sightings appended to the folder's list of occurrences."""

from __future__ import annotations

from pathlib import Path

from fuzzer.reduce import reduce_case
from fuzzer.report import META, add_occurrence, write_bug
from fuzzer.testcase import TestCase
from fuzzer.triage import signature
from oracles.base import Outcome
from oracles.compare import Verdict
from oracles.session import OracleSession


def file_findings(
    bugs: Path,
    case: TestCase,
    outcomes: dict[str, Outcome],
    verdict: Verdict,
    session: OracleSession,
    reduce_budget: float,
) -> list[str]:
    """The signature of every finding of the case, each one on disk before this returns.

    A crash's signature does not depend on the graph, so only new crashes are reduced; a mismatch's
    signature is the op types of its reduced graph, so every mismatch is reduced to be named.
    """
    if verdict.kind == "invalid":
        return []
    signatures = []
    for finding in verdict.findings:
        known = signature(finding, case.graph) if finding.symptom != "mismatch" else None
        reduction = None
        if known is None or not (bugs / known / META).exists():
            reduction = reduce_case(session, case, finding, reduce_budget) if reduce_budget > 0 else None
        shown, shown_finding, shown_outcomes = (
            (reduction.case, reduction.finding, reduction.outcomes) if reduction else (case, finding, outcomes)
        )
        sig = known or signature(shown_finding, shown.graph)
        folder = bugs / sig
        if not (folder / META).exists():
            summary = reduction.summary() if reduction else None
            write_bug(folder, sig, shown_finding, shown, shown_outcomes, session.infos, summary, original=case)
        occurrence = {"case": case.meta.get("id"), "seed": case.meta.get("seed"), "finding": finding.to_json()}
        if reduction:
            occurrence["reduced_nodes"] = len(reduction.case.graph.nodes)
        add_occurrence(folder, occurrence)
        signatures.append(sig)
    return signatures
