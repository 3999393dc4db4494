"""Benchmark of input search against random sampling given the same time per case."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from fuzzer.core.ir import Graph
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import Uncomparable, ValueResult, fixed_outputs, sample_values, uncomparable
from fuzzer.inputs.search import SearchOptions, search_values
from oracles.worker import ChildWorker
from specs.interpret import evaluate

METHODS = ("search", "random")
STARTUP_SECONDS = 120.0
CASE_LIMIT_SECONDS = 120.0  # a case's search and sampling run within their time budgets; past this it hangs
WARMUP_CASES = 8  # first calls of torch ops pay one-off costs that would skew the first size's times
UNLIMITED_ATTEMPTS = 1 << 30  # the random baseline stops on time alone
BREAKDOWN_OPS = 8  # ops named per line of the table's failure breakdown


@dataclass
class _Tally:
    """Outcomes of one method over the cases of one graph size."""

    finite: list[bool] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    negative: list[float] = field(default_factory=list)
    constant: list[float] = field(default_factory=list)  # per finite case: share of varying outputs held constant
    comparable: list[bool] = field(default_factory=list)  # finite and in every op's domain: judged on values
    # Where the values of the other cases first left an op's domain, by op: what to mend next.
    nonfinite_at: Counter[str] = field(default_factory=Counter)
    out_of_domain_at: Counter[str] = field(default_factory=Counter)  # ... of cases that stayed finite

    def add(self, result: ValueResult, why: Uncomparable | None, outputs: int, cpu_seconds: float) -> None:
        self.comparable.append(why is None)
        if why:
            (self.nonfinite_at if why.kind == "nonfinite" else self.out_of_domain_at)[why.op] += 1
        self.finite.append(result.finite)
        self.wall.append(result.seconds)
        self.cpu.append(cpu_seconds)
        self.negative.append(result.negative_share)
        if result.finite:
            self.constant.append(result.constant_outputs / outputs if outputs else 0.0)

    def figures(self) -> dict[str, Any]:
        wall_ms, cpu_ms = np.asarray(self.wall) * 1000, np.asarray(self.cpu) * 1000
        constant = self.constant or [0.0]
        return {
            "finite": round(float(np.mean(self.finite)), 4),
            "median_ms": round(float(np.median(wall_ms)), 2),
            "p90_ms": round(float(np.percentile(wall_ms, 90)), 2),
            "median_cpu_ms": round(float(np.median(cpu_ms)), 2),
            "p90_cpu_ms": round(float(np.percentile(cpu_ms, 90)), 2),
            "negative_share": round(float(np.mean(self.negative)), 4),
            "constant_outputs": round(float(np.mean([share == 1 for share in constant])), 4),
            "some_constant_output": round(float(np.mean([share > 0 for share in constant])), 4),
            "constant_output_share": round(float(np.mean(constant)), 4),
            "comparable": round(float(np.mean(self.comparable)), 4),
            "nonfinite_at": dict(self.nonfinite_at.most_common()),
            "out_of_domain_at": dict(self.out_of_domain_at.most_common()),
        }


Progress = Callable[[int, int, int], None]  # (graph size, cases done, cases asked)


def bench_inputs(
    sizes: list[int],
    cases: int,
    seed: int,
    gen: GenOptions = GenOptions(),
    search: SearchOptions = SearchOptions(),
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Per graph size: finite share, wall and CPU time, negative share and constant outputs per method.

    Both methods start from the same draw (same seed); random sampling then redraws until its
    values are finite or it has spent the CPU time the search spent on that case.
    """
    if not sizes or min(sizes) < 1 or cases < 1:
        raise ValueError("give at least one graph size >= 1 and at least one case")
    # torch can trap (SIGFPE on INT_MIN / -1) or crash on a drawn graph: the cases run in a child,
    # where that costs one case, counted as crashed.
    worker = ChildWorker(_one_thread, "input benchmark", ("measure",), None, STARTUP_SECONDS)
    try:
        _run_cases(worker, replace(gen, max_nodes=sizes[0], min_nodes=sizes[0]), seed, WARMUP_CASES, search)
        report: dict[str, dict[str, Any]] = {}
        for size in sizes:
            options = replace(gen, max_nodes=size, min_nodes=size)
            tallies, nodes, skipped, crashed = _run_cases(worker, options, seed, cases, search, progress)
            report[str(size)] = {name: tallies[name].figures() for name in METHODS} | {
                "cases": cases - skipped - len(crashed),
                "mean_nodes": round(float(np.mean(nodes)), 2) if nodes else 0.0,
                "skipped": skipped,
                "crashed": crashed,
            }
        return report
    finally:
        worker.close()


def _one_thread() -> tuple[None, None]:
    """The benchmark child's set-up: the search runs on one thread; the baseline gets the same."""
    torch.set_num_threads(1)
    return None, None


def _measure(state: None, stage: Any, graph: Graph, case_seed: int, search: SearchOptions) -> Measured | None:
    """Both methods on one graph, in the benchmark's child; None when torch rejects the graph."""
    stage.value = 1
    try:
        clock = time.process_time()
        searched = search_values(graph, case_seed, search)
        search_cpu = time.process_time() - clock
        clock = time.process_time()
        sampled = sample_values(graph, case_seed, UNLIMITED_ATTEMPTS, time_budget=search_cpu)
        sample_cpu = time.process_time() - clock
        whys = [uncomparable(graph, evaluate(graph, result.values)) for result in (searched, sampled)]
        return Measured(searched, search_cpu, whys[0], sampled, sample_cpu, whys[1])
    except RuntimeError:
        return None  # torch rejects the graph: a spec bug the spec suite reports, not a value problem


@dataclass
class Measured:
    """One case's result and CPU seconds under each method."""

    searched: ValueResult
    search_cpu: float
    search_why: Uncomparable | None
    sampled: ValueResult
    sample_cpu: float
    sample_why: Uncomparable | None


def _run_cases(
    worker: ChildWorker,
    options: GenOptions,
    seed: int,
    cases: int,
    search: SearchOptions,
    progress: Progress | None = None,
) -> tuple[dict[str, _Tally], list[int], int, list[str]]:
    tallies = {name: _Tally() for name in METHODS}
    nodes: list[int] = []
    skipped = 0
    crashed: list[str] = []  # "case <seed>: SIGFPE" for each case whose child died or hung
    for index in range(cases):
        case_seed = int(np.random.SeedSequence([seed, options.max_nodes, index]).generate_state(1)[0])
        graph = generate(case_seed, options)
        varying = len(graph.outputs) - len(fixed_outputs(graph))  # outputs input values can change
        worker.submit(_measure, graph, case_seed, search)
        reply = worker.collect(CASE_LIMIT_SECONDS)
        if reply.status != "ok":
            crashed.append(f"case {case_seed}: {reply.exit or reply.status}")
        elif reply.value is None:
            skipped += 1
        else:
            measured = reply.value
            tallies["search"].add(measured.searched, measured.search_why, varying, measured.search_cpu)
            tallies["random"].add(measured.sampled, measured.sample_why, varying, measured.sample_cpu)
            nodes.append(len(graph.nodes))
        if progress:
            progress(options.max_nodes, index + 1, cases)
    return tallies, nodes, skipped, crashed


def render_table(report: dict[str, dict[str, Any]]) -> str:
    """The report as an aligned text table, one row per graph size and method."""
    header = f"{'nodes':>5} {'method':7} {'finite':>7} {'in dom':>7}"
    header += f" {'median':>8} {'p90':>8} {'cpu med':>8} {'cpu p90':>8}"
    header += f" {'negative':>8} {'constant':>8} {'some const':>10} {'const outs':>10}"
    lines = [header]
    for size, row in report.items():
        for name in METHODS:
            f = row[name]
            lines.append(
                f"{size:>5} {name:7} {f['finite']:>7.1%} {f['comparable']:>7.1%}"
                f" {f['median_ms']:>6.1f}ms {f['p90_ms']:>6.1f}ms"
                f" {f['median_cpu_ms']:>6.1f}ms {f['p90_cpu_ms']:>6.1f}ms"
                f" {f['negative_share']:>8.1%} {f['constant_outputs']:>8.1%}"
                f" {f['some_constant_output']:>10.1%} {f['constant_output_share']:>10.1%}"
            )
    for size, row in report.items():
        search = row["search"]
        for label, key in (("not finite", "nonfinite_at"), ("finite, out of domain", "out_of_domain_at")):
            if search[key]:
                ops = ", ".join(f"{op} {count}" for op, count in list(search[key].items())[:BREAKDOWN_OPS])
                lines.append(f"{size:>5} nodes, search {label}: values leave the domain first at {ops}")
        if row["crashed"]:
            lines.append(f"{size:>5} nodes: {len(row['crashed'])} case(s) crashed torch: {', '.join(row['crashed'])}")
    lines += [
        "in dom: finite and inside every op's domain, the cases whose outputs are compared",
        "times are per case: wall is elapsed time, cpu the process's CPU time (the machine is shared)",
        "negative: share of negative values among the float inputs and weights, averaged over cases",
        "constant: finite cases whose every output holds one value; some const: those with at least one such",
        "output; const outs: share of outputs holding one value, averaged over finite cases. Outputs that",
        "shapes and attributes alone decide (IsNaN of finite values, Dropout's mask) are not counted",
    ]
    return "\n".join(lines)
