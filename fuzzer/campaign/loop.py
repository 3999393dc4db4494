"""The campaign loop: generate, check, find values, run every backend, judge, triage, record."""

from __future__ import annotations

import json
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fuzzer.campaign.feedback import Coverage, Feedback, Plan, node_kinds
from fuzzer.campaign.known import KnownBugs
from fuzzer.campaign.state import CAMPAIGN, POOL, STATS, CampaignOptions, Records, check_output, open_records
from fuzzer.campaign.support import Progress as ProbeProgress
from fuzzer.campaign.support import load_or_probe
from fuzzer.core.files import append_line, write_atomic
from fuzzer.core.ir import Graph
from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import DrawWeight, GenOptions, PatternWeight, generate
from fuzzer.generate.validate import check_onnx, check_torch
from fuzzer.inputs.sampling import sample_values
from fuzzer.inputs.search import SearchOptions, search_values
from fuzzer.judge import judge_case
from fuzzer.report.bug import record_filing
from fuzzer.triage.filing import file_findings
from oracles.session import OracleSession
from specs.interpret import evaluate
from specs.lowering import to_onnx
from specs.patterns import occurrences

STATUSES = ("ok", "mismatch", "crash", "timeout", "died", "unsupported")


@dataclass
class Totals:
    """Running counts that become summary.json."""

    cases: int = 0
    valid: int = 0
    invalid: int = 0
    finite: int = 0
    verdicts: Counter = field(default_factory=Counter)
    backends: dict[str, Counter] = field(default_factory=dict)
    stage_seconds: Counter = field(default_factory=Counter)
    bugs: set[str] = field(default_factory=set)
    known_bugs: KnownBugs = field(default_factory=KnownBugs)
    known: set[str] = field(default_factory=set)  # kept bugs seen again
    known_cases: int = 0
    depth: int = 0  # summed over cases, for the mean
    with_pattern: int = 0  # cases holding any optimization pattern
    changed: Counter = field(default_factory=Counter)  # backend -> cases in which it fired any optimization
    coverage: Coverage = field(default_factory=Coverage)

    def add(self, line: dict[str, Any]) -> None:
        self.cases += 1
        self.valid += line["verdict"] != "invalid"
        self.invalid += line["verdict"] == "invalid"
        self.finite += bool(line.get("search", {}).get("finite"))
        self.verdicts[line["verdict"]] += 1
        for name, result in line.get("backends", {}).items():
            self.backends.setdefault(name, Counter())[result["status"]] += 1
            self.changed[name] += any(count > 0 for count in result.get("optimizations", {}).values())
        self.stage_seconds.update(line["stage_seconds"])
        self.bugs.update(line.get("bugs", []))
        self.known.update(line.get("known", []))
        self.known_cases += bool(line.get("known"))
        self.depth += line.get("depth", 0)
        self.with_pattern += bool(line.get("patterns"))
        self.coverage.fold(line)

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "valid": self.valid,
            "invalid": self.invalid,
            "finite": self.finite,
            "verdicts": dict(self.verdicts),
            "backends": {n: {s: c.get(s, 0) for s in STATUSES} for n, c in self.backends.items()},
            "bugs": len(self.bugs),
            "bug_signatures": sorted(self.bugs),
            "known_bugs": len(self.known),
            "known_cases": self.known_cases,
            "known": {sig: self.known_bugs.folders.get(sig, "") for sig in sorted(self.known)},
            "seconds": round(seconds, 2),
            "cases_per_minute": round(60 * self.cases / seconds, 2) if seconds > 0 else 0.0,
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "coverage": {
                "optimizations": {name: len(keys) for name, keys in self.coverage.optimizations.items()},
                "changed_share": {n: round(c / self.cases, 3) for n, c in self.changed.items() if self.cases},
                "pattern_share": round(self.with_pattern / self.cases, 3) if self.cases else 0.0,
                "patterns": dict(self.coverage.pattern_uses),
                "mean_depth": round(self.depth / self.cases, 2) if self.cases else 0.0,
                "op_types": len(self.coverage.ops),
            },
        }


Progress = Callable[[int, Totals, float], None]


def case_seed(campaign_seed: int, index: int) -> int:
    """Independent, reproducible seed for case `index` of a campaign."""
    return int(np.random.SeedSequence([campaign_seed, index]).generate_state(1)[0])


def run_campaign(
    options: CampaignOptions,
    resume: bool = False,
    progress: Progress | None = None,
    session: OracleSession | None = None,
    probe_progress: ProbeProgress | None = None,
) -> dict[str, Any]:
    """Run until the case or time budget is spent; every finding is on disk before the next case.

    A caller may lend a started `session` (tests share warm workers); otherwise one is made.
    """
    out = options.out
    check_output(options, resume)
    owned = session is None
    if session is None:
        session = OracleSession(list(options.backends), options.timeout, options.memory_mb)
        session.start()
    try:
        weight = load_or_probe(session, probe_progress).draw_weight if options.support_matrix else None
        known = KnownBugs.load(Path(options.known)) if options.known else KnownBugs()
        weight = known.weight(weight) if known.triggers else weight
        records = open_records(out, resume)  # the folder is made only now that every backend started
        _write_campaign(options, session, records)
        totals = Totals(known_bugs=known)
        for line in records.lines:
            totals.add(line)
        summary_path = out / "summary.json"  # written after each stats line: at most one case behind
        resumed = records.lines and summary_path.exists()
        previous_seconds = json.loads(summary_path.read_text())["seconds"] if resumed else 0.0
        started = time.monotonic()  # throughput and --time exclude start-up and the one-off support probe
        feedback = Feedback.resume(out / POOL, records.lines) if options.feedback else None
        index = len(records.lines)
        while _budget_left(options, index, previous_seconds + time.monotonic() - started):
            line, graph = run_one(options, session, index, weight, feedback, known)
            if feedback:
                feedback.learn(line, graph)
            elapsed = previous_seconds + time.monotonic() - started
            line["elapsed"] = round(elapsed, 2)
            append_line(out / STATS, line)
            totals.add(line)
            summary = totals.summary(elapsed)
            summary["worker_restarts"] = session.restarts
            write_atomic(out / "summary.json", json.dumps(summary, indent=1, sort_keys=True).encode())
            if progress:
                progress(index + 1, totals, elapsed)
            index += 1
    finally:
        if owned:
            session.close()
    return json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}


def _budget_left(options: CampaignOptions, index: int, elapsed: float) -> bool:
    if options.max_tests is not None and index >= options.max_tests:
        return False
    return options.time_budget is None or elapsed < options.time_budget


def _write_campaign(options: CampaignOptions, session: OracleSession, records: Records) -> None:
    """campaign.json: the options a resume reads back, the versions, and every resume with what it repaired."""
    path = options.out / CAMPAIGN
    previous = json.loads(path.read_text()) if path.exists() else {}
    resumes = previous.get("resumes", [])
    if previous:
        resumes.append({"at": _now(), "cases_done": len(records.lines), "repaired": records.repaired})
    document = {
        "seed": options.seed,
        "options": options.to_json(),
        "backends": {name: asdict(info) for name, info in session.infos.items()},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "started": previous.get("started", _now()),
        "resumes": resumes,
    }
    write_atomic(path, json.dumps(document, indent=1, sort_keys=True).encode())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Prepared:
    """A generated case with its values, whether they are all finite, and what the validity checks found."""

    case: TestCase
    finite: bool
    problems: list[str]
    seconds: dict[str, float]


def prepare_case(
    options: GenOptions,
    seed: int,
    weight: DrawWeight | None = None,
    search: SearchOptions | None = SearchOptions(),
    pattern_weight: PatternWeight | None = None,
    base: Graph | None = None,
) -> Prepared:
    """Generate (or grow `base`), validate and find values for one case.

    Values come from the input search, or from random sampling when `search` is None.
    """
    seconds: dict[str, float] = {}
    clock = time.monotonic()
    graph = generate(seed, options, weight, pattern_weight, base)
    seconds["generate"] = time.monotonic() - clock
    clock = time.monotonic()
    result = search_values(graph, seed, search) if search else sample_values(graph, seed)
    seconds["search"] = time.monotonic() - clock
    case = TestCase(graph, result.values, {"seed": seed, "search": result.summary()})
    clock = time.monotonic()
    problems = check_onnx(graph, to_onnx(graph, case.weights))
    problems += check_torch(graph, evaluate(graph, case.values))
    seconds["validate"] = time.monotonic() - clock
    return Prepared(case, result.finite, problems, seconds)


def run_one(
    options: CampaignOptions,
    session: OracleSession,
    index: int,
    weight: DrawWeight | None = None,
    feedback: Feedback | None = None,
    known: KnownBugs | None = None,
) -> tuple[dict[str, Any], Graph | None]:
    """One case through every stage; returns its stats line and graph."""
    seed = case_seed(options.seed, index)
    case_id = f"{index:06d}"
    plan = feedback.plan(seed, weight) if feedback else Plan(weight)
    try:
        prepared = prepare_case(options.gen, seed, plan.op_weight, options.search, plan.pattern_weight, plan.base)
    except Exception as error:  # our own bug (a spec torch rejects, say): record it and go on
        problem = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        failed = {
            "id": case_id,
            "seed": seed,
            "nodes": 0,
            "ops": [],
            "verdict": "invalid",
            "problems": [problem],
            "stage_seconds": {},
            "backends": {},
        }
        return failed, None
    case, problems, seconds = prepared.case, prepared.problems, prepared.seconds
    case.meta["id"] = case_id
    graph = case.graph
    line: dict[str, Any] = {
        "id": case_id,
        "seed": seed,
        "nodes": len(graph.nodes),
        "depth": graph.depth(),
        "ops": graph.op_types(),
        "dtypes": sorted({t.dtype for t in graph.types.values()}),
        "kinds": node_kinds(graph),
        "patterns": occurrences(graph),
        "search": case.meta["search"],
        "stage_seconds": seconds,
    }
    if plan.base_id:
        line["mutated_from"] = plan.base_id
    if problems:
        case.save(options.out / "invalid" / case_id)
        return line | {"verdict": "invalid", "problems": problems, "backends": {}}, graph
    # A case the search could not make finite still runs: crashes count, values are not compared.
    outcomes, verdict = judge_case(session, case, prepared.finite)
    for name, outcome in outcomes.items():
        seconds[name] = outcome.seconds
    line["backends"] = {
        name: outcome.summary() | {"status": verdict.statuses[name]} for name, outcome in outcomes.items()
    }
    line["verdict"] = verdict.kind
    if verdict.reason:
        line["reason"] = verdict.reason
    if verdict.kind == "invalid":
        case.save(options.out / "invalid" / case_id)
    clock = time.monotonic()
    bugs = options.out / "bugs"
    kept = known.folders if known else {}
    found = file_findings(bugs, case, outcomes, verdict, session, options.reduce_budget, record_filing, kept)
    line["bugs"] = [sig for sig in found if sig not in kept]
    line["known"] = [sig for sig in found if sig in kept]
    seconds["triage"] = time.monotonic() - clock
    line["stage_seconds"] = {k: round(v, 4) for k, v in seconds.items()}
    return line, graph
