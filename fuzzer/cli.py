"""The `dlfuzz` command line: wires the stages together and nothing else."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from enum import IntEnum
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from fuzzer.core.testcase import CaseFormatError, TestCase
from fuzzer.generate.generator import PATTERN_MODES, GenerationError, GenOptions
from fuzzer.inputs.search import SearchOptions
from oracles.registry import BUILTIN, BackendNotFound, resolve
from oracles.worker import WorkerStartError

if TYPE_CHECKING:
    from fuzzer.campaign.state import CampaignOptions
    from oracles.session import OracleSession

DEFAULT_BACKENDS = "eager,ort-noopt,ort,tvm,inductor"


class Status(IntEnum):
    """The exit status of every command, so that CI can tell a compiler bug from a typo."""

    OK = 0  # success: the case ran consistent, the corpus has no regression, the campaign ran its budget
    BUG = 1  # a bug found: run saw a crash or mismatch, replay a regression, reduce a case that still fails
    BAD_INPUT = 2  # bad input or usage, or a full disk: one line on stderr
    INTERNAL = 3  # dlfuzz's own bug: one line on stderr; --debug shows the traceback


EXIT_STATUS_HELP = """\b
Exit status, the same for every command:
  0  success: consistent, no regression, the campaign ran its budget
  1  a bug found: run saw a crash or mismatch, replay a regression,
     reduce a case that still fails
  2  bad input or usage (one line on stderr), or a full disk
     (fuzz stops whole: free space and --resume)
  3  an internal error of dlfuzz (dlfuzz --debug ... shows the traceback)"""


class BadInput(click.ClickException):
    """Input the user can fix; shown as one line, exit status 2."""

    exit_code = Status.BAD_INPUT


class InternalError(click.ClickException):
    """An exception dlfuzz did not expect: its own bug, shown as one line pointing to --debug."""

    exit_code = Status.INTERNAL


def _user_errors() -> tuple[type[Exception], ...]:
    """The exceptions whose message tells the user what to fix in their input or environment."""
    from fuzzer.campaign.state import CampaignError
    from fuzzer.report.bug import ReportError

    return (CaseFormatError, GenerationError, CampaignError, ReportError, BackendNotFound, WorkerStartError, OSError)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Dlfuzz(click.Group):
    """The one error boundary of every command: each failure leaves as one line and its exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                traceback.print_exc()
            if isinstance(error, OSError) and error.filename:
                raise BadInput(f"{error.filename}: {error.strerror}") from None
            if isinstance(error, _user_errors()):
                raise BadInput(str(error)) from None
            raise InternalError(
                f"internal error of dlfuzz ({type(error).__name__}: {error}); run again as `dlfuzz --debug ...` "
                "to see the traceback, and please report it"
            ) from None

    def main(self, *args: Any, **kwargs: Any) -> None:
        kwargs["standalone_mode"] = False
        try:
            status = super().main(*args, **kwargs)
        except click.UsageError as error:
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
            click.echo(f"Error: {_one_line(error.format_message())}{hint}", err=True)
            sys.exit(Status.BAD_INPUT)
        except click.ClickException as error:
            click.echo(f"Error: {_one_line(error.format_message())}", err=True)
            sys.exit(error.exit_code if isinstance(error, InternalError) else Status.BAD_INPUT)
        except click.Abort:
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(int(status or Status.OK))


def _backends(ctx: click.Context, param: click.Parameter, text: str) -> tuple[str, ...]:
    """Backend references checked before any worker starts: each one known, its module installed."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise click.BadParameter("give at least one backend")
    for name in names:
        try:
            module = resolve(name).partition(":")[0]
            installed = find_spec(module) is not None
        except BackendNotFound as error:
            raise click.BadParameter(str(error)) from None
        except ImportError:  # a parent package of the module is missing
            installed = False
        if not installed:
            raise click.BadParameter(f"backend {name!r}: module {module} is not installed")
    return names


MAX_NODES_OPTION = click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Largest graph, in ops (a pattern's constants come beside them, as weights do).",
)
PATTERNS_OPTION = click.option(
    "--patterns",
    type=click.Choice(PATTERN_MODES),
    default="mixed",
    show_default=True,
    help="Splice compiler optimization patterns: none (the blind draw), mixed (1-3 among drawn nodes), only.",
)


def _one_backend(ctx: click.Context, param: click.Parameter, text: str | None) -> str | None:
    if text is None:
        return None
    names = _backends(ctx, param, text)
    if len(names) != 1:
        raise click.BadParameter("give one backend")
    return names[0]


def _gen_options(max_nodes: int, ops: str | None, dtypes: str | None, patterns: str = "mixed") -> GenOptions:
    from fuzzer.core.dtypes import DTYPES
    from specs import REGISTRY

    base = GenOptions()
    chosen_dtypes = tuple(d.strip() for d in dtypes.split(",")) if dtypes else base.dtypes
    unknown = [d for d in chosen_dtypes if d not in DTYPES]
    if unknown:
        raise BadInput(f"unknown dtype(s) {', '.join(unknown)}; known: {', '.join(DTYPES)}")
    chosen_ops = tuple(o.strip() for o in ops.split(",") if o.strip()) if ops else ()
    unknown = [o for o in chosen_ops if o not in REGISTRY]
    if unknown:
        raise BadInput(f"unknown op(s) {', '.join(unknown)}; `dlfuzz specs --no-probe` lists them")
    return GenOptions(max_nodes=max_nodes, ops=chosen_ops, dtypes=chosen_dtypes, patterns=patterns)


def _jobs(ctx: click.Context, param: click.Parameter, text: str) -> int:
    if text == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    if not text.isdigit() or int(text) < 1:
        raise click.BadParameter(f"{text!r} is not a number of jobs >= 1 or 'auto'")
    return int(text)


def _batch(ctx: click.Context, param: click.Parameter, text: str) -> int | None:
    if text in ("auto", "off"):
        return None if text == "auto" else 1
    if not text.isdigit() or int(text) < 1:
        raise click.BadParameter(f"{text!r} is not a batch size >= 1, 'auto' or 'off'")
    return int(text)


def _job_counts(ctx: click.Context, param: click.Parameter, text: str) -> list[int]:
    """Comma-separated lane counts, each as -j takes it, none twice."""
    counts = [_jobs(ctx, param, part.strip()) for part in text.split(",")]
    if len(set(counts)) != len(counts):
        raise click.BadParameter(f"{text!r} names a number of jobs twice")
    return counts


def _value_set_counts(ctx: click.Context, param: click.Parameter, text: str) -> list[int]:
    """Comma-separated counts of value sets per graph, none twice."""
    counts = _sizes(text, "counts of value sets")
    if len(set(counts)) != len(counts):
        raise click.BadParameter(f"{text!r} names a count of value sets twice")
    return counts


DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(ctx: click.Context, param: click.Parameter, text: str | None) -> float | None:
    """Seconds from `120`, `120s`, `2m` or `1.5h`."""
    if text is None:
        return None
    number, scale = (text[:-1], DURATION_UNITS[text[-1]]) if text[-1:] in DURATION_UNITS else (text, 1.0)
    try:
        seconds = float(number) * scale
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration such as 120, 120s, 2m or 1h") from None
    if not 0 < seconds < float("inf"):
        raise click.BadParameter(f"{text!r} is not a duration above zero")
    return seconds


def _search_options(time_budget: float | None) -> SearchOptions:
    return SearchOptions() if time_budget is None else replace(SearchOptions(), time_budget=time_budget)


def _writable(path: Path) -> Path:
    """Refuse an output path that cannot be written before any work starts; nothing is left behind."""
    from fuzzer.campaign.state import check_writable

    check_writable(path)
    return path


def load_case(path: Path) -> TestCase:
    """A case folder, or an ONNX file run with random inputs."""
    from fuzzer.inputs.onnx_file import case_from_onnx
    from specs import REGISTRY

    if path.is_dir():
        case = TestCase.load(path)
        unknown = sorted(set(case.graph.op_types()) - set(REGISTRY))
        if unknown:
            raise CaseFormatError(f"{path}: ops no spec knows: {', '.join(unknown)}")
        return case
    if path.suffix == ".onnx" and path.is_file():
        return case_from_onnx(path)
    raise CaseFormatError(f"{path}: expected a case folder or an .onnx file")


def _session(backends: tuple[str, ...], timeout: float = 60.0) -> OracleSession:
    """Workers for backends `_backends` checked; a worker that cannot start is a one-line error."""
    from oracles.session import OracleSession

    return OracleSession(list(backends), timeout)


@click.group(cls=Dlfuzz, epilog=EXIT_STATUS_HELP)
@click.option("--debug", is_flag=True, help="Show the traceback of an error, not only its one line.")
@click.version_option(package_name="dlfuzz")
def main(debug: bool) -> None:
    """dlfuzz: a differential fuzzer for deep-learning compilers (TVM, ONNX Runtime, Inductor)."""


CAMPAIGN_FLAGS = {  # campaign option (as `differences` names it) -> the fuzz parameter that sets it
    "seed": "seed",
    "backends": "backends",
    "gen.max_nodes": "max_nodes",
    "gen.ops": "ops",
    "gen.dtypes": "dtypes",
    "gen.patterns": "patterns",
    "feedback": "feedback",
    "search": "values",
    "search.time_budget": "search_time",
    "timeout": "timeout",
    "support_matrix": "include_unsupported",
    "reduce_budget": "reduce_budget",
    "known": "known",
    "jobs": "jobs",
    "batch": "batch",
    "value_sets": "value_sets",
}


@main.command(epilog=EXIT_STATUS_HELP)
@click.option(
    "--time",
    "time_budget",
    callback=_duration,
    default=None,
    help="Fuzzing time in all (120, 120s, 2m, 1h), a resumed campaign's earlier time included (start-up and "
    "a first-run support probe come on top).",
)
@click.option(
    "--max-tests", type=click.IntRange(min=1), default=None, help="Cases in all, a resumed campaign's included."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Campaign seed; same seed, same cases.")
@click.option(
    "--backends",
    default=DEFAULT_BACKENDS,
    show_default=True,
    callback=_backends,
    help="Comma-separated: built-in names, entry points (dlfuzz.backends) or module:Class.",
)
@MAX_NODES_OPTION
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
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds per backend per case.",
)
@click.option(
    "--values",
    type=click.Choice(["search", "random"]),
    default="search",
    show_default=True,
    help="Find input values by gradient search, or draw them at random (the baseline).",
)
@click.option("--search-time", type=click.FloatRange(min=0.001), default=None, help="Search CPU seconds per case.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/campaign"), show_default=True)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the campaign in --out with its own options (campaign.json); only --time and --max-tests "
    "may be given anew.",
)
@click.option(
    "--include-unsupported", is_flag=True, help="Also draw op x dtype pairs a backend is known not to support."
)
@click.option(
    "--reduce-budget",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to reduce each new bug (0: off).",
)
@click.option(
    "--known",
    default=None,
    help="Corpus whose kept bugs count as known: not filed again, and what triggers them is drawn less "
    "(default: corpus/ when it holds kept cases; 'off': none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print summary.json at the end instead of the table.")
@click.option(
    "-j",
    "--jobs",
    default="1",
    show_default=True,
    callback=_jobs,
    help="Cases run side by side, each lane with its own backend workers; auto: one per core. The same seed "
    "and jobs file the same cases.",
)
@click.option(
    "--batch",
    default="auto",
    show_default=True,
    callback=_batch,
    help="Cases a compiler with a high fixed compile cost (Inductor) compiles as one graph; auto: its default "
    "measured by `dlfuzz bench batch`, off: one at a time. A batch's failure is judged again case by case.",
)
@click.option(
    "--value-sets",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Consecutive cases that share one drawn graph and its weights, each with inputs searched from its "
    "own seed: every compiler compiles the graph once and runs each value set on it (batching then off).",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="auto|ADDRESS",
    help="Run the -j lanes as actors on a Ray cluster (auto: the one this machine runs; or its head's "
    "host:port); needs the ray extra, and --out on storage every node mounts at the same path.",
)
@click.pass_context
def fuzz(
    ctx,
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
    known,
    as_json,
    jobs,
    batch,
    value_sets,
    ray_address,
) -> Status:
    """Run a fuzzing campaign and write campaign.json, stats.jsonl, summary.json and bugs/."""
    from fuzzer.campaign.loop import Totals, run_campaign
    from fuzzer.campaign.state import CampaignOptions, check_output, recorded_cases
    from fuzzer.report.campaign import load_campaign
    from fuzzer.report.console import LiveProgress, backend_counts, print_closing

    requested = CampaignOptions(
        out=out,
        seed=seed,
        max_tests=max_tests,
        time_budget=time_budget,
        backends=backends,
        gen=_gen_options(max_nodes, ops, dtypes, patterns),
        search=_search_options(search_time) if values == "search" else None,
        timeout=timeout,
        support_matrix=not include_unsupported,
        reduce_budget=reduce_budget,
        feedback=feedback == "on",
        known=_known_corpus(known),
        jobs=jobs,
        batch=batch,
        value_sets=value_sets,
    )
    if resume:
        options = _resumed(ctx, requested)
    elif time_budget is None and max_tests is None:
        raise click.UsageError("give --time or --max-tests (or both)")
    else:
        options = requested

    check_output(options, resume)  # before the backends spend their start-up
    if ray_address is not None:
        if find_spec("ray") is None:
            raise BadInput("--ray needs Ray: pip install 'dlfuzz[ray]'")
        from fuzzer.campaign.ray_lane import connect

        connect(ray_address)
    if resume and options.max_tests is not None and recorded_cases(options.out) >= options.max_tests:
        click.echo(f"{options.out} has run its {options.max_tests} cases; give a larger --max-tests to go on", err=True)
        return Status.OK
    lanes = f" in {options.jobs} lanes" if options.jobs > 1 else ""
    click.echo(f"starting backends {', '.join(options.backends)}{lanes} ...", err=True)
    with LiveProgress("fuzzing", "cases") as display:
        newest = _NewestBug(options.out)

        def progress(done: int, totals: Totals, seconds: float) -> None:
            detail = [
                "  ".join(backend_counts(name, counts) for name, counts in totals.backends.items()),
                f"bugs {len(totals.bugs)}{newest.line(totals.bugs)}",
            ]
            display.show(done, options.max_tests, seconds, options.time_budget, detail)

        with _probe_display() as probing:
            summary = run_campaign(options, resume, progress, probe_progress=probing, ray_address=ray_address)
    if as_json:
        click.echo(json.dumps(summary, indent=1, sort_keys=True))
    else:
        print_closing(load_campaign(options.out))
    return Status.OK


def _known_corpus(given: str | None) -> str | None:
    """The corpus of known bugs, checked now: bad input is reported before any backend starts."""
    from fuzzer.campaign.replay import corpus_cases

    if given == "off" or (given is None and not Path("corpus").is_dir()):
        return None
    corpus = Path(given or "corpus")
    corpus_cases(corpus)
    return str(corpus.resolve())


class _NewestBug:
    """The title of the bug a campaign found last, for its progress display."""

    def __init__(self, out: Path):
        self.out, self.seen, self.title = out, set[str](), ""

    def line(self, bugs: set[str]) -> str:
        from fuzzer.report.campaign import bug_title

        fresh = sorted(bugs - self.seen)
        if fresh:
            self.seen |= bugs
            self.title = bug_title(self.out, fresh[-1])
        return f", newest: {self.title}" if self.title else ""


def _resumed(ctx: click.Context, requested: CampaignOptions) -> CampaignOptions:
    """The stored campaign's options with a new budget where one is given; any other option given
    must agree with the stored one."""
    from fuzzer.campaign.state import BUDGET, differences, stored_options

    stored = stored_options(requested.out)
    given = {name for name in ctx.params if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE}
    conflicts = [
        f"--{CAMPAIGN_FLAGS[path].replace('_', '-')} ({path} was {old!r})"
        for path, (old, _) in sorted(differences(stored, requested).items())
        if CAMPAIGN_FLAGS.get(path) in given
    ]
    if conflicts:
        raise BadInput(
            f"{requested.out} is resumed with its own options; these contradict them: {', '.join(conflicts)}"
        )
    return replace(stored, **{name: getattr(requested, name) for name in BUDGET if name in given})


@main.command(epilog=EXIT_STATUS_HELP)
@click.option("--seed", type=int, default=0, show_default=True)
@MAX_NODES_OPTION
@click.option("--ops", default=None, help="Comma-separated op types to draw from.")
@click.option("--dtypes", default=None, help="Comma-separated dtypes to generate.")
@PATTERNS_OPTION
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Case folder to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def gen(seed, max_nodes, ops, dtypes, patterns, out, as_json) -> None:
    """Generate one case (graph, values, model.onnx) into a folder."""
    from fuzzer.campaign.pipeline import prepare_case
    from fuzzer.core.files import write_atomic
    from fuzzer.generate.generator import generate
    from specs.lowering import to_onnx

    options = _gen_options(max_nodes, ops, dtypes, patterns)
    _writable(out)
    prepared = prepare_case(generate(seed, options), seed, SearchOptions())
    case = prepared.case
    case.save(out)
    write_atomic(out / "model.onnx", to_onnx(case.graph, case.weights).SerializeToString())
    if as_json:
        document = {"case": str(out), "seed": seed, "nodes": len(case.graph.nodes), "ops": case.graph.op_types()}
        click.echo(json.dumps(document | {"finite": prepared.finite, "problems": prepared.problems}, indent=1))
        return
    click.echo(case.graph.text())
    for problem in prepared.problems:
        click.echo(f"validity problem: {problem}", err=True)


@main.command(epilog=EXIT_STATUS_HELP)
@click.argument("case_path", metavar="CASE", type=click.Path(exists=True, path_type=Path))
@click.option("--backends", default=DEFAULT_BACKENDS, show_default=True, callback=_backends)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def run(case_path, backends, timeout, as_json) -> Status:
    """Run one case (a case folder, or an .onnx file with random inputs) and print its verdict.

    Exit status 1 when a backend crashes or computes a wrong value; 2 when the case is invalid
    (the two references disagree).
    """
    from fuzzer.inputs.sampling import case_uncomparable
    from fuzzer.judge import judge_case

    case = load_case(case_path)
    with _session(backends, timeout) as session:
        outcomes, verdict = judge_case(session, case, case_uncomparable(case))
    if as_json:
        click.echo(json.dumps(verdict.to_json() | {"statuses": verdict.statuses}, indent=1, sort_keys=True))
    else:
        for name, outcome in outcomes.items():
            failure = f" {outcome.phase}: {outcome.exc_type}: {outcome.message}" if outcome.failed else ""
            click.echo(f"{name:10} {verdict.statuses[name]:11} {outcome.seconds:7.3f}s{failure}")
        click.echo(f"verdict: {verdict.kind}{' (' + verdict.reason + ')' if verdict.reason else ''}")
        for finding in verdict.findings:
            click.echo(f"  {json.dumps(finding.to_json(), sort_keys=True)}")
    uncompared = {"nonfinite": Status.OK, "out_of_domain": Status.OK}
    return ({"consistent": Status.OK, "invalid": Status.BAD_INPUT} | uncompared).get(verdict.kind, Status.BUG)


REPLAY_STATUS_HELP = """\b
Exit status of replay:
  0  no regression (known bugs still failing, fixed or flaky are reported, not failed)
  1  a regression: a backend that passed a kept case now fails, or fails
     another way; with --strict also a kept bug that still fails
  2  bad input or usage (one line on stderr)
  3  an internal error of dlfuzz"""


@main.command(epilog=REPLAY_STATUS_HELP)
@click.argument("corpus", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("corpus"))
@click.option(
    "--backends",
    default=DEFAULT_BACKENDS,
    show_default=True,
    callback=_backends,
    help="Backends every case runs on; each configuration a kept bug was found on (tvm-passes) runs too.",
)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JUnit XML here.")
@click.option(
    "--markdown",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a Markdown summary here (for a CI log or a pull-request comment).",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Cases replayed at once.")
@click.option("--strict", is_flag=True, help="Also exit 1 when a kept bug still fails.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def replay(corpus, backends, junit, markdown, jobs, strict, timeout, as_json) -> Status:
    """Replay the kept cases of CORPUS (default: corpus/) and classify each backend on each case.

    pass; still-failing (a kept bug still happens); fixed (it no longer does: update the corpus);
    regressed (a backend that passed now fails); changed (a kept bug fails another way); flaky (a
    re-run of a case that differed from the corpus disagreed with the first run).
    """
    from contextlib import ExitStack

    from fuzzer.campaign.replay import (
        STILL_BROKEN,
        bug_backends,
        corpus_cases,
        junit_xml,
        load_expectations,
        markdown_summary,
        replay_all,
    )
    from fuzzer.core.files import write_atomic

    cases = corpus_cases(corpus)
    # Expectations name backends as their workers do; only a built-in name can be started from it.
    backends = (*backends, *(name for name in bug_backends(cases) if name in BUILTIN and name not in backends))
    titles = {folder.name: load_expectations(folder).get("title", "") for folder in cases}
    for path in (junit, markdown):
        if path:
            _writable(path.parent)
    with ExitStack() as stack:
        sessions = [stack.enter_context(_session(backends, timeout)) for _ in range(min(jobs, len(cases)))]
        results = replay_all(cases, sessions)
    for r in results if not as_json else ():
        click.echo(f"{r.result:13} {r.case} {r.backend} (expected {r.expected}, got {r.actual}) {r.detail}")
    if junit:
        write_atomic(junit, junit_xml(results))
    if markdown:
        write_atomic(markdown, markdown_summary(results, titles).encode())
    failed = sum(r.failed for r in results)
    still = sum(r.result == STILL_BROKEN for r in results)
    if as_json:
        totals = {"cases": len(cases), "checks": len(results), "regressions": failed, "still_failing": still}
        click.echo(json.dumps(totals | {"results": [asdict(r) for r in results]}, indent=1))
    else:
        click.echo(f"{len(cases)} cases, {len(results)} checks, {failed} regressions, {still} still failing")
    return Status.BUG if failed or (strict and still) else Status.OK


@main.command(epilog=EXIT_STATUS_HELP)
@click.argument("bug", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--corpus", type=click.Path(file_okay=False, path_type=Path), default=Path("corpus"), show_default=True)
@click.option("--name", default=None, help="Folder name in the corpus (default: the bug signature).")
@click.option(
    "--backends",
    default=DEFAULT_BACKENDS,
    show_default=True,
    callback=_backends,
    help="Backends the kept case expects today's behaviour of (run once now); the bug's own is added.",
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def keep(bug, corpus, name, backends, timeout, as_json) -> None:
    """Keep a bug folder's case in the corpus so `dlfuzz replay` checks it from now on."""
    from fuzzer.campaign.replay import bug_meta
    from fuzzer.campaign.replay import keep as keep_case

    target = _writable(corpus)
    with _session(tuple(dict.fromkeys((*backends, bug_meta(bug)["backend"]))), timeout) as session:
        kept = keep_case(bug, target, session, name)
    click.echo(json.dumps({"kept": str(kept)}) if as_json else f"kept {kept}")


@main.command(epilog=EXIT_STATUS_HELP)
@click.argument("corpus", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("corpus"))
@click.option("--backends", default=DEFAULT_BACKENDS, show_default=True, callback=_backends)
@click.option(
    "--reduce-budget",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds of triage (reduction, trigger and guilt search) for each kept bug.",
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the names added, per kept case and backend, as JSON.")
def refresh(corpus, backends, reduce_budget, timeout, as_json) -> None:
    """Triage every kept bug of CORPUS again and add the names it is filed under today (its trigger, its
    guilty pass) to its expect.json, so `fuzz --known` knows it by them, not only by its reduced case."""
    from fuzzer.campaign.replay import corpus_cases, expects_consistent
    from fuzzer.campaign.replay import refresh as refresh_case

    _writable(corpus)
    bugs = [folder for folder in corpus_cases(corpus) if not expects_consistent(folder)]
    with _session(backends, timeout) as session:
        added = {folder.name: refresh_case(folder, session, reduce_budget) for folder in bugs}
    if as_json:
        click.echo(json.dumps(added, indent=1, sort_keys=True))
        return
    for name, names in added.items():
        for backend, new in names.items():
            click.echo(f"{name} {backend}: + {', '.join(new)}")
    click.echo(f"{len(bugs)} kept bugs, {sum(bool(names) for names in added.values())} given new names")


@main.command(epilog=EXIT_STATUS_HELP)
@click.argument("campaigns", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--corpus", type=click.Path(file_okay=False, path_type=Path), default=Path("corpus"), show_default=True)
@click.option("--backends", default=DEFAULT_BACKENDS, show_default=True, callback=_backends)
@click.option(
    "--budget",
    type=click.FloatRange(min=0),
    default=120.0,
    show_default=True,
    help="Backend seconds the new cases may add to a replay of the corpus; those adding the most pairs come first.",
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def cover(campaigns, corpus, backends, budget, timeout, as_json) -> None:
    """Keep coverage cases: the fewest consistent cases of CAMPAIGNS (chosen greedily) that add op x
    dtype pairs the corpus's consistent cases lack, each run again and kept only if still consistent.

    Candidates are the consistent cases a campaign kept the graph of (its pool/, written with
    feedback on); the command says which offered pairs no case covers.
    """
    from fuzzer.campaign.cover import cover as cover_corpus
    from fuzzer.campaign.state import CAMPAIGN
    from fuzzer.campaign.support import load_or_probe

    for campaign in campaigns:
        if not (campaign / CAMPAIGN).is_file():
            raise BadInput(f"{campaign}: not a campaign (no {CAMPAIGN})")
    with _session(backends, timeout) as session, _probe_display() as probing:
        report = cover_corpus(campaigns, _writable(corpus), session, load_or_probe(session, probing), budget)
    document = report.to_json()
    if as_json:
        click.echo(json.dumps(document, indent=1))
        return
    for name in report.kept:
        click.echo(f"kept {corpus / name}")
    for name, why in report.refused.items():
        click.echo(f"not kept {name}: {why}")
    click.echo(
        f"{len(report.kept)} coverage cases kept ({report.seconds:.0f} backend seconds; {report.over_budget} more "
        f"would add pairs past --budget); consistent cases now cover {document['covered_pairs']} of "
        f"{document['offered_pairs']} op x dtype pairs ({document['ops']} op types); uncovered: "
        f"{len(document['uncovered'])} pairs no consistent case drew, {len(document['uncovered_blocked'])} "
        "never drawn or crashing a backend alone (--json lists them)"
    )
    if document["uncovered_ops"]:
        click.echo(f"op types no consistent case holds: {', '.join(document['uncovered_ops'])}")


@main.command(epilog=EXIT_STATUS_HELP)
@click.argument("case_path", metavar="CASE", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--backend",
    default=None,
    callback=_one_backend,
    help="The system whose failure to keep (default: the first finding's).",
)
@click.option("--budget", type=click.FloatRange(min=0), default=300.0, show_default=True, help="Seconds to reduce.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds per backend per run.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Bug folder to write (default: CASE-reduced)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def reduce(case_path, backend, budget, timeout, out, as_json) -> Status:
    """Shrink a failing case while it fails the same way; write a bug folder with report and repro.py.

    Runs only the affected system and the references. Exit status 1: the case still fails and its
    bug folder is written; 0: it does not fail, nothing to reduce.
    """
    from fuzzer.inputs.sampling import case_uncomparable
    from fuzzer.judge import judge_case
    from fuzzer.report.bug import write_bug
    from fuzzer.triage.reduce import pinned, reduce_case
    from fuzzer.triage.signature import signature
    from oracles.registry import REFERENCES, SYSTEMS

    systems = [backend] if backend else list(SYSTEMS)
    case = load_case(case_path)
    folder = _writable(out or case_path.with_name(case_path.name + "-reduced"))
    with _session((*REFERENCES, *systems), timeout) as session:
        outcomes, verdict = judge_case(session, case, case_uncomparable(case))
        if verdict.kind == "invalid":
            raise BadInput(f"{case_path}: the references disagree ({verdict.reason}); nothing to reduce")
        wanted = session.workers[backend].name if backend else None
        findings = [f for f in verdict.findings if wanted in (None, f.backend)]
        if not findings:
            click.echo(f"nothing to reduce: verdict {verdict.kind}", err=True)
            if as_json:
                click.echo(json.dumps({"verdict": verdict.kind, "bug": None}))
            return Status.OK
        finding = findings[0]
        click.echo(f"reducing {finding.backend} {finding.symptom} ({len(case.graph.nodes)} nodes)", err=True)
        reduction = reduce_case(session, pinned(case, outcomes[finding.backend]), finding, budget)
        sig = signature(reduction.finding, reduction.case.graph)
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
    if as_json:
        document = {"verdict": verdict.kind, "bug": str(folder), "signature": sig, "backend": finding.backend}
        sizes = {
            "symptom": finding.symptom,
            "nodes": len(case.graph.nodes),
            "reduced_nodes": len(reduction.case.graph.nodes),
        }
        click.echo(json.dumps(document | sizes, indent=1))
        return Status.BUG
    click.echo(reduction.case.graph.text())
    click.echo(f"{len(case.graph.nodes)} -> {len(reduction.case.graph.nodes)} nodes, signature {sig}; wrote {folder}")
    return Status.BUG


@main.command(epilog=EXIT_STATUS_HELP)
@click.argument("path", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--html", "as_html", is_flag=True, help="Also write report.html (self-contained; a campaign's links each bug's)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the bug's meta, or the campaign's bugs, as JSON.")
def report(path, as_html, as_json) -> None:
    """Render report.md again: for one bug folder, or a campaign's bugs (new first, known marked)."""
    from fuzzer.report.bug import META
    from fuzzer.report.campaign import load_campaign, rerender
    from fuzzer.report.html import write_html

    markdown = rerender(path)
    page = write_html(path) if as_html else None
    if as_json:
        document = json.loads((path / META).read_text()) if (path / META).exists() else load_campaign(path).to_json()
        click.echo(json.dumps(document | {"report": str(markdown), "html": page and str(page)}, indent=1))
    elif page:
        click.echo(f"wrote {page}")
    else:
        click.echo(markdown.read_text())


@main.command(epilog=EXIT_STATUS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--backends",
    default=DEFAULT_BACKENDS,
    show_default=True,
    callback=_backends,
    help="Backends whose support to show.",
)
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
        with _session(backends) as session, _probe_display() as probing:
            matrix = load_or_probe(session, probing)
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


@contextmanager
def _probe_display() -> Iterator[Callable[[int, int], None]]:
    """The support probe's progress, shown only if the matrix is not cached."""
    from fuzzer.report.console import LiveProgress

    with LiveProgress("probing backend support", "checks") as display:
        yield lambda done, total: display.show(done, total)


@main.group(epilog=EXIT_STATUS_HELP)
def bench() -> None:
    """Benchmarks of dlfuzz's own stages."""


def _sizes(text: str, what: str = "node counts") -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated {what}, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"{what} must be at least 1")
    return sizes


@bench.command("inputs", epilog=EXIT_STATUS_HELP)
@click.option("--nodes", default="10,20,30", show_default=True, help="Comma-separated graph sizes, in nodes.")
@click.option("--cases", type=click.IntRange(min=1), default=512, show_default=True, help="Graphs per size.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ops", default=None, help="Comma-separated op types to draw from (default: all).")
@click.option("--dtypes", default=None, help="Comma-separated dtypes to generate (default: float32,int64,bool).")
@PATTERNS_OPTION
@click.option("--time-budget", type=click.FloatRange(min=0.001), default=None, help="Search CPU seconds per case.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_inputs_command(nodes, cases, seed, ops, dtypes, patterns, time_budget, as_json) -> None:
    """Input search against random sampling with the same time per case: finite share, time, usefulness."""
    from fuzzer.campaign.bench import bench_inputs, render_table
    from fuzzer.report.console import PhasedProgress

    sizes = _sizes(nodes)
    options = _gen_options(max(sizes), ops, dtypes, patterns)

    with PhasedProgress("cases") as display:

        def progress(size: int, done: int, total: int) -> None:
            display.show(f"{size} nodes", done, total)

        report = bench_inputs(sizes, cases, seed, options, _search_options(time_budget), progress)
    click.echo(json.dumps(report, indent=1) if as_json else render_table(report))


@bench.command("batch", epilog=EXIT_STATUS_HELP)
@click.option("--sizes", default="1,2,4,8", show_default=True, help="Comma-separated batch sizes K.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True, help="Batches of each size.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--backends", default=DEFAULT_BACKENDS, show_default=True, callback=_backends)
@MAX_NODES_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_batch_command(sizes, rounds, seed, backends, max_nodes, as_json) -> None:
    """Seconds per case as each compiler takes K cases as one graph: what `fuzz --batch` defaults are
    measured with. Sizes run side by side, round by round, on fresh cases."""
    from fuzzer.campaign.bench_batch import bench_batch, render_table
    from fuzzer.campaign.support import load_or_probe
    from fuzzer.report.console import PhasedProgress

    batch_sizes = _sizes(sizes, "batch sizes")
    with _session(backends) as session:
        weight = load_or_probe(session).draw_weight  # ops and dtypes every backend supports, as a campaign draws
        with PhasedProgress("rounds") as display:
            report = bench_batch(
                session,
                batch_sizes,
                rounds,
                seed,
                GenOptions(max_nodes=max_nodes),
                weight,
                lambda done, total: display.show("batches", done, total),
            )
    click.echo(json.dumps(report, indent=1) if as_json else render_table(report))


@bench.command("coverage", epilog=EXIT_STATUS_HELP)
@click.option("--cases", type=click.IntRange(min=1), default=300, show_default=True, help="Cases per mode.")
@click.option("--seed", type=int, default=0, show_default=True, help="Campaign seed of both modes.")
@click.option("--backends", default=DEFAULT_BACKENDS, show_default=True, callback=_backends)
@MAX_NODES_OPTION
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep each mode's campaign folder under DIR/blind and DIR/guided (default: temporary, removed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_coverage_command(cases, seed, backends, max_nodes, keep, as_json) -> None:
    """The blind draw against pattern-aware generation with feedback, the same number of cases each on the
    same warm compilers: patterns, depth, op types, and the distinct optimizations each compiler fired."""
    from fuzzer.campaign.bench_coverage import bench_coverage, render_table
    from fuzzer.campaign.state import CampaignOptions
    from fuzzer.report.console import PhasedProgress

    base = CampaignOptions(
        out=Path("."), seed=seed, max_tests=cases, backends=backends, gen=GenOptions(max_nodes=max_nodes)
    )

    with PhasedProgress("cases") as display:
        report = bench_coverage(base, progress=lambda mode, done: display.show(mode, done, cases), keep=keep)
    click.echo(json.dumps(report, indent=1) if as_json else render_table(report))


@bench.command("campaign", epilog=EXIT_STATUS_HELP)
@click.option("--time", "time_budget", required=True, callback=_duration, help="Fuzzing time per run: 120, 2m, 1h.")
@click.option(
    "-j",
    "--jobs",
    default="1",
    show_default=True,
    callback=_job_counts,
    help="Lanes; a comma-separated list (1,2) runs one campaign per count, one after the other, and prints "
    "each one's cases/min over the first's. Stage seconds are summed over lanes.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Campaign seed of every run.")
@click.option("--backends", default=DEFAULT_BACKENDS, show_default=True, callback=_backends)
@click.option("--batch", default="auto", show_default=True, callback=_batch, help="As `dlfuzz fuzz --batch`.")
@click.option(
    "--value-sets",
    default="1",
    show_default=True,
    callback=_value_set_counts,
    help="As `dlfuzz fuzz --value-sets`; a comma-separated list (1,4) runs each lane count with each.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep each run's campaign folder under DIR/j<N> (default: temporary, removed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_campaign_command(time_budget, jobs, seed, backends, batch, value_sets, out, as_json) -> None:
    """A real campaign (the options of `dlfuzz fuzz`) for --time: cases/min, and the wall time split into
    dlfuzz's own stages (generate, search, validate, compare, triage, ipc) and each backend's convert,
    compile and run. own_share is the own stages' seconds over seconds x jobs."""
    from rich.console import Console

    from fuzzer.campaign.bench_campaign import bench_campaign, render_table
    from fuzzer.campaign.state import CampaignOptions
    from fuzzer.report.console import PhasedProgress

    base = CampaignOptions(
        out=Path("."), seed=seed, time_budget=time_budget, backends=backends, known=_known_corpus(None), batch=batch
    )
    with PhasedProgress("cases") as display:

        def progress(count: int, done: int, elapsed: float) -> None:
            display.show(f"-j {count}", done, None, elapsed, time_budget)

        report = bench_campaign(base, jobs, keep=out, progress=progress, value_sets=value_sets)
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        Console().print(render_table(report))


if __name__ == "__main__":
    main()
