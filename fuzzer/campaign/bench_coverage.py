"""Benchmark of what a campaign exercises: the blind draw against pattern-aware generation with feedback,
the same cases of each on the same warm compilers."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fuzzer.campaign.loop import run_campaign
from fuzzer.campaign.state import CampaignOptions, check_output
from oracles.registry import REFERENCES, plain_system
from oracles.session import OracleSession
from specs import REGISTRY

# Each mode as the campaign options it changes: the blind draw of before, and the guided one.
MODES = {"blind": {"patterns": "none", "feedback": False}, "guided": {"patterns": "mixed", "feedback": True}}

Progress = Callable[[str, int], None]  # (mode, cases done)


def bench_coverage(
    base: CampaignOptions,
    session: OracleSession | None = None,
    progress: Progress | None = None,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Run `base` once per mode (its out folder is replaced by `keep`/<mode>, or a temporary one so the
    benchmark leaves nothing behind; reduction is off, as it measures triage, not generation) and compare
    their coverage; `ratios` is guided over blind."""
    if keep is not None:
        for mode in MODES:
            check_output(replace(base, out=keep / mode), resume=False)
    owned = session is None
    if session is None:
        session = OracleSession(list(base.backends), base.timeout, base.memory_mb)
        session.start()
    report: dict[str, Any] = {}
    try:
        for mode, changes in MODES.items():
            with bench_folder(mode, keep) as folder:
                options = replace(
                    base,
                    out=folder,
                    gen=replace(base.gen, patterns=changes["patterns"]),
                    feedback=changes["feedback"],
                    reduce_budget=0.0,
                )
                summary = run_campaign(options, session=session, progress=_per_case(mode, progress))
            report[mode] = _figures(summary)
    finally:
        if owned:
            session.close()
    report["ratios"] = _ratios(report["blind"], report["guided"])
    return report


@contextmanager
def bench_folder(mode: str, keep: Path | None) -> Iterator[Path]:
    """Where a benchmark runs one campaign: `keep`/<mode> to keep, else a temporary folder it removes."""
    if keep is not None:
        yield keep / mode
        return
    with tempfile.TemporaryDirectory(prefix=f"dlfuzz-bench-{mode}-") as folder:
        yield Path(folder) / "campaign"


def _per_case(mode: str, progress: Progress | None) -> Callable[[int, Any, float], None] | None:
    return (lambda done, totals, elapsed: progress(mode, done)) if progress else None


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    coverage = summary["coverage"]
    return {
        "cases": summary["cases"],
        "invalid": summary["invalid"],
        "finite_share": round(summary["finite"] / summary["cases"], 3) if summary["cases"] else 0.0,
        "bugs": summary["bugs"],
        "cases_per_minute": summary["cases_per_minute"],
        "pattern_share": coverage["pattern_share"],
        "distinct_patterns": len(coverage["patterns"]),
        "mean_depth": coverage["mean_depth"],
        "op_type_share": round(coverage["op_types"] / len(REGISTRY), 3),
        "optimizations": coverage["optimizations"],
        "fired": coverage["fired"],  # which ones, by compiler: what guided draws add is read here
        "system_optimizations": per_system(coverage["fired"]),
        "compositions": coverage["compositions"],
        "changed_share": coverage["changed_share"],
    }


def per_system(fired: dict[str, list[str]]) -> dict[str, int]:
    """Distinct optimizations of each compiler over all its configurations run (tvm with tvm-passes):
    one rewrite fired by two configurations is one optimization of that compiler."""
    union: dict[str, set[str]] = {}
    for backend, names in fired.items():
        if backend not in REFERENCES:
            union.setdefault(plain_system(backend), set()).update(names)
    return {system: len(names) for system, names in union.items()}


def _ratios(blind: dict[str, Any], guided: dict[str, Any]) -> dict[str, Any]:
    def ratio(new: float, old: float) -> float | None:
        return round(new / old, 2) if old else None

    return {
        "mean_depth": ratio(guided["mean_depth"], blind["mean_depth"]),
        "optimizations": {
            name: ratio(count, blind["optimizations"].get(name, 0)) for name, count in guided["optimizations"].items()
        },
        "compositions": {
            name: ratio(count, blind["compositions"].get(name, 0)) for name, count in guided["compositions"].items()
        },
        "system_optimizations": {
            name: ratio(count, blind["system_optimizations"].get(name, 0))
            for name, count in guided["system_optimizations"].items()
        },
        "cases_per_minute": ratio(guided["cases_per_minute"], blind["cases_per_minute"]),
    }


def render_table(report: dict[str, Any]) -> str:
    """The report as text: one column per mode, one row per figure, distinct optimizations per backend."""
    blind, guided, ratios = report["blind"], report["guided"], report["ratios"]
    rows = [("figure", "blind", "guided", "guided/blind")]
    for key in ("cases", "invalid", "bugs", "cases_per_minute", "pattern_share", "distinct_patterns", "mean_depth"):
        rows.append((key, str(blind[key]), str(guided[key]), str(ratios.get(key, ""))))
    for key in ("finite_share", "op_type_share"):
        rows.append((key, f"{blind[key]:.1%}", f"{guided[key]:.1%}", ""))
    for name in guided["optimizations"]:
        for figure in ("optimizations", "compositions"):
            shown = ratios[figure].get(name)
            rows.append(
                (
                    f"{figure} {name}",
                    str(blind[figure].get(name, 0)),
                    str(guided[figure].get(name, 0)),
                    "" if shown is None else str(shown),
                )
            )
        rows.append(
            (
                f"changed share {name}",
                f"{blind['changed_share'].get(name, 0):.1%}",
                f"{guided['changed_share'][name]:.1%}",
                "",
            )
        )
    for name, count in guided["system_optimizations"].items():
        shown = ratios["system_optimizations"].get(name)
        rows.append(
            (
                f"optimizations {name}, all configurations",
                str(blind["system_optimizations"].get(name, 0)),
                str(count),
                "" if shown is None else str(shown),
            )
        )
    width = max(len(row[0]) for row in rows)
    lines = [f"{row[0]:<{width}} {row[1]:>10} {row[2]:>10} {row[3]:>12}" for row in rows]
    lines += [
        "optimizations: distinct optimizations the compiler recorded firing (graph transformers, passes that",
        "changed the module, fusion kinds, pattern-matcher patterns, counters); compositions: distinct op mixes",
        "it fused or folded (ops gained or lost, fused ops, kernels); changed share: cases in which it fired any",
    ]
    return "\n".join(lines)
