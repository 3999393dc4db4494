"""Benchmark of a campaign's throughput: cases per minute, and where the wall time went, dlfuzz's own
stages against each compiler's conversion, compilation and execution, for one or more lane counts run
one after the other under the same options."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.table import Table

from fuzzer.campaign.bench_coverage import bench_folder
from fuzzer.campaign.loop import run_campaign
from fuzzer.campaign.state import CampaignOptions, check_output
from fuzzer.report.campaign import load_campaign
from oracles.base import PHASES
from oracles.session import OracleSession

# dlfuzz's own work; every other stage a stats line times is a backend's. ipc: what crossing process
# borders cost (pickling, pipes, a reply waiting on the campaign loop).
OWN_STAGES = ("generate", "search", "validate", "compare", "triage", "ipc")

Progress = Callable[[int, int, float], None]  # (jobs, cases done, seconds elapsed)


def bench_campaign(
    base: CampaignOptions,
    jobs: list[int],
    keep: Path | None = None,
    progress: Progress | None = None,
    session: OracleSession | None = None,
    value_sets: list[int] | None = None,
) -> dict[str, Any]:
    """Run the campaign `base` once per lane count in `jobs` and, given several, per count of value sets
    (into `keep`/<label>, or a temporary folder the benchmark removes) and report each run's figures;
    with several runs, also each one's cases/min over the first's (`speedup`, by label: the lane count,
    `2/v4` with value sets). A lent, started `session` runs one lane in this process (tests share warm
    workers), so it benchmarks `jobs` [1] alone."""
    sets = value_sets or [base.value_sets]
    if not jobs or min(jobs) < 1 or len(set(jobs)) != len(jobs):
        raise ValueError("give distinct lane counts >= 1")
    if min(sets) < 1 or len(set(sets)) != len(sets):
        raise ValueError("give distinct counts of value sets >= 1")
    if session is not None and jobs != [1]:
        raise ValueError("a lent session is one lane: benchmark jobs [1] on it")
    configurations = [(count, per_graph) for count in jobs for per_graph in sets]
    labels = {(count, n): str(count) if len(sets) == 1 else f"{count}/v{n}" for count, n in configurations}
    if keep is not None:
        for label in labels.values():
            check_output(replace(base, out=keep / _folder(label)), resume=False)
    runs = []
    for (count, per_graph), label in labels.items():
        with bench_folder(_folder(label), keep) as folder:
            options = replace(base, out=folder, jobs=count, value_sets=per_graph)
            run_campaign(options, progress=_per_case(count, progress), session=session)
            runs.append(figures(count, folder) | {"value_sets": per_graph, "label": label})
    if len(runs) == 1:
        return runs[0]
    first = runs[0]["cases_per_minute"]
    speedup = {run["label"]: round(run["cases_per_minute"] / first, 2) if first else None for run in runs}
    return {"runs": runs, "speedup": speedup}


def _folder(label: str) -> str:
    return "j" + label.replace("/", "-")


def _per_case(jobs: int, progress: Progress | None) -> Callable[[int, Any, float], None] | None:
    return (lambda done, totals, elapsed: progress(jobs, done, elapsed)) if progress else None


def figures(jobs: int, folder: Path) -> dict[str, Any]:
    """One campaign's throughput and its stage seconds summed over cases (and so over lanes); own_share
    is dlfuzz's own seconds over the lanes' wall time (seconds x jobs)."""
    campaign = load_campaign(folder)
    summary, lines = campaign.summary, campaign.lines
    stages = summary.get("stage_seconds", {})
    backends = sorted(dict.fromkeys(name for line in lines for name in line.get("backends", {})))
    phases: dict[str, Counter] = {name: Counter() for name in backends}
    for line in lines:
        for name, result in line.get("backends", {}).items():
            phases[name].update(result.get("phase_seconds", {}))
    seconds = summary.get("seconds", 0.0)
    own = sum(stages.get(stage, 0.0) for stage in OWN_STAGES)
    return {
        "jobs": jobs,
        "cases": summary.get("cases", 0),
        "graphs": summary.get("graphs", 0),
        "seconds": seconds,
        "cases_per_minute": summary.get("cases_per_minute", 0.0),
        "graphs_per_minute": round(60 * summary.get("graphs", 0) / seconds, 2) if seconds else 0.0,
        "own_share": round(own / (seconds * jobs), 4) if seconds else 0.0,
        "stage_seconds": {stage: round(stages.get(stage, 0.0), 2) for stage in (*OWN_STAGES, *backends)},
        "phase_seconds": {name: {phase: round(phases[name][phase], 2) for phase in PHASES} for name in backends},
    }


def render_table(report: dict[str, Any]) -> Table:
    """The report as a table: one column per lane count, a row per figure and per stage."""
    runs = report.get("runs", [report])
    table = Table(
        "figure",
        *(f"-j {run.get('label', run['jobs'])}" for run in runs),
        caption="stage seconds are summed over cases, so over lanes; a lane's backends run side by side, so "
        "their seconds overlap; a backend's split: convert / compile / run. own share: dlfuzz's own stages "
        "over seconds x jobs",
    )
    table.add_row("cases", *(str(run["cases"]) for run in runs))
    table.add_row("seconds", *(f"{run['seconds']:.1f}" for run in runs))
    table.add_row("cases/min", *(f"{run['cases_per_minute']:.1f}" for run in runs))
    table.add_row("graphs/min", *(f"{run['graphs_per_minute']:.1f}" for run in runs))
    if "speedup" in report:
        table.add_row("speedup", *(f"{report['speedup'][run['label']]}x" for run in runs))
    table.add_row("own share", *(f"{run['own_share']:.1%}" for run in runs))
    stages = dict.fromkeys(stage for run in runs for stage in run["stage_seconds"])
    for stage in stages:
        table.add_row(f"{stage} s", *(_stage_cell(run, stage) for run in runs))
    return table


def _stage_cell(run: dict[str, Any], stage: str) -> str:
    """A stage's seconds; a backend's with its convert / compile / run split."""
    seconds = run["stage_seconds"].get(stage)
    if seconds is None:
        return ""
    split = run["phase_seconds"].get(stage)
    return f"{seconds:.1f}" + (f" ({' / '.join(f'{split[p]:.1f}' for p in PHASES)})" if split else "")
