"""What a person sees while dlfuzz works and when a campaign ends: a live bar on a terminal, a plain line
at an interval where stderr is a log (CI, a pipe), and the campaign's closing table.

rich draws the bar and the tables: it is maintained, and degrades to plain text on a non-terminal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from fuzzer.report.campaign import SUMMARY, Campaign, outcome_table

PLAIN_INTERVAL = 10.0  # seconds between two plain progress lines


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


class _Bar(Progress):
    """A progress bar with lines of detail under it."""

    detail: tuple[str, ...] = ()

    def get_renderables(self) -> Iterator[RenderableType]:
        yield Group(self.make_tasks_table(self.tasks), *(Text(line, overflow="ellipsis") for line in self.detail))


class LiveProgress:
    """Progress of one long task on stderr: counted, and bounded by a count, a time budget, or both."""

    def __init__(self, label: str, unit: str, console: Console | None = None, interval: float = PLAIN_INTERVAL):
        self.label, self.unit, self.interval = label, unit, interval
        self.console = console or Console(stderr=True, highlight=False)
        self.started = time.monotonic()  # the clock of a task that does not give its own elapsed time
        self.started_showing = False
        self.printed: float | None = None  # when the last plain line was printed
        self.bar: _Bar | None = None

    def __enter__(self) -> LiveProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None):
        self.close()

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
            self.bar = None

    def _start(self) -> None:
        """The bar appears with the first report, so that a task that never reports (a cached probe) shows nothing."""
        if self.console.is_terminal:
            self.bar = _Bar(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[count]}  {task.fields[rate]}  elapsed {task.fields[elapsed]}"),
                TextColumn("left {task.fields[left]}"),
                console=self.console,
                refresh_per_second=4,
            )
            self.bar.add_task(self.label, total=1.0, count="", rate="", elapsed="0:00", left="?")
            self.bar.start()

    def show(
        self,
        done: int,
        total: int | None = None,
        elapsed: float | None = None,
        time_budget: float | None = None,
        detail: list[str] | None = None,
    ) -> None:
        """Report `done` units of `total` and/or `elapsed` seconds of `time_budget`; the bar shows whichever
        runs out first, and the time left at the rate so far."""
        elapsed = time.monotonic() - self.started if elapsed is None else elapsed
        fractions, lefts = [], []
        if total:
            fractions.append(done / total)
            lefts += [(total - done) * elapsed / done] if done else []
        if time_budget:
            fractions.append(elapsed / time_budget)
            lefts.append(max(time_budget - elapsed, 0.0))
        fraction = min(max(fractions, default=0.0), 1.0)
        count = f"{done}/{total} {self.unit}" if total else f"{done} {self.unit}"
        rate = f"{60 * done / elapsed:.1f} {self.unit}/min" if elapsed > 0 else ""
        left = clock(min(lefts)) if lefts else "?"
        if not self.started_showing:
            self.started_showing = True
            self._start()
        now = time.monotonic()
        if self.bar:
            self.bar.detail = tuple(detail or ())
            self.bar.update(
                self.bar.task_ids[0], completed=fraction, count=count, rate=rate, elapsed=clock(elapsed), left=left
            )
        elif not self.console.is_terminal and (
            self.printed is None or now - self.printed >= self.interval or fraction >= 1
        ):
            self.printed = now
            parts = [f"{self.label} {count} ({100 * fraction:.0f}%)", rate, f"elapsed {clock(elapsed)}", f"left {left}"]
            line = "  ".join(p for p in parts if p) + "".join(f" | {d}" for d in detail or [])
            self.console.print(line, soft_wrap=True, markup=False)
        if fraction >= 1:
            self.close()


class PhasedProgress:
    """Phases of one job shown one after the other (a benchmark's graph sizes or modes), each with its bar."""

    def __init__(self, unit: str, console: Console | None = None):
        self.unit, self.console = unit, console
        self.phase: str | None = None
        self.display: LiveProgress | None = None

    def __enter__(self) -> PhasedProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None):
        if self.display:
            self.display.close()

    def show(
        self,
        phase: str,
        done: int,
        total: int | None,
        elapsed: float | None = None,
        time_budget: float | None = None,
    ) -> None:
        if phase != self.phase or self.display is None:
            if self.display:
                self.display.close()
            self.phase, self.display = phase, LiveProgress(phase, self.unit, self.console)
        self.display.show(done, total, elapsed, time_budget)


def backend_counts(name: str, counts: dict[str, int]) -> str:
    """One backend's outcomes so far: ok, then each other status it had."""
    return f"{name} ok {counts.get('ok', 0)}" + "".join(
        f" {status} {n}" for status, n in counts.items() if status != "ok" and n
    )


def closing_summary(campaign: Campaign) -> RenderableType:
    """Totals, outcomes per backend, the bugs (new first, known marked) with their folders, and where
    summary.json is."""
    summary = campaign.summary
    totals = Table(title=f"campaign {campaign.path}", title_justify="left")
    for column in ("cases", "valid", "invalid", "finite", "cases/min", "seconds"):
        totals.add_column(column, justify="right")
    totals.add_row(
        *(str(summary.get(key, 0)) for key in ("cases", "valid", "invalid", "finite", "cases_per_minute", "seconds"))
    )
    outcomes = outcome_table(summary)
    backends = Table()
    backends.add_column("backend")
    for status in next(iter(outcomes.values()), {}):
        backends.add_column(status, justify="right")
    for name, counts in outcomes.items():
        backends.add_row(name, *(str(n) for n in counts.values()))
    lines: list[RenderableType] = [totals, backends]
    cost = summary.get("known_cost")
    if cost and cost["cases"]:
        lines.append(
            Text(
                f"cases spent on known bugs: {cost['cases']} (first half {cost['first_half']}, "
                f"second half {cost['second_half']}; what triggers a known bug is drawn less once it is known)"
            )
        )
    lines.append(Text(f"{len(campaign.new)} new bug(s)" + (":" if campaign.new else ""), style="bold"))
    for heading, bugs in (("", campaign.new), ("known bug(s), already in the corpus:", campaign.known)):
        if heading and bugs:
            lines.append(Text(f"{len(bugs)} {heading}", style="bold"))
        for bug in bugs:
            mark = f"  [known: corpus/{bug.known}]" if bug.known else ""
            lines.append(Text(f"  {bug.title}{mark}"))
            lines.append(Text(f"    {campaign.path / bug.folder if bug.folder else bug.signature}", style="dim"))
    lines.append(Text(f"summary.json: {campaign.path / SUMMARY}"))
    return Group(*lines)


def print_closing(campaign: Campaign, console: Console | None = None) -> None:
    """Print the closing summary on stdout without wrapping its paths, so they can be copied."""
    (console or Console(highlight=False)).print(closing_summary(campaign), soft_wrap=True)
