"""What recording fired optimizations costs: compile seconds per backend with and without it.

    PYTHONPATH=. python benchmarks/optimization_recording.py [--cases 20] [--repeats 5] [--max-nodes 10]

Each generated case is compiled by each system under test in this process, alternately with
recording on (compile plus the `optimizations` hook) and off, `--repeats` times each; a case's time
is its fastest try. Per backend the table gives the median compile seconds off and on and their
ratio, the summed difference as a share of the backend's compile plus run time, and the time spent
inside the functions that record (timed directly, since on a shared machine the difference of two
compile times is mostly noise; ONNX Runtime's save of its optimized graph happens inside its
session and shows only in the difference). It also checks that recording changes no output and
prints each backend's distinct keys. Inductor's compile caches are off here, or every compile after
the first would be a cache hit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import torch

from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import sample_values
from oracles.backends import onnx_runtime, pytorch, tvm_relax
from oracles.base import Backend
from oracles.registry import SYSTEMS, load_backend

RECORDERS: dict[str, tuple[ModuleType, str]] = {
    "ort": (onnx_runtime, "op_types"),
    "tvm": (tvm_relax, "_what_changed"),
    "inductor": (pytorch, "_inductor_counts"),
}


class Stopwatch:
    """Wraps a module's function and sums the seconds spent in it."""

    def __init__(self, module: ModuleType, name: str) -> None:
        self.seconds = 0.0
        inner: Callable[..., Any] = getattr(module, name)

        def timed(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args)
            finally:
                self.seconds += time.perf_counter() - start

        setattr(module, name, timed)


@dataclass
class Timings:
    off: list[float] = field(default_factory=list)  # per case, fastest compile without recording
    on: list[float] = field(default_factory=list)  # ... with recording
    inside: list[float] = field(default_factory=list)  # ... of which in the recording functions
    run: list[float] = field(default_factory=list)
    keys: Counter[str] = field(default_factory=Counter)
    changed: int = 0  # cases whose outputs differ with recording on
    failed: int = 0


def measure(backend: Backend, stopwatch: Stopwatch, cases: list[TestCase], repeats: int) -> Timings:
    timings = Timings()
    for case in cases:
        tries: dict[bool, list[float]] = {False: [], True: []}
        inside, run = [], []
        outputs: dict[bool, dict[str, np.ndarray]] = {}
        try:
            for attempt in range(repeats):
                for record in (attempt % 2 == 0, attempt % 2 != 0):
                    backend.record_optimizations = record
                    converted = backend.convert(case)
                    recorded_before, start = stopwatch.seconds, time.perf_counter()
                    compiled = backend.compile(converted, case)
                    fired = backend.optimizations(compiled, case)
                    tries[record].append(time.perf_counter() - start)
                    if record:
                        inside.append(stopwatch.seconds - recorded_before)
                    clock = time.perf_counter()
                    outputs[record] = backend.run(compiled, case)
                    run.append(time.perf_counter() - clock)
                    timings.keys.update(key for key, count in fired.items() if count > 0)
                    backend.teardown()
        except Exception:
            backend.teardown()
            timings.failed += 1
            continue
        timings.off.append(min(tries[False]))
        timings.on.append(min(tries[True]))
        timings.inside.append(min(inside))
        timings.run.append(min(run))
        timings.changed += any(
            not np.array_equal(outputs[False][name], outputs[True][name], equal_nan=True) for name in outputs[False]
        )
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-nodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.cases < 1 or args.repeats < 1:
        print("--cases and --repeats must be at least 1", file=sys.stderr)
        return 2
    torch._inductor.config.fx_graph_cache = False
    torch._functorch.config.enable_autograd_cache = False
    options = GenOptions(max_nodes=args.max_nodes)
    graphs = [generate(args.seed + index, options) for index in range(args.cases)]
    cases = [TestCase(g, sample_values(g, args.seed + i).values) for i, g in enumerate(graphs)]
    results = {}
    for name in SYSTEMS:
        backend = load_backend(name)[0]()
        backend.setup()
        results[name] = measure(backend, Stopwatch(*RECORDERS[name]), cases, args.repeats)
    header = ("backend", "cases", "off median s", "on median s", "ratio", "difference", "inside median s", "inside")
    print("{:9} {:>5} {:>12} {:>11} {:>6} {:>10} {:>15} {:>7}".format(*header))
    for name, r in results.items():
        own = sum(r.on) + sum(r.run)
        ratio = statistics.median(r.on) / statistics.median(r.off)
        print(
            f"{name:9} {len(r.on):5d} {statistics.median(r.off):12.4f} {statistics.median(r.on):11.4f} {ratio:6.3f}"
            f" {(sum(r.on) - sum(r.off)) / own:10.1%} {statistics.median(r.inside):15.5f} {sum(r.inside) / own:7.2%}"
        )
    for name, r in results.items():
        print(f"{name}: {r.failed} cases failed to compile or run, {r.changed} changed outputs when recorded")
        print(f"  {len(r.keys)} distinct keys: {dict(r.keys.most_common())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
