"""File findings into bug folders: one folder per signature, new ones reduced and reported first,
later sightings appended to the folder's list of occurrences. Triage decides where a finding goes;
the folder itself is written by whoever files (the report layer), through `Record`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from fuzzer.core.files import write_atomic
from fuzzer.core.ir import Graph
from fuzzer.core.testcase import TestCase
from fuzzer.inputs.sampling import case_uncomparable
from fuzzer.judge import judge_case
from fuzzer.judge.compare import Finding, Verdict
from fuzzer.triage.guilty import find_guilt
from fuzzer.triage.reduce import Checker, Failure, pinned, prune, reduce_case
from fuzzer.triage.signature import guilty_signature, signature, triggered_signature
from fuzzer.triage.trigger import find_triggers
from oracles.base import BackendInfo, Outcome
from oracles.registry import REFERENCES, plain_system
from oracles.session import OracleSession

ALIASES = "aliases.json"  # plain signature -> the folder it is filed in (its cause, or its trigger)
FILED = "meta.json"  # a bug folder holding this file is complete: later sightings are occurrences


@dataclass
class Filing:
    """One finding as triage files it: the folder's signature, the sighting, and what a new folder shows."""

    signature: str
    occurrence: dict[str, Any]
    case: TestCase  # the reduced case (or the original, unreduced)
    finding: Finding
    outcomes: dict[str, Outcome]
    infos: dict[str, BackendInfo]
    reduction: dict[str, Any] | None
    original: TestCase
    guilt: dict[str, Any] | None = None  # the first stage showing it and the switches it needs


Record = Callable[[Path, Filing], None]  # writes the folder (when it is new) and appends the occurrence


class BugStore(Protocol):
    """The bugs filed so far as triage reads them, and where it files: the campaign's folders, or a
    lane's record of what it filed, shipped to the campaign (the lane may run on another machine)."""

    def aliases(self) -> dict[str, str]:
        """Each plain signature filed under another folder's name, and that folder."""
        ...

    def is_filed(self, name: str) -> bool:
        """Whether a complete folder of this name exists: a later sighting only adds an occurrence."""
        ...

    def add_aliases(self, added: dict[str, str]) -> None: ...

    def record(self, filing: Filing) -> None:
        """Write the filing's folder when it is new, then its sighting."""
        ...


@dataclass
class BugFolders:
    """A folder of bug folders (a campaign's bugs/), each written by `write`."""

    root: Path
    write: Record

    def aliases(self) -> dict[str, str]:
        return read_aliases(self.root)

    def is_filed(self, name: str) -> bool:
        return (self.root / name / FILED).exists()

    def filed(self) -> set[str]:
        return {p.parent.name for p in self.root.glob(f"*/{FILED}")}

    def add_aliases(self, added: dict[str, str]) -> None:
        write_atomic(self.root / ALIASES, json.dumps(self.aliases() | added, indent=1, sort_keys=True).encode())

    def record(self, filing: Filing) -> None:
        self.write(self.root / filing.signature, filing)


def file_findings(
    store: BugStore,
    case: TestCase,
    outcomes: dict[str, Outcome],
    verdict: Verdict,
    session: OracleSession,
    reduce_budget: float,
    known: Container[str] = frozenset(),
    seen: Mapping[str, str] | None = None,
) -> list[str]:
    """The signature of every finding of the case, each one in `store` before this returns; a finding
    whose signature is in `known` (a kept bug) is named but not filed, and a known crash is not reduced.
    `seen` holds the folders an earlier value set of the case's graph filed its mismatches in (by
    `value_set_key`): the same backend wrong on the same output of the same graph is that bug seen
    again, recorded without a second reduction.

    A crash's signature does not depend on the graph, so only new crashes are reduced; a mismatch's
    signature is the op types of its reduced graph, so every mismatch is reduced to be named. A
    crash whose reduced graph already computes a wrong value before the crashing op is filed under
    that wrong value: it is its symptom, not a second bug. A new finding whose trigger an ablation
    finds is filed under it, with its plain signatures as aliases; a new finding's signature also
    names its guilty pass or configuration where its backend can be bisected. A variant's finding that its
    plain system shows the same way on the case is named and filed as the plain system's.
    """
    if verdict.kind == "invalid":
        return []
    aliases = store.aliases()
    signatures: dict[int, str] = {}
    shown_by = shown_by_plain_system(verdict.findings, case.graph)
    for index, finding in enumerate(verdict.findings):
        if index in shown_by:
            continue
        if (earlier := (seen or {}).get(value_set_key(finding))) is not None:
            signatures[index] = earlier
            if earlier not in known:
                again = sighting(case, finding)
                store.record(Filing(earlier, again, case, finding, outcomes, session.infos, None, case))
            continue
        plain = signature(finding, case.graph) if finding.symptom != "mismatch" else None
        if plain in known:
            signatures[index] = plain
            continue
        filed = aliases.get(plain, plain) if plain else None
        reduction, guilt = None, None
        if filed is None or not store.is_filed(filed):
            configured = pinned(case, outcomes.get(finding.backend))
            reduction = reduce_case(session, configured, finding, reduce_budget) if reduce_budget > 0 else None
        shown, shown_finding, shown_outcomes = (
            (reduction.case, reduction.finding, reduction.outcomes) if reduction else (case, finding, outcomes)
        )
        occurrence = sighting(case, finding)
        if reduction:
            names = [signature(shown_finding, shown.graph)]
            cause = upstream_mismatch(session, shown, shown_finding, reduce_budget)
            if cause is not None:
                shown, shown_finding, shown_outcomes = cause
                occurrence["downstream_crash"] = names[0]
                names.append(signature(shown_finding, shown.graph))
            if hit := next((name for name in names if name in known), None):
                signatures[index] = hit
                continue
            filed, triggers = root_signature(session, store, aliases, shown, shown_finding, names[-1], reduce_budget)
            if filed in known:
                signatures[index] = filed
                continue
            if not store.is_filed(filed):
                found = find_guilt(session, shown, shown_finding, shown_outcomes[shown_finding.backend], reduce_budget)
                guilt = found.to_json() if found is not None else None
                if found is not None and found.complete:
                    names.append(filed)
                    filed = guilty_signature(filed, shown_finding.backend, found.label)
            added = {name: filed for name in names if name != filed and aliases.get(name) != filed}
            if added:
                aliases |= added
                store.add_aliases(added)
        sig = filed or signature(shown_finding, shown.graph)
        signatures[index] = sig
        if sig in known:
            continue
        if reduction:
            occurrence["reduced_nodes"] = len(reduction.case.graph.nodes)
        summary = reduction.summary() | {"triggers": triggers} if reduction else None
        filing = Filing(sig, occurrence, shown, shown_finding, shown_outcomes, session.infos, summary, case, guilt)
        store.record(filing)
    return [signatures[shown_by.get(index, index)] for index in range(len(verdict.findings))]


def sighting(case: TestCase, finding: Finding) -> dict[str, Any]:
    """One occurrence of a bug as its folder lists it: which case, and what went wrong there."""
    return {"case": case.meta.get("id"), "seed": case.meta.get("seed"), "finding": finding.to_json()}


def value_set_key(finding: Finding) -> str:
    """What makes a mismatch on another value set of one graph the same bug: the backend, and the
    readout and output that are wrong (a crash's signature is cheap to compute: it has no key)."""
    if finding.symptom != "mismatch" or finding.discrepancy is None:
        return ""
    return f"{finding.backend}:{finding.kind}:{finding.discrepancy.output}"


def shown_by_plain_system(findings: list[Finding], graph: Graph) -> dict[int, int]:
    """Which findings of a system's variant its plain system shows on the same case the same way (the
    same mismatch kind, or a crash of the same signature once the backend is renamed), by index, each
    with the plain system's finding: such a bug is the plain system's, filed once under its name."""

    def as_plain(finding: Finding) -> tuple[str, str, str]:
        renamed = replace(finding, backend=plain_system(finding.backend))
        return renamed.backend, renamed.kind, signature(renamed, graph) if renamed.symptom != "mismatch" else ""

    plain = {as_plain(f): index for index, f in enumerate(findings) if plain_system(f.backend) == f.backend}
    variants = ((index, f) for index, f in enumerate(findings) if plain_system(f.backend) != f.backend)
    return {index: plain[as_plain(f)] for index, f in variants if as_plain(f) in plain}


def upstream_mismatch(
    session: OracleSession, case: TestCase, finding: Finding, budget: float
) -> tuple[TestCase, Finding, dict[str, Outcome]] | None:
    """The shortest prefix of a reduced crash on which the same backend already computes a wrong value,
    among those judged within `budget` seconds (a reduction cut short leaves many prefixes, and a hang
    costs a timeout and a worker restart on each)."""
    if finding.symptom == "mismatch" or len(case.graph.nodes) < 2:
        return None
    only = [finding.backend, *(name for name in REFERENCES if name in session.infos)]
    deadline = time.monotonic() + budget
    for node in case.graph.nodes[:-1]:
        if time.monotonic() >= deadline:
            return None
        prefix = prune(case, case.graph.nodes, list(node.outputs), {})
        if prefix is None:
            continue
        outcomes, verdict = judge_case(session, prefix, case_uncomparable(prefix), only)
        for candidate in verdict.findings:
            if candidate.backend == finding.backend and candidate.symptom == "mismatch":
                return prefix, candidate, outcomes
    return None


def root_signature(
    session: OracleSession,
    store: BugStore,
    aliases: dict[str, str],
    case: TestCase,
    finding: Finding,
    plain: str,
    budget: float,
) -> tuple[str, list[str]]:
    """The folder of a reduced finding, with the triggers that name it: where its plain signature
    was filed before, else its family and triggers when an ablation finds some (so every face of one
    defect shares a folder), else its plain signature."""
    if plain in aliases or store.is_filed(plain):
        return aliases.get(plain, plain), []
    triggers = find_triggers(case, Checker(session, Failure.of(finding, case.graph), time.monotonic() + budget))
    return (triggered_signature(finding, case.graph, triggers) if triggers else plain), triggers


def read_aliases(bugs: Path) -> dict[str, str]:
    """A bug folder set's aliases: each plain signature and the folder it is filed in."""
    path = bugs / ALIASES
    return json.loads(path.read_text()) if path.exists() else {}
