"""The regression suite: replay kept cases and compare each backend with what the corpus expects."""

from __future__ import annotations

import json
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzzer.core.files import write_atomic
from fuzzer.core.testcase import CASE_FILE, VALUES_FILE, CaseFormatError, TestCase
from fuzzer.inputs.sampling import case_uncomparable
from fuzzer.judge import judge_case
from fuzzer.judge.compare import Verdict
from fuzzer.report.bug import record_filing, title
from fuzzer.triage.filing import BugFolders, file_findings, read_aliases
from fuzzer.triage.signature import signature
from oracles.session import OracleSession

EXPECT_FILE = "expect.json"
PASS, REGRESSION, STILL_BROKEN, FIXED, CHANGED = "pass", "regressed", "still-failing", "fixed", "changed"
FLAKY = "flaky"  # a second run of the case disagreed with the first
SETTLED = (PASS, STILL_BROKEN)  # what the corpus expected: anything else is run again to tell flakiness apart


@dataclass
class ReplayResult:
    """One backend on one kept case: what the corpus expected and what happened."""

    case: str
    backend: str
    expected: str
    actual: str
    result: str
    detail: str
    seconds: float

    @property
    def failed(self) -> bool:
        return self.result in (REGRESSION, CHANGED)


def corpus_cases(corpus: Path) -> list[Path]:
    """Kept case folders under `corpus`, in a stable order."""
    if not corpus.is_dir():
        raise CaseFormatError(f"{corpus}: not a folder")
    cases = sorted(p.parent for p in corpus.rglob(EXPECT_FILE))
    if not cases:
        raise CaseFormatError(f"{corpus}: no kept cases (folders with {EXPECT_FILE})")
    return cases


def load_expectations(folder: Path) -> dict[str, Any]:
    try:
        expect = json.loads((folder / EXPECT_FILE).read_text())
        expect["backends"] = dict(expect["backends"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CaseFormatError(f"{folder / EXPECT_FILE}: unreadable ({type(error).__name__}: {error})") from None
    return expect


def expects_consistent(folder: Path) -> bool:
    """A coverage case: kept because every backend ran it consistently, not because one failed."""
    return all(e["status"] == "ok" for e in load_expectations(folder)["backends"].values())


def bug_backends(cases: list[Path]) -> list[str]:
    """The backends the kept bugs of `cases` were found on (a configuration such as tvm-passes among
    them), which a replay runs beside the ones asked for: else a variant's bug would never be checked."""
    return sorted(
        {
            backend
            for folder in cases
            for backend, wanted in load_expectations(folder)["backends"].items()
            if wanted["status"] != "ok"
        }
    )


def replay_case(folder: Path, session: OracleSession) -> list[ReplayResult]:
    """Run one kept case; a backend the corpus expected to pass and that now fails is a regression.

    A case whose run differs from the corpus runs once more: a backend whose two runs disagree is flaky.
    """
    first = _run_once(folder, session)
    if all(r.result in SETTLED for r in first):
        return first
    again = {r.backend: r for r in _run_once(folder, session)}
    return [
        r
        if r.backend in again and again[r.backend].result == r.result
        else ReplayResult(
            r.case,
            r.backend,
            r.expected,
            r.actual,
            FLAKY,
            f"{r.result}, then a re-run: {again[r.backend].result if r.backend in again else 'not run'}",
            r.seconds,
        )
        for r in first
    ]


def replay_all(cases: list[Path], sessions: list[OracleSession]) -> list[ReplayResult]:
    """Every kept case, spread over the sessions (one thread each, each session its own workers), in corpus order."""
    queue = list(enumerate(cases))
    done: dict[int, list[ReplayResult]] = {}

    def drain(session: OracleSession) -> None:
        while queue:
            index, folder = queue.pop(0)  # list.pop is atomic under the GIL: no case runs twice
            done[index] = replay_case(folder, session)

    with ThreadPoolExecutor(len(sessions)) as pool:
        for future in [pool.submit(drain, session) for session in sessions]:
            future.result()
    return [r for index in sorted(done) for r in done[index]]


def _run_once(folder: Path, session: OracleSession) -> list[ReplayResult]:
    case = TestCase.load(folder)
    expect = load_expectations(folder)
    outcomes, verdict = judge_case(session, case, case_uncomparable(case))
    actual = _actual(case, verdict)
    results = []
    for backend, wanted in sorted(expect["backends"].items()):
        if backend not in outcomes:
            continue
        got = actual.get(backend, {"status": verdict.statuses.get(backend, "ok")})
        results.append(_classify(folder.name, backend, wanted, got, verdict, outcomes[backend].seconds))
    return results


def _actual(case: TestCase, verdict: Verdict) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for finding in verdict.findings:
        status = "mismatch" if finding.symptom == "mismatch" else "crash"
        found[finding.backend] = {"status": status, "signature": signature(finding, case.graph)}
    return found


def _classify(
    name: str, backend: str, wanted: dict[str, Any], got: dict[str, str], verdict: Verdict, seconds: float
) -> ReplayResult:
    expected, actual = wanted["status"], got["status"]
    if verdict.kind == "invalid":
        return ReplayResult(name, backend, expected, "invalid", CHANGED, verdict.reason, seconds)
    if expected == "ok":
        result = PASS if actual in ("ok", "unsupported") else REGRESSION
        detail = "" if result == PASS else f"now {actual}: {got.get('signature', '')}"
    elif actual in ("ok", "unsupported"):
        result, detail = FIXED, f"known {expected} no longer happens: update the corpus"
    elif wanted.get("signature") and got.get("signature") not in expected_signatures(wanted):
        result, detail = CHANGED, f"was {wanted['signature']}, now {got.get('signature')}"
    else:
        result, detail = STILL_BROKEN, wanted.get("signature", "")
    return ReplayResult(name, backend, expected, actual, result, detail, seconds)


def markdown_summary(results: list[ReplayResult], titles: dict[str, str]) -> str:
    """A Markdown table for a CI log or a pull-request comment: counts, then every case that is not a plain pass."""
    counts = Counter(r.result for r in results)
    order = (REGRESSION, CHANGED, FLAKY, FIXED, STILL_BROKEN, PASS)
    lines = [
        "## dlfuzz replay",
        "",
        " · ".join(f"**{counts[name]}** {name}" for name in order if counts[name]) or "no checks",
        "",
        "| result | case | backend | expected | got | detail |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted((r for r in results if r.result != PASS), key=lambda r: (order.index(r.result), r.case)):
        case = f"{r.case}: {titles[r.case]}" if titles.get(r.case) else r.case
        lines.append(f"| {r.result} | {case} | {r.backend} | {r.expected} | {r.actual} | {r.detail} |")
    return "\n".join(lines) + "\n"


def junit_xml(results: list[ReplayResult]) -> bytes:
    """JUnit XML that CI systems render: a regression is a failure, a known bug is skipped."""
    suite = ET.Element(
        "testsuite",
        name="dlfuzz-replay",
        tests=str(len(results)),
        failures=str(sum(r.failed for r in results)),
        skipped=str(sum(r.result in (STILL_BROKEN, FLAKY) for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for r in results:
        testcase = ET.SubElement(
            suite, "testcase", classname=f"corpus.{r.case}", name=r.backend, time=f"{r.seconds:.3f}"
        )
        if r.failed:
            ET.SubElement(
                testcase, "failure", message=f"{r.result}: expected {r.expected}, got {r.actual}"
            ).text = r.detail
        elif r.result == STILL_BROKEN:
            ET.SubElement(testcase, "skipped", message=f"known bug: {r.detail}")
        elif r.result == FLAKY:
            ET.SubElement(testcase, "skipped", message=f"flaky: {r.detail}")
        elif r.result == FIXED:
            ET.SubElement(testcase, "system-out").text = r.detail
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def keep(bug_folder: Path, corpus: Path, session: OracleSession, name: str | None = None) -> Path:
    """Copy a bug folder's case into the corpus with what every backend of `session` does on it now (run
    once here): a backend may fail on a kept case by another kept bug, and then expects that one. The
    backend the bug was filed against expects it under every name its folder goes by."""
    meta = bug_meta(bug_folder)
    case = TestCase.load(bug_folder)
    outcomes, verdict = judge_case(session, case, case_uncomparable(case))
    actual = _actual(case, verdict)
    backends: dict[str, dict[str, Any]] = {b: actual.get(b, {"status": "ok"}) for b in outcomes}
    filed = {"status": "mismatch" if meta["symptom"] == "mismatch" else "crash", "signature": meta["signature"]}
    now = actual.get(meta["backend"], {})
    names = {*filed_aliases(bug_folder.parent, meta["signature"]), *expected_signatures(now)}
    names.discard(meta["signature"])
    backends[meta["backend"]] = filed | ({"aliases": sorted(names)} if names else {})
    target = corpus / (name or meta["signature"])
    target.mkdir(parents=True, exist_ok=True)
    for file_name in (CASE_FILE, VALUES_FILE):
        shutil.copyfile(bug_folder / file_name, target / file_name)
    write_expectations(target, backends, {b: info.version for b, info in session.infos.items()}, title(meta))
    return target


def refresh(folder: Path, session: OracleSession, reduce_budget: float) -> dict[str, list[str]]:
    """Record in a kept bug's expectation the names today's triage files it under (its trigger, its guilty
    pass), which a campaign meeting another face of the bug computes but a case kept before could not
    know; returns the names added per backend. A finding that no longer matches its expectation is left
    to `replay` to report."""
    case = TestCase.load(folder)
    expect = load_expectations(folder)
    outcomes, verdict = judge_case(session, case, case_uncomparable(case))
    with tempfile.TemporaryDirectory() as scratch:
        bugs = Path(scratch)
        filed = file_findings(BugFolders(bugs, record_filing), case, outcomes, verdict, session, reduce_budget)
        names = {f.backend: {sig, *filed_aliases(bugs, sig)} for f, sig in zip(verdict.findings, filed, strict=True)}
    added: dict[str, list[str]] = {}
    for backend, wanted in expect["backends"].items():
        accepted = expected_signatures(wanted)
        if accepted & names.get(backend, set()) and (new := sorted(names[backend] - accepted)):
            wanted["aliases"] = sorted({*wanted.get("aliases", ()), *new})
            added[backend] = new
    if added:
        write_atomic(folder / EXPECT_FILE, json.dumps(expect, indent=1, sort_keys=True).encode())
    return added


def bug_meta(bug_folder: Path) -> dict[str, Any]:
    """A campaign bug folder's meta.json; a folder that is none is a CaseFormatError."""
    meta_file = bug_folder / "meta.json"
    if not meta_file.is_file() or not (bug_folder / CASE_FILE).is_file():
        raise CaseFormatError(f"{bug_folder}: not a dlfuzz bug folder (needs meta.json and {CASE_FILE})")
    return json.loads(meta_file.read_text())


def filed_aliases(bugs: Path, filed: str) -> list[str]:
    """The other names a campaign's bug folder goes by (its plain signatures, before a trigger or the
    guilty pass named it): a replay computes the plain one, so a kept bug must be known by it too."""
    return sorted(name for name, folder in read_aliases(bugs).items() if folder == filed)


def expected_signatures(expected: dict[str, Any]) -> set[str]:
    """Every name a kept bug's expectation accepts: its folder's signature and that folder's aliases."""
    return {expected["signature"], *expected.get("aliases", ())} if expected.get("signature") else set()


def write_expectations(folder: Path, backends: dict[str, dict[str, Any]], versions: dict[str, str], name: str) -> None:
    """expect.json: what each backend did on the kept case when it was kept, on which versions, and its title."""
    expect = {"backends": backends, "versions": versions, "title": name}
    write_atomic(folder / EXPECT_FILE, json.dumps(expect, indent=1, sort_keys=True).encode())
