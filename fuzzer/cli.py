"""The `dlfuzz` command line: wires the stages together and nothing else."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fuzzer.core.testcase import CaseFormatError, TestCase
from fuzzer.generate.generator import PATTERN_MODES, GenerationError, GenOptions
from fuzzer.inputs.search import SearchOptions

if TYPE_CHECKING:
    from oracles.session import OracleSession

DEFAULT_BACKENDS = "eager,ort-noopt,ort,tvm,inductor"


def _backends(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise click.BadParameter("give at least one backend")
    return names


PATTERNS_OPTION = click.option(
    "--patterns",
    type=click.Choice(PATTERN_MODES),
    default="mixed",
    show_default=True,
    help="Splice compiler optimization patterns: none (the blind draw), mixed (1-3 among drawn nodes), only.",
)


def _gen_options(max_nodes: int, ops: str | None, dtypes: str | None, patterns: str = "mixed") -> GenOptions:
    from fuzzer.core.dtypes import DTYPES

    base = GenOptions()
    chosen_dtypes = tuple(d.strip() for d in dtypes.split(",")) if dtypes else base.dtypes
    unknown = [d for d in chosen_dtypes if d not in DTYPES]
    if unknown:
        raise click.BadParameter(f"unknown dtype(s) {', '.join(unknown)}; known: {', '.join(DTYPES)}")
    chosen_ops = tuple(o.strip() for o in ops.split(",")) if ops else ()
    if max_nodes < 1:
        raise click.BadParameter("--max-nodes must be at least 1")
    return GenOptions(max_nodes=max_nodes, ops=chosen_ops, dtypes=chosen_dtypes, patterns=patterns)


def _search_options(time_budget: float | None) -> SearchOptions:
    return SearchOptions() if time_budget is None else replace(SearchOptions(), time_budget=time_budget)


def load_case(path: Path) -> TestCase:
    """A case folder, or an ONNX file run with random inputs."""
    from fuzzer.inputs.onnx_file import case_from_onnx

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
@click.option(
    "--time",
    "time_budget",
    type=float,
    default=None,
    help="Seconds of fuzzing (worker start-up and a first-run support probe come on top).",
)
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
@click.option("--dtypes", default=None, help="Comma-separated dtypes to generate (default: all eight).")
@PATTERNS_OPTION
@click.option(
    "--feedback",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="Steer draws by the optimizations and op kinds covered so far, and grow cases that covered something "
    "first; off: the blind draw.",
)
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
@click.option(
    "--include-unsupported", is_flag=True, help="Also draw op x dtype pairs a backend is known not to support."
)
@click.option(
    "--reduce-budget", type=float, default=60.0, show_default=True, help="Seconds to reduce each new bug (0: off)."
)
def fuzz(
    time_budget,
    max_tests,
    seed,
    backends,
    max_nodes,
    ops,
    dtypes,
    patterns,
    feedback,
    timeout,
    values,
    search_time,
    out,
    resume,
    include_unsupported,
    reduce_budget,
) -> None:
    """Run a fuzzing campaign and write campaign.json, stats.jsonl, summary.json and bugs/."""
    from fuzzer.campaign.loop import CampaignError, CampaignOptions, Totals, check_output, run_campaign

    if time_budget is None and max_tests is None:
        raise click.UsageError("give --time or --max-tests (or both)")
    options = CampaignOptions(
        out=out,
        seed=seed,
        max_tests=max_tests,
        time_budget=time_budget,
        backends=_backends(backends),
        gen=_gen_options(max_nodes, ops, dtypes, patterns),
        search=_search_options(search_time) if values == "search" else None,
        timeout=timeout,
        support_matrix=not include_unsupported,
        reduce_budget=reduce_budget,
        feedback=feedback == "on",
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

    try:
        check_output(options, resume)
    except CampaignError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"starting backends {', '.join(options.backends)} ...", err=True)
    try:
        with _started_session(options.backends, timeout) as session:
            summary = run_campaign(options, resume, progress, session, _probe_progress)
    except (CampaignError, GenerationError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo("", err=True)
    click.echo(json.dumps(summary, indent=1, sort_keys=True))


@main.command()
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-nodes", type=int, default=10, show_default=True)
@click.option("--ops", default=None, help="Comma-separated op types to draw from.")
@click.option("--dtypes", default=None, help="Comma-separated dtypes to generate.")
@PATTERNS_OPTION
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Case folder to write.")
def gen(seed, max_nodes, ops, dtypes, patterns, out) -> None:
    """Generate one case (graph, values, model.onnx) into a folder."""
    from fuzzer.campaign.loop import prepare_case
    from fuzzer.core.files import write_atomic
    from specs.lowering import to_onnx

    try:
        prepared = prepare_case(_gen_options(max_nodes, ops, dtypes, patterns), seed)
    except (GenerationError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    case = prepared.case
    case.save(out)
    write_atomic(out / "model.onnx", to_onnx(case.graph, case.weights).SerializeToString())
    click.echo(case.graph.text())
    for problem in prepared.problems:
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
    from fuzzer.inputs.sampling import values_finite
    from fuzzer.judge import judge_case

    try:
        case = load_case(case_path)
    except CaseFormatError as error:
        raise click.ClickException(str(error)) from None
    with _started_session(_backends(backends), timeout) as session:
        outcomes, verdict = judge_case(session, case, values_finite(case))
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
@click.argument("corpus", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("corpus"))
@click.option("--backends", default=DEFAULT_BACKENDS, show_default=True)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JUnit XML here.")
@click.option("--timeout", type=float, default=120.0, show_default=True)
def replay(corpus, backends, junit, timeout) -> None:
    """Replay the kept cases of CORPUS (default: corpus/); exit 1 on any regression.

    A backend that passed a kept case and now crashes or mismatches is a regression; a known bug
    that still happens is reported as skipped; one that no longer happens is reported as fixed.
    """
    from fuzzer.campaign.replay import corpus_cases, junit_xml, replay_case
    from fuzzer.core.files import write_atomic

    try:
        cases = corpus_cases(corpus)
    except CaseFormatError as error:
        raise click.ClickException(str(error)) from None
    results = []
    with _started_session(_backends(backends), timeout) as session:
        for folder in cases:
            try:
                case_results = replay_case(folder, session)
            except CaseFormatError as error:
                raise click.ClickException(str(error)) from None
            for r in case_results:
                click.echo(f"{r.result:11} {r.case} {r.backend} (expected {r.expected}, got {r.actual}) {r.detail}")
            results += case_results
    if junit:
        write_atomic(junit, junit_xml(results))
    failed = sum(r.failed for r in results)
    click.echo(f"{len(cases)} cases, {len(results)} checks, {failed} regressions")
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("bug", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--corpus", type=click.Path(file_okay=False, path_type=Path), default=Path("corpus"), show_default=True)
@click.option("--name", default=None, help="Folder name in the corpus (default: the bug signature).")
def keep(bug, corpus, name) -> None:
    """Keep a bug folder's case in the corpus so `dlfuzz replay` checks it from now on."""
    from fuzzer.campaign.replay import keep as keep_case

    try:
        target = keep_case(bug, corpus, name)
    except CaseFormatError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"kept {target}")


@main.command()
@click.argument("case_path", metavar="CASE", type=click.Path(exists=True, path_type=Path))
@click.option("--backend", default=None, help="The system whose failure to keep (default: the first finding's).")
@click.option("--budget", type=float, default=300.0, show_default=True, help="Seconds to spend reducing.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per backend per run.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Bug folder to write (default: CASE-reduced)."
)
def reduce(case_path, backend, budget, timeout, out) -> None:
    """Shrink a failing case while it fails the same way; write a bug folder with report and repro.py.

    Runs only the affected system and the references. Exit status: 0 reduced, 1 nothing to reduce.
    """
    from fuzzer.inputs.sampling import values_finite
    from fuzzer.judge import judge_case
    from fuzzer.report.bug import write_bug
    from fuzzer.triage.reduce import reduce_case
    from fuzzer.triage.signature import signature
    from oracles.registry import REFERENCES, SYSTEMS

    systems = [backend] if backend else list(SYSTEMS)
    try:
        case = load_case(case_path)
    except CaseFormatError as error:
        raise click.ClickException(str(error)) from None
    with _started_session((*REFERENCES, *systems), timeout) as session:
        _, verdict = judge_case(session, case, values_finite(case))
        wanted = session.workers[backend].name if backend else None
        findings = [f for f in verdict.findings if wanted in (None, f.backend)]
        if verdict.kind == "invalid" or not findings:
            click.echo(f"nothing to reduce: verdict {verdict.kind} {verdict.reason}".rstrip(), err=True)
            sys.exit(1)
        finding = findings[0]
        click.echo(f"reducing {finding.backend} {finding.symptom} ({len(case.graph.nodes)} nodes)", err=True)
        reduction = reduce_case(session, case, finding, budget)
        sig = signature(reduction.finding, reduction.case.graph)
        folder = out or case_path.with_name(case_path.name + "-reduced")
        write_bug(
            folder,
            sig,
            reduction.finding,
            reduction.case,
            reduction.outcomes,
            session.infos,
            reduction.summary(),
            original=case,
        )
    click.echo(reduction.case.graph.text())
    click.echo(f"{len(case.graph.nodes)} -> {len(reduction.case.graph.nodes)} nodes, signature {sig}; wrote {folder}")


@main.command()
@click.argument("path", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
def report(path) -> None:
    """Render report.md again: for one bug folder, or a campaign's summary of bugs by system and symptom."""
    from fuzzer.report.bug import ReportError, rerender

    try:
        click.echo(rerender(path).read_text())
    except ReportError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--backends", default=DEFAULT_BACKENDS, show_default=True, help="Backends whose support to show.")
@click.option("--no-probe", is_flag=True, help="List specs and dtypes only; do not probe backends.")
def specs(as_json, backends, no_probe) -> None:
    """List the operator specs, their dtypes and which backend supports each op x dtype.

    Support is probed once per set of backend versions with single-op cases and cached
    (under $DLFUZZ_CACHE, default ~/.cache/dlfuzz); a cold probe takes a few minutes.
    """
    from fuzzer.campaign.support import SupportMatrix, dtype_key, load_or_probe
    from specs import REGISTRY

    matrix: SupportMatrix | None = None
    if not no_probe:
        with _started_session(_backends(backends)) as session:
            matrix = load_or_probe(session, _probe_progress)
        click.echo("", err=True)
    rows = []
    for name, cls in sorted(REGISTRY.items()):
        keys = sorted({dtype_key(combo) for combo in cls.dtypes})
        row = {"spec": name, "onnx_op": cls.onnx_op, "dtypes": sorted({d for c in cls.dtypes for d in c})}
        if matrix is not None:
            row["support"] = {
                backend: {key: matrix.status(name, key.split("+"), backend) or "unknown" for key in keys}
                for backend in matrix.versions
            }
        rows.append(row)
    op_types = len({r["onnx_op"] for r in rows})
    if as_json:
        versions = matrix.versions if matrix else {}
        click.echo(json.dumps({"ops": rows, "onnx_op_types": op_types, "versions": versions}, indent=1))
        return
    backend_names = list(matrix.versions) if matrix else []
    click.echo(f"{'spec':22} {'dtypes':44} " + " ".join(f"{b:12}" for b in backend_names))
    for row in rows:
        cells = [_support_cell(row["support"][b]) for b in backend_names] if matrix else []
        click.echo(f"{row['spec']:22} {','.join(row['dtypes']):44} " + " ".join(f"{c:12}" for c in cells))
    click.echo(f"{len(rows)} specs, {op_types} ONNX op types" + ("; -x: unsupported, !x: crashes" if matrix else ""))


def _support_cell(statuses: dict[str, str]) -> str:
    """'all', or the dtype sets a backend lacks (-) or crashes on (!)."""
    marks = {"unsupported": "-", "crashes": "!", "unknown": "?"}
    odd = [f"{marks[s]}{key}" for key, s in statuses.items() if s in marks]
    return " ".join(odd) if odd else "all"


def _probe_progress(done: int, total: int) -> None:
    click.echo(f"\rprobing backend support: {done}/{total} op x dtype x backend", nl=False, err=True)


@contextlib.contextmanager
def _started_session(backends: tuple[str, ...], timeout: float = 60.0) -> Iterator[OracleSession]:
    """An OracleSession whose start-up failures become one-line CLI errors."""
    from oracles.registry import BackendNotFound, resolve
    from oracles.session import OracleSession
    from oracles.worker import WorkerStartError

    try:
        for ref in backends:
            resolve(ref)
        session = OracleSession(list(backends), timeout)
        session.start()
    except (BackendNotFound, WorkerStartError) as error:
        raise click.ClickException(str(error)) from None
    try:
        yield session
    finally:
        session.close()


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
@PATTERNS_OPTION
@click.option("--time-budget", type=click.FloatRange(min=0.001), default=None, help="Search seconds per case.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_inputs_command(nodes, cases, seed, ops, dtypes, patterns, time_budget, as_json) -> None:
    """Input search against random sampling with the same time per case: finite share, time, usefulness."""
    from fuzzer.campaign.bench import bench_inputs, render_table

    sizes = _sizes(nodes)
    search = _search_options(time_budget)

    def progress(size: int, done: int, total: int) -> None:
        click.echo(f"\r{size} nodes: {done}/{total}   ", nl=False, err=True)

    try:
        options = _gen_options(max(sizes), ops, dtypes, patterns)
        report = bench_inputs(sizes, cases, seed, options, search, progress)
    except (GenerationError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo("", err=True)
    click.echo(json.dumps(report, indent=1) if as_json else render_table(report))


if __name__ == "__main__":
    main()
