"""A campaign's folder on disk: its options, checked before any work starts, and its records,
repaired after a kill so that a resumed campaign neither loses nor repeats a finding."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fuzzer.core.files import write_atomic
from fuzzer.generate.generator import GenOptions
from fuzzer.inputs.search import SearchOptions
from fuzzer.report.bug import OCCURRENCES
from fuzzer.report.campaign import STATS
from fuzzer.triage.filing import ALIASES, FILED

CAMPAIGN = "campaign.json"
BUGS, INVALID, SKIPPED, POOL = "bugs", "invalid", "skipped", "pool"
BUDGET = ("max_tests", "time_budget")  # the only options a resumed campaign may be given anew


class CampaignError(Exception):
    """A campaign that cannot start or resume (its output folder holds another campaign, say)."""


@dataclass
class CampaignOptions:
    out: Path
    seed: int = 0
    max_tests: int | None = None  # cases in all, counting those a resumed campaign already ran
    time_budget: float | None = None  # fuzzing seconds in all, likewise
    backends: tuple[str, ...] = ("eager", "ort-noopt", "ort", "tvm", "inductor")
    gen: GenOptions = field(default_factory=GenOptions)
    search: SearchOptions | None = field(default_factory=SearchOptions)  # None: plain random sampling
    timeout: float = 60.0
    memory_mb: int | None = 8192
    support_matrix: bool = True  # draw only op x dtype pairs every backend supports (probed, cached)
    reduce_budget: float = 60.0  # seconds to reduce each new bug; 0: keep cases as found
    feedback: bool = True  # steer draws by coverage and grow cases that fired something new; off: the blind draw
    known: str | None = None  # a corpus whose kept bugs are counted as known, not filed again, and drawn less
    jobs: int = 1  # cases run side by side, each lane with its own backend workers
    batch: int | None = None  # cases a batching backend compiles as one graph; None: its measured default, 1: off
    # Consecutive cases that share one drawn graph and its weights, each with inputs of its own: a compiler
    # compiles the graph once and runs every value set on it. 1: a graph per case.
    value_sets: int = 1

    def to_json(self) -> dict[str, Any]:
        """Everything but the folder: what campaign.json stores so that a resume needs no options."""
        document = asdict(self)
        del document["out"]
        document["backends"] = list(self.backends)
        return document

    @classmethod
    def from_json(cls, out: Path, document: dict[str, Any]) -> CampaignOptions:
        gen = document["gen"]
        search = document["search"]
        return cls(
            out=out,
            **{k: v for k, v in document.items() if k not in ("gen", "search", "backends")},
            backends=tuple(document["backends"]),
            gen=GenOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in gen.items()}),
            search=SearchOptions(**search) if search is not None else None,
        )


def differences(stored: CampaignOptions, requested: CampaignOptions) -> dict[str, tuple[Any, Any]]:
    """The options, as dotted paths (`gen.max_nodes`), in which `requested` is another campaign than `stored`."""
    old, new = _flat(stored.to_json()), _flat(requested.to_json())
    return {path: (old.get(path), new.get(path)) for path in old.keys() | new.keys() if old.get(path) != new.get(path)}


def _flat(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if key in BUDGET and not prefix:
            continue
        if isinstance(value, dict):
            flat[prefix + key] = "on"  # present (a None beside it is off); its fields compare one by one
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def stored_options(out: Path) -> CampaignOptions:
    """The options a campaign folder was run with, read from its campaign.json."""
    path = out / CAMPAIGN
    if not path.is_file():
        raise CampaignError(f"{out} holds no campaign to resume (no {CAMPAIGN})")
    try:
        return CampaignOptions.from_json(out, json.loads(path.read_text())["options"])
    except (ValueError, KeyError, TypeError) as error:
        raise CampaignError(f"{path} is damaged ({type(error).__name__}: {error}); cannot resume") from None


def check_output(options: CampaignOptions, resume: bool) -> None:
    """Refuse, before any work starts and without writing anything, an output folder that cannot be
    written or would mix two campaigns."""
    out = options.out
    if out.exists() and not out.is_dir():
        raise CampaignError(f"{out} exists and is not a folder")
    if resume:
        changed = differences(stored_options(out), options)
        if changed:
            shown = ", ".join(f"{path} {old!r} (asked {new!r})" for path, (old, new) in sorted(changed.items()))
            raise CampaignError(f"{out} was run with other options: {shown}")
    elif (out / CAMPAIGN).exists():
        raise CampaignError(f"{out} already holds a campaign; pass --resume to continue it or choose another --out")
    check_writable(out)


def check_writable(out: Path) -> None:
    """Refuse an output path dlfuzz could not create or write: try to make a folder where it will be
    made (or in it), and take that away again, so nothing is left behind either way."""
    existing = out.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise CampaignError(f"{out}: {existing} is not a folder")
    try:
        Path(tempfile.mkdtemp(prefix=".dlfuzz-probe-", dir=existing)).rmdir()
    except OSError as error:
        raise CampaignError(f"{out}: cannot write in {existing} ({error.strerror})") from None


def recorded_cases(out: Path) -> int:
    """How many cases the folder's stats hold whole (a cut-off last line has no newline yet)."""
    stats = out / STATS
    return stats.read_text().count("\n") if stats.exists() else 0


@dataclass
class Records:
    """What a campaign folder already holds: the stats lines written whole, and what was repaired."""

    lines: list[dict[str, Any]]
    repaired: list[str]


def open_records(out: Path, resume: bool) -> Records:
    """Start the folder's records afresh, or read them back after a kill and roll back whatever the
    last, unrecorded case left behind, so that case runs again from a clean state."""
    out.mkdir(parents=True, exist_ok=True)
    stats = out / STATS
    if not resume or not stats.exists():
        write_atomic(stats, b"")
        return Records([], [])
    repaired: list[str] = []
    lines = _read_lines(stats, repaired)
    for number, line in enumerate(lines):
        if line.get("id") != f"{number:06d}":
            raise CampaignError(f"{stats}: line {number + 1} holds case {line.get('id')!r}, not {number:06d}")
    _roll_back(out, len(lines), repaired)
    return Records(lines, repaired)


def _read_lines(path: Path, repaired: list[str]) -> list[dict[str, Any]]:
    """The JSON lines of `path`; a last line cut off by a kill is dropped from the file, any other
    damage is refused rather than silently skipped."""
    texts = path.read_text().splitlines(keepends=True)
    lines = []
    for number, text in enumerate(texts):
        try:
            lines.append(json.loads(text))
        except ValueError:
            if number < len(texts) - 1:
                raise CampaignError(f"{path}: line {number + 1} is damaged; not resuming over it") from None
    if texts and not texts[-1].endswith("\n"):  # a line is written whole with its newline, or it was cut off
        what = "dropped a cut-off last line" if len(lines) < len(texts) else "ended its last line"
        repaired.append(f"{path.parent.name + '/' + path.name}: {what}")
        write_atomic(path, "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode())
    return lines


def _roll_back(out: Path, done: int, repaired: list[str]) -> None:
    """Take away the findings, invalid and skipped cases and temporary files of cases from `done` on."""
    for temporary in out.rglob(".*.tmp"):
        temporary.unlink()
        repaired.append(f"removed {temporary.relative_to(out)}")
    for kept in (INVALID, SKIPPED):
        for folder in sorted((out / kept).glob("*")) if (out / kept).is_dir() else []:
            if folder.name.isdigit() and int(folder.name) >= done:
                shutil.rmtree(folder)
                repaired.append(f"removed {kept}/{folder.name} of a case that runs again")
    for pooled in sorted((out / POOL).glob("*.json")) if (out / POOL).is_dir() else []:
        if pooled.stem.isdigit() and int(pooled.stem) >= done:
            pooled.unlink()
            repaired.append(f"removed {POOL}/{pooled.name} of a case that runs again")
    bugs = out / BUGS
    removed = set()
    for folder in sorted(p for p in bugs.glob("*") if p.is_dir()) if bugs.is_dir() else []:
        occurrences = folder / OCCURRENCES
        lines = _read_lines(occurrences, repaired) if occurrences.exists() else []
        kept = [line for line in lines if int(line["case"]) < done]
        if not kept or not (folder / FILED).exists():
            shutil.rmtree(folder)
            removed.add(folder.name)
            repaired.append(f"removed {BUGS}/{folder.name}, filed by a case that runs again")
        elif len(kept) < len(lines):
            write_atomic(occurrences, "".join(json.dumps(line, sort_keys=True) + "\n" for line in kept).encode())
            repaired.append(f"{BUGS}/{folder.name}: dropped sightings from a case that runs again")
    aliases_path = bugs / ALIASES
    if removed and aliases_path.exists():
        aliases = json.loads(aliases_path.read_text())
        kept_aliases = {name: target for name, target in aliases.items() if target not in removed}
        write_atomic(aliases_path, json.dumps(kept_aliases, indent=1, sort_keys=True).encode())
