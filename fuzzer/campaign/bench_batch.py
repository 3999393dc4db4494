"""Benchmark of compiling once for many tests: how a compiler's time per case falls as it takes K cases as
one graph, and per shape where one dynamic-shape compile serves two shapes of a case."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import DrawWeight, GenOptions, generate
from fuzzer.inputs.readouts import SecondShape
from fuzzer.inputs.sampling import sample_values
from oracles.base import Outcome
from oracles.session import OracleSession, merged_case

Progress = Callable[[int, int], None]  # (rounds done, rounds asked)


def bench_batch(
    session: OracleSession,
    sizes: list[int],
    rounds: int,
    seed: int,
    gen: GenOptions,
    weight: DrawWeight | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Seconds per case of each backend at each batch size K, measured side by side: every round runs
    one batch of each size on fresh cases, drawn under `weight` as a campaign draws them."""
    pool = _valid_cases(session, rounds * sum(sizes), seed, gen, weight)
    per_case: dict[str, dict[int, list[float]]] = {name: {k: [] for k in sizes} for name in session.infos}
    shapes: dict[str, dict[int, list[int]]] = {name: {k: [] for k in sizes} for name in session.infos}
    failed: dict[str, dict[int, int]] = {name: {k: 0 for k in sizes} for name in session.infos}
    for done in range(rounds):
        for size in sizes:
            merged, _ = merged_case([pool.pop() for _ in range(size)])
            for name, outcome in session.run(merged).items():
                if outcome.status == "ok":
                    per_case[name][size].append(outcome.seconds / size)
                    shapes[name][size].append(_shapes_judged(outcome))
                else:
                    failed[name][size] += 1
        if progress:
            progress(done + 1, rounds)
    report: dict[str, Any] = {"sizes": sizes, "rounds": rounds, "seed": seed, "max_nodes": gen.max_nodes}
    report["backends"] = {}
    for name, by_size in per_case.items():
        medians = {size: statistics.median(times) for size, times in by_size.items() if times}
        single = medians.get(sizes[0])
        report["backends"][name] = {
            str(size): {
                "seconds_per_case": round(medians[size], 4) if size in medians else None,
                "speedup": round(single / medians[size], 2) if size in medians and single else None,
                "failed": failed[name][size],
            }
            | _per_shape(by_size[size], shapes[name][size])
            for size in sizes
        }
    return report


def _shapes_judged(outcome: Outcome) -> int:
    """The input shapes a run judged: two where a dynamic-shape configuration also ran its second shape
    on the same compile."""
    second = any(key.startswith(f"{SecondShape.kind}:") for key in outcome.outputs or {})
    return 2 if second else 1


def _per_shape(seconds: list[float], shapes: list[int]) -> dict[str, float | None]:
    """Seconds per judged shape, all seconds over all shapes (one compile serving two shapes is how
    dynamic shapes would pay; a case without a second shape pays the dynamic compile for one), and the
    mean count of shapes per case."""
    if not seconds:
        return {"seconds_per_shape": None, "shapes_per_case": None}
    return {
        "seconds_per_shape": round(sum(seconds) / sum(shapes), 4),
        "shapes_per_case": round(statistics.mean(shapes), 2),
    }


def _valid_cases(
    session: OracleSession, count: int, seed: int, gen: GenOptions, weight: DrawWeight | None
) -> list[TestCase]:
    """Cases the references run. They are not run on the compilers first: a compiler's caches of
    kernels it built alone would make the batches look cheaper than a campaign's."""
    references = [name for name, info in session.infos.items() if info.reference]
    cases: list[TestCase] = []
    draw = seed
    while len(cases) < count:
        draw += 1
        try:
            graph = generate(draw, gen, weight)
        except Exception:
            continue
        case = TestCase(graph, sample_values(graph, draw).values, {"seed": draw})
        if all(outcome.status == "ok" for outcome in session.run(case, references).values()):
            cases.append(case)
    return cases


def render_table(report: dict[str, Any]) -> str:
    """Seconds per case and speed-up over the smallest size, one row per backend."""
    sizes = report["sizes"]
    lines = [f"{'backend':<14}" + "".join(f"{'K=' + str(k):>16}" for k in sizes)]
    for name, by_size in report["backends"].items():
        cells = []
        for size in sizes:
            row = by_size[str(size)]
            seconds = row["seconds_per_case"]
            cells.append(f"{seconds:.3f}s x{row['speedup']:.2f}" if seconds is not None else "n/a")
            if row["shapes_per_case"] not in (None, 1):
                cells[-1] += f" {row['seconds_per_shape']:.3f}s/shape"
        lines.append(f"{name:<14}" + "".join(f"{cell:>16}" for cell in cells))
    lines.append(f"(median seconds per case over {report['rounds']} rounds, and speed-up over K={sizes[0]};")
    lines.append(" a dynamic-shape configuration judges a second shape on the same compile: seconds per shape)")
    return "\n".join(lines)
