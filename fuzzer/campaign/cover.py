"""Coverage cases: consistent cases kept in the corpus that together use every op x dtype set the specs
offer, chosen greedily from campaigns, so that a regression in any op shows up in `dlfuzz replay`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fuzzer.campaign.pipeline import prepare_case
from fuzzer.campaign.replay import corpus_cases, expects_consistent, write_expectations
from fuzzer.campaign.state import POOL, stored_options
from fuzzer.campaign.support import CRASHES, SupportMatrix, dtype_key, probe_keys
from fuzzer.core.ir import Graph
from fuzzer.core.testcase import TestCase
from fuzzer.judge import judge_case
from fuzzer.report.campaign import load_campaign
from oracles.session import OracleSession

Pair = tuple[str, str]  # (op type, dtype set) as the support matrix keys it


def graph_pairs(graph: Graph) -> set[Pair]:
    """The (op, input dtype set) of every node: what the support matrix and the coverage count."""
    return {(node.op, dtype_key([graph.types[name].dtype for name in node.inputs])) for node in graph.nodes}


def greedy_cover(
    candidates: dict[str, set[Pair]], universe: set[Pair], accept: Callable[[str], bool], cost: dict[str, int]
) -> list[str]:
    """Set cover, greedily: the candidate adding the most uncovered pairs first (the cheaper on a tie),
    each one `accept` refuses dropped, until no candidate adds a pair."""
    left, chosen, remaining = set(universe), [], dict(candidates)
    while left:
        gains = {name: len(pairs & left) for name, pairs in remaining.items()}
        best = min(gains, key=lambda name: (-gains[name], cost[name], name), default=None)
        if best is None or gains[best] == 0:
            break
        if accept(best):
            chosen.append(best)
            left -= remaining[best]
        del remaining[best]
    return chosen


@dataclass
class Candidate:
    """A consistent case of a campaign, rebuilt from its pooled graph and seed."""

    name: str
    campaign: Path
    case_id: str
    seed: int
    graph: Graph

    def case(self) -> TestCase:
        """Values found again as the campaign found them (same seed and search options)."""
        options = stored_options(self.campaign)
        prepared = prepare_case(self.graph, self.seed, options.search)
        if prepared.problems or prepared.uncomparable is not None:  # such a case is never judged consistent
            raise ValueError(f"{self.name}: no longer a valid case with comparable values")
        prepared.case.meta |= {"id": self.case_id, "campaign": self.campaign.name, "campaign_seed": options.seed}
        return prepared.case


def campaign_candidates(campaign: Path) -> list[Candidate]:
    """Its consistent cases whose graph it kept: a campaign with feedback keeps every valid case that
    covered an (op, dtypes, attributes) kind first in its pool, and only stats lines of the rest."""
    found = []
    for line in load_campaign(campaign).lines:
        path = campaign / POOL / f"{line['id']}.json"
        if line.get("verdict") == "consistent" and path.is_file():
            graph = Graph.from_json(json.loads(path.read_text()))
            name = f"cover-{hashlib.sha1(graph.dumps().encode()).hexdigest()[:12]}"  # one name per graph, however found
            found.append(Candidate(name, campaign, line["id"], line["seed"], graph))
    return found


def consistent_corpus_pairs(corpus: Path) -> set[Pair]:
    """What the corpus's consistent cases (every backend expected ok) already cover."""
    if not corpus.is_dir() or not any(corpus.rglob("expect.json")):
        return set()
    return {pair for folder in corpus_cases(corpus) if expects_consistent(folder) for pair in corpus_pairs(folder)}


def corpus_pairs(folder: Path) -> set[Pair]:
    """The op x dtype pairs a kept case's graph uses."""
    return graph_pairs(TestCase.load(folder).graph)


@dataclass
class CoverReport:
    """What `dlfuzz cover` kept and which offered pairs remain uncovered, and why."""

    kept: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # candidate -> why its re-run did not pass
    covered: set[Pair] = field(default_factory=set)
    offered: set[Pair] = field(default_factory=set)
    blocked: set[Pair] = field(default_factory=set)  # never drawn, or some backend crashes on it alone
    seconds: float = 0.0  # backend seconds the kept cases took in their check runs: what they add to a replay
    over_budget: int = 0  # candidates that would have added pairs, left out once the budget was spent

    @property
    def uncovered(self) -> set[Pair]:
        return self.offered - self.covered

    def to_json(self) -> dict[str, object]:
        uncovered = sorted(self.uncovered)
        return {
            "kept": self.kept,
            "refused": self.refused,
            "seconds": round(self.seconds, 1),
            "over_budget": self.over_budget,
            "offered_pairs": len(self.offered),
            "covered_pairs": len(self.covered),
            "ops": f"{len({op for op, _ in self.covered})} of {len({op for op, _ in self.offered})}",
            "uncovered_ops": sorted({op for op, _ in self.offered} - {op for op, _ in self.covered}),
            "uncovered": ["|".join(pair) for pair in uncovered if pair not in self.blocked],
            "uncovered_blocked": ["|".join(pair) for pair in uncovered if pair in self.blocked],
        }


def cover(
    campaigns: Iterable[Path],
    corpus: Path,
    session: OracleSession,
    matrix: SupportMatrix | None,
    budget: float | None = None,
) -> CoverReport:
    """Keep in `corpus` the fewest consistent cases of `campaigns` (greedily) that add op x dtype pairs
    the corpus's consistent cases lack; each is run again on `session` and kept only if consistent,
    until the kept cases' backend seconds reach `budget` (a replay of the corpus must stay short)."""
    candidates = {c.name: c for campaign in campaigns for c in campaign_candidates(campaign)}
    report = CoverReport(offered={(op, key) for op, key in probe_keys()})
    if matrix is not None:
        report.blocked = {pair for pair in report.offered if _blocked(matrix, *pair)}
    already = consistent_corpus_pairs(corpus)

    def accept(name: str) -> bool:
        if budget is not None and report.seconds >= budget:
            report.over_budget += 1
            return False
        try:
            case = candidates[name].case()
        except ValueError as error:
            report.refused[name] = str(error)
            return False
        outcomes, verdict = judge_case(session, case, None)  # case() refused uncomparable values
        if verdict.kind != "consistent":
            report.refused[name] = f"re-run: {verdict.kind} {verdict.reason}".strip()
            return False
        report.seconds += sum(outcome.seconds for outcome in outcomes.values())
        case.save(corpus / name)
        backends = {backend: {"status": "ok"} for backend in session.infos}
        versions = {backend: info.version for backend, info in session.infos.items()}
        ops = ", ".join(candidates[name].graph.op_types())
        write_expectations(corpus / name, backends, versions, f"coverage: consistent on {ops}")
        return True

    pairs = {name: graph_pairs(c.graph) for name, c in candidates.items()}
    cost = {name: len(c.graph.nodes) for name, c in candidates.items()}
    report.kept = greedy_cover(pairs, report.offered - already, accept, cost)
    report.covered = already | {pair for name in report.kept for pair in pairs[name]}
    return report


def _blocked(matrix: SupportMatrix, op: str, key: str) -> bool:
    """A pair no consistent case can hold: the generator never draws it, or some backend crashes on it alone."""
    dtypes = tuple(key.split("+"))
    return matrix.draw_weight(op, dtypes) == 0.0 or CRASHES in matrix.entries.get(matrix.key(op, dtypes), {}).values()
