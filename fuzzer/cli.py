"""The `dlfuzz` command line: wires the stages together and nothing else."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from fuzzer.generate import GenerationError, GenOptions
from fuzzer.search import SearchOptions
from fuzzer.testcase import CaseFormatError, TestCase

DEFAULT_BACKENDS = "eager,ort-noopt,ort,tvm,inductor"


def _backends(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise click.BadParameter("give at least one backend")
    return names


def _gen_options(max_nodes: int, ops: str | None, dtypes: str | None) -> GenOptions:
    from fuzzer.dtypes import DTYPES

    base = GenOptions()
    chosen_dtypes = tuple(d.strip() for d in dtypes.split(",")) if dtypes else base.dtypes
    unknown = [d for d in chosen_dtypes if d not in DTYPES]
    if unknown:
        raise click.BadParameter(f"unknown dtype(s) {', '.join(unknown)}; known: {', '.join(DTYPES)}")
    chosen_ops = tuple(o.strip() for o in ops.split(",")) if ops else ()
    if max_nodes < 1:
        raise click.BadParameter("--max-nodes must be at least 1")
    return GenOptions(max_nodes=max_nodes, ops=chosen_ops, dtypes=chosen_dtypes)


def _search_options(time_budget: float | None) -> SearchOptions:
    return SearchOptions() if time_budget is None else replace(SearchOptions(), time_budget=time_budget)


def load_case(path: Path) -> TestCase:
    """A case folder, or an ONNX file run with random inputs."""
    from fuzzer.external import case_from_onnx

    if path.is_dir():
        return TestCase.load(path)
    if path.suffix == ".onnx" and path.is_file():
        return case_from_onnx(path)
    raise CaseFormatError(f"{path}: expected a case folder or an .onnx file")


@click.group()
@click.version_option(package_name="dlfuzz")
def main() -> None:
    """dlfuzz: a differential fuzzer for deep-learning compilers (TVM, ONNX Runtime, Inductor)."""


@main.command()
@click.option("--time", "time_budget", type=float, default=None, help="Stop after this many seconds.")
@click.option("--max-tests", type=int, default=None, help="Stop after this many cases.")
@click.option("--seed", type=int, default=0, show_default=True, help="Campaign seed; same seed, same cases.")
@click.option(
    "--backends",
    default=DEFAULT_BACKENDS,
    show_default=True,
    help="Comma-separated: built-in names, entry points (dlfuzz.backends) or module:Class.",
)
@click.option("--max-nodes", type=int, default=10, show_default=True, help="Largest graph, in nodes.")
@click.option("--ops", default=None, help="Comma-separated op types to draw from (default: all).")
@click.option("--dtypes", default=None, help="Comma-separated dtypes to generate (default: float32,int64,bool).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per backend per case.")
@click.option(
    "--values",
    type=click.Choice(["search", "random"]),
    default="search",
    show_default=True,
    help="Find input values by gradient search, or draw them at random (the baseline).",
)
@click.option("--search-time", type=click.FloatRange(min=0.001), default=None, help="Search seconds per case.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/campaign"), show_default=True)
@click.option("--resume", is_flag=True, help="Continue the campaign already in --out.")
def fuzz(
    time_budget, max_tests, seed, backends, max_nodes, ops, dtypes, timeout, values, search_time, out, resume
) -> None:
    """Run a fuzzing campaign and write campaign.json, stats.jsonl, summary.json and bugs/."""
    from fuzzer.campaign import CampaignError, CampaignOptions, Totals, run_campaign

    if time_budget is None and max_tests is None:
        raise click.UsageError("give --time or --max-tests (or both)")
    options = CampaignOptions(
        out=out,
        seed=seed,
        max_tests=max_tests,
        time_budget=time_budget,
        backends=_backends(backends),
        gen=_gen_options(max_nodes, ops, dtypes),
        search=_search_options(search_time) if values == "search" else None,
        timeout=timeout,
    )

    def progress(done: int, totals: Totals, seconds: float) -> None:
        per_backend = " ".join(
            f"{name}:{sum(c.values()) - c['ok'] - c['unsupported']}" for name, c in totals.backends.items()
        )
        rate = 60 * totals.cases / seconds if seconds else 0.0
        click.echo(
            f"\r[{done}{'/' + str(max_tests) if max_tests else ''}] {rate:.1f} cases/min  valid {totals.valid}"
            f"  finite {totals.finite}  bugs {len(totals.bugs)}  failures {per_backend}   ",
            nl=False,
            err=True,
        )

    click.echo(f"starting backends {', '.join(options.backends)} ...", err=True)
    try:
        summary = run_campaign(options, resume=resume, progress=progress)
    except (CampaignError, GenerationError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo("", err=True)
    click.echo(json.dumps(summary, indent=1, sort_keys=True))


@main.command()
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-nodes", type=int, default=10, show_default=True)
@click.option("--ops", default=None, help="Comma-separated op types to draw from.")
@click.option("--dtypes", default=None, help="Comma-separated dtypes to generate.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Case folder to write.")
def gen(seed, max_nodes, ops, dtypes, out) -> None:
    """Generate one case (graph, values, model.onnx) into a folder."""
    from fuzzer.campaign import prepare_case
    from fuzzer.materialize import to_onnx
    from fuzzer.testcase import write_atomic

    try:
        case, problems, _ = prepare_case(_gen_options(max_nodes, ops, dtypes), seed)
    except (GenerationError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    case.save(out)
    write_atomic(out / "model.onnx", to_onnx(case.graph, case.weights).SerializeToString())
    click.echo(case.graph.text())
    for problem in problems:
        click.echo(f"validity problem: {problem}", err=True)


@main.command()
@click.argument("case_path", metavar="CASE", type=click.Path(exists=True, path_type=Path))
@click.option("--backends", default=DEFAULT_BACKENDS, show_default=True)
@click.option("--timeout", type=float, default=60.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def run(case_path, backends, timeout, as_json) -> None:
    """Run one case (a case folder, or an .onnx file with random inputs) and print its verdict.

    Exit status: 0 consistent, 1 a crash or mismatch, 2 invalid or unusable input.
    """
    from oracles.registry import BackendNotFound
    from oracles.session import OracleSession
    from oracles.worker import WorkerStartError

    try:
        case = load_case(case_path)
        with OracleSession(list(_backends(backends)), timeout) as session:
            outcomes, verdict = session.judge(case)
    except (CaseFormatError, BackendNotFound, WorkerStartError) as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(verdict.to_json() | {"statuses": verdict.statuses}, indent=1, sort_keys=True))
    else:
        for name, outcome in outcomes.items():
            failure = f" {outcome.phase}: {outcome.exc_type}: {outcome.message}" if outcome.failed else ""
            click.echo(f"{name:10} {verdict.statuses[name]:11} {outcome.seconds:7.3f}s{failure}")
        click.echo(f"verdict: {verdict.kind}{' (' + verdict.reason + ')' if verdict.reason else ''}")
        for finding in verdict.findings:
            click.echo(f"  {json.dumps(finding.to_json(), sort_keys=True)}")
    sys.exit({"consistent": 0, "nonfinite": 0, "invalid": 2}.get(verdict.kind, 1))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def specs(as_json) -> None:
    """List the operator specs with their dtypes."""
    from specs import REGISTRY

    rows = []
    for name, cls in sorted(REGISTRY.items()):
        dtypes = sorted({d for combo in cls.dtypes for d in combo})
        rows.append({"spec": name, "onnx_op": cls.onnx_op, "dtypes": dtypes})
    if as_json:
        click.echo(json.dumps({"ops": rows, "onnx_op_types": len({r["onnx_op"] for r in rows})}, indent=1))
        return
    for row in rows:
        click.echo(f"{row['spec']:24} {row['onnx_op']:24} {','.join(row['dtypes'])}")
    click.echo(f"{len(rows)} specs, {len({r['onnx_op'] for r in rows})} ONNX op types")


@main.group()
def bench() -> None:
    """Benchmarks of dlfuzz's own stages."""


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated node counts, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("node counts must be at least 1")
    return sizes


@bench.command("inputs")
@click.option("--nodes", default="10,20,30", show_default=True, help="Comma-separated graph sizes, in nodes.")
@click.option("--cases", type=click.IntRange(min=1), default=512, show_default=True, help="Graphs per size.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ops", default=None, help="Comma-separated op types to draw from (default: all).")
@click.option("--dtypes", default=None, help="Comma-separated dtypes to generate (default: float32,int64,bool).")
@click.option("--time-budget", type=click.FloatRange(min=0.001), default=None, help="Search seconds per case.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_inputs_command(nodes, cases, seed, ops, dtypes, time_budget, as_json) -> None:
    """Input search against random sampling with the same time per case: finite share, time, usefulness."""
    from fuzzer.bench import bench_inputs, render_table

    sizes = _sizes(nodes)
    search = _search_options(time_budget)

    def progress(size: int, done: int, total: int) -> None:
        click.echo(f"\r{size} nodes: {done}/{total}   ", nl=False, err=True)

    try:
        report = bench_inputs(sizes, cases, seed, _gen_options(max(sizes), ops, dtypes), search, progress)
    except (GenerationError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo("", err=True)
    click.echo(json.dumps(report, indent=1) if as_json else render_table(report))


if __name__ == "__main__":
    main()
