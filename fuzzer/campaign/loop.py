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

from fuzzer.campaign.feedback import Feedback, node_kinds
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
class CampaignOptions:
    out: Path
    seed: int = 0
    max_tests: int | None = None
    time_budget: float | None = None
    backends: tuple[str, ...] = ("eager", "ort-noopt", "ort", "tvm", "inductor")
    gen: GenOptions = field(default_factory=GenOptions)
    search: SearchOptions | None = field(default_factory=SearchOptions)  # None: plain random sampling
    timeout: float = 60.0
    memory_mb: int | None = 8192
    support_matrix: bool = True  # draw only op x dtype pairs every backend supports (probed, cached)
    reduce_budget: float = 60.0  # seconds to reduce each new bug; 0: keep cases as found
    feedback: bool = True  # steer draws by coverage and grow cases that fired something new; off: the blind draw


class CampaignError(Exception):
    """A campaign that cannot start (its output folder holds another campaign, say)."""


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
    depth: int = 0  # summed over cases, for the mean
    patterns: Counter = field(default_factory=Counter)  # cases holding each optimization pattern
    with_pattern: int = 0  # cases holding any
    optimizations: dict[str, set[str]] = field(default_factory=dict)  # backend -> optimizations fired
    changed: Counter = field(default_factory=Counter)  # backend -> cases in which it fired any optimization

    def add(self, line: dict[str, Any]) -> None:
        self.cases += 1
        self.valid += line["verdict"] != "invalid"
        self.invalid += line["verdict"] == "invalid"
        self.finite += bool(line.get("search", {}).get("finite"))
        self.verdicts[line["verdict"]] += 1
        for name, result in line.get("backends", {}).items():
            self.backends.setdefault(name, Counter())[result["status"]] += 1
        self.stage_seconds.update(line["stage_seconds"])
        self.bugs.update(line.get("bugs", []))
        self.depth += line.get("depth", 0)
        self.patterns.update(line.get("patterns", {}).keys())
        self.with_pattern += bool(line.get("patterns"))
        for name, result in line.get("backends", {}).items():
            fired = {key for key, count in result.get("optimizations", {}).items() if count > 0}
            self.optimizations.setdefault(name, set()).update(fired)
            self.changed[name] += bool(fired)

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
            "seconds": round(seconds, 2),
            "cases_per_minute": round(60 * self.cases / seconds, 2) if seconds > 0 else 0.0,
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "coverage": {
                "optimizations": {name: len(keys) for name, keys in self.optimizations.items()},
                "changed_share": {n: round(c / self.cases, 3) for n, c in self.changed.items() if self.cases},
                "pattern_share": round(self.with_pattern / self.cases, 3) if self.cases else 0.0,
                "patterns": dict(self.patterns),
                "mean_depth": round(self.depth / self.cases, 2) if self.cases else 0.0,
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
    stats_path = out / "stats.jsonl"
    totals, lines, previous_seconds = _prepare(options, resume)
    feedback = Feedback.resume(out / "pool", lines) if options.feedback else None
    owned = session is None
    if session is None:
        session = OracleSession(list(options.backends), options.timeout, options.memory_mb)
        session.start()
    try:
        weight = load_or_probe(session, probe_progress).draw_weight if options.support_matrix else None
        _write_campaign(options, session)
        started = time.monotonic()  # throughput and --time exclude start-up and the one-off support probe
        index = len(lines)
        while _budget_left(options, index, time.monotonic() - started):
            line, graph = run_one(options, session, index, weight, feedback)
            if feedback:
                feedback.learn(line, graph)
            append_line(stats_path, line)
            totals.add(line)
            elapsed = previous_seconds + time.monotonic() - started
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


def check_output(options: CampaignOptions, resume: bool) -> None:
    """Refuse an output folder that would mix two campaigns, before any work starts."""
    out = options.out
    if out.exists() and not out.is_dir():
        raise CampaignError(f"{out} exists and is not a folder")
    campaign = out / "campaign.json"
    if campaign.exists() and not resume:
        raise CampaignError(f"{out} already holds a campaign; pass --resume to continue it or choose another --out")
    if campaign.exists():
        try:
            previous = json.loads(campaign.read_text())
        except ValueError:
            raise CampaignError(f"{campaign} is damaged; cannot resume") from None
        if previous.get("seed") != options.seed:
            raise CampaignError(f"{out} was run with seed {previous.get('seed')}, not {options.seed}")


def _prepare(options: CampaignOptions, resume: bool) -> tuple[Totals, list[dict[str, Any]], float]:
    check_output(options, resume)
    out = options.out
    totals = Totals()
    stats_path = out / "stats.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    if not resume or not stats_path.exists():
        stats_path.write_text("")
        return totals, [], 0.0
    lines = _complete_lines(stats_path)
    for line in lines:
        totals.add(line)
    summary = out / "summary.json"
    seconds = json.loads(summary.read_text()).get("seconds", 0.0) if summary.exists() else 0.0
    return totals, lines, seconds


def _complete_lines(stats_path: Path) -> list[dict[str, Any]]:
    """The stats lines written whole; a line cut off by a kill is dropped so its case reruns."""
    lines = []
    for text in stats_path.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            break
    write_atomic(stats_path, "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode())
    return lines


def _write_campaign(options: CampaignOptions, session: OracleSession) -> None:
    path = options.out / "campaign.json"
    document = {
        "seed": options.seed,
        "options": {
            "max_tests": options.max_tests,
            "time_budget": options.time_budget,
            "backends": list(options.backends),
            "timeout": options.timeout,
            "memory_mb": options.memory_mb,
            "reduce_budget": options.reduce_budget,
            "gen": asdict(options.gen),
            "search": asdict(options.search) if options.search else None,
        },
        "backends": {name: asdict(info) for name, info in session.infos.items()},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "started": json.loads(path.read_text())["started"]
        if path.exists()
        else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_atomic(path, json.dumps(document, indent=1, sort_keys=True).encode())


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
) -> tuple[dict[str, Any], Graph | None]:
    """One case through every stage; returns its stats line and graph."""
    seed = case_seed(options.seed, index)
    case_id = f"{index:06d}"
    plan = feedback.plan(seed, weight) if feedback else None
    try:
        if plan:
            prepared = prepare_case(options.gen, seed, plan.op_weight, options.search, plan.pattern_weight, plan.base)
        else:
            prepared = prepare_case(options.gen, seed, weight, options.search)
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
        "kinds": node_kinds(graph),
        "patterns": occurrences(graph),
        "search": case.meta["search"],
        "stage_seconds": seconds,
    }
    if plan and plan.base_id:
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
    line["bugs"] = file_findings(bugs, case, outcomes, verdict, session, options.reduce_budget, record_filing)
    seconds["triage"] = time.monotonic() - clock
    line["stage_seconds"] = {k: round(v, 4) for k, v in seconds.items()}
    return line, graph
