"""Turn the backends' Outcomes for one case into a Verdict, with dtype-aware tolerances."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fuzzer.inputs.readouts import Readout
from fuzzer.inputs.sampling import Uncomparable
from oracles.base import BackendInfo, Outcome

# (rtol, atol) per float dtype; integers and bools must match exactly. atol is relative to the
# output's largest magnitude (at least 1): an element that nearly cancels carries the rounding
# error of its operands, not of itself.
TOLERANCES = {"float16": (5e-2, 1e-2), "float32": (1e-2, 1e-3), "float64": (1e-5, 1e-6)}
Kind = Literal["consistent", "mismatch", "crash", "invalid", "nonfinite", "out_of_domain"]
ORIGINAL = "original graph"  # what a metamorphic oracle's finding is against: its compiler on the case itself


@dataclass
class Discrepancy:
    """How one output differs from its expected value, in numbers a report can quote."""

    output: str
    reason: str  # "shape", "dtype", "values", "missing"
    measures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"output": self.output, "reason": self.reason, **self.measures}


@dataclass
class Finding:
    """One backend misbehaving on one case: a crash of some kind, or wrong outputs."""

    backend: str
    symptom: Literal["crash", "timeout", "died", "mismatch"]
    against: str | None = None
    discrepancy: Discrepancy | None = None
    outcome: Outcome | None = None
    attribution: dict[str, Any] | None = None  # who is wrong, against a float64 run (fuzzer.judge.rounding)

    @property
    def readout(self) -> str:
        """The readout kind a mismatch is in (`grad`, `shape2`), '' for the graph's own outputs: a wrong
        gradient and a wrong forward result of one graph are two bugs."""
        if self.symptom != "mismatch" or self.discrepancy is None:
            return ""
        kind, colon, _ = self.discrepancy.output.partition(":")
        return kind if colon else ""

    @property
    def kind(self) -> str:
        """The symptom, with the readout kind for a mismatch in one (`mismatch-grad`)."""
        return f"{self.symptom}-{self.readout}" if self.readout else self.symptom

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"backend": self.backend, "symptom": self.symptom}
        if self.against:
            data["against"] = self.against
        if self.discrepancy:
            data["discrepancy"] = self.discrepancy.to_json()
        if self.attribution:
            data["attribution"] = self.attribution
        if self.outcome:
            data.update({k: v for k, v in self.outcome.summary().items() if k in ("phase", "exc_type", "message")})
        return data


@dataclass
class Verdict:
    kind: Kind
    statuses: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.kind,
            "reason": self.reason,
            "findings": [f.to_json() for f in self.findings],
        }


def compare_outputs(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> Discrepancy | None:
    """The first output of `actual` that is not close to `expected`, or None if all are."""
    for name, want in expected.items():
        if name not in actual:
            return Discrepancy(name, "missing")
        got = np.asarray(actual[name])
        want = np.asarray(want)
        if got.shape != want.shape:
            return Discrepancy(name, "shape", {"expected": list(want.shape), "actual": list(got.shape)})
        if got.dtype != want.dtype:
            return Discrepancy(name, "dtype", {"expected": str(want.dtype), "actual": str(got.dtype)})
        discrepancy = _compare_values(name, want, got)
        if discrepancy:
            return discrepancy
    return None


def _compare_values(name: str, want: np.ndarray, got: np.ndarray) -> Discrepancy | None:
    if want.size == 0:
        return None
    if want.dtype.kind == "f":
        rtol, atol = TOLERANCES.get(str(want.dtype), TOLERANCES["float32"])
        w, g = want.astype(np.float64), got.astype(np.float64)
        same_special = (np.isnan(w) & np.isnan(g)) | (np.isinf(w) & (w == g))
        error = np.where(same_special, 0.0, np.abs(w - g))
        error = np.where(np.isnan(error), np.inf, error)
        finite = np.abs(np.where(np.isfinite(w), w, 0.0))
        scale = max(1.0, float(finite.max()))
        bad = error > atol * scale + rtol * finite
    else:
        bad = want != got
        error = np.abs(want.astype(np.float64) - got.astype(np.float64))
    if not bad.any():
        return None
    worst = np.unravel_index(int(np.argmax(np.where(bad, error, -1.0))), want.shape) if want.ndim else ()
    scale = np.abs(want.astype(np.float64)) + 1e-30
    return Discrepancy(
        name,
        "values",
        {
            "max_abs_error": float(error.max()),
            "max_rel_error": float((error / scale).max()),
            "mismatched": int(bad.sum()),
            "elements": int(want.size),
            "worst_index": [int(i) for i in worst],
            "expected_value": want[worst].item(),
            "actual_value": got[worst].item(),
        },
    )


def all_finite(outputs: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(v).all() for v in outputs.values() if np.asarray(v).dtype.kind == "f")


def judge(outcomes: dict[str, Outcome], infos: dict[str, BackendInfo], readouts: Sequence[Readout] = ()) -> Verdict:
    """References first (a failure or disagreement there is our bug: `invalid`), then each
    system against the reference of its own frontend (else the other reference), or against its
    own baseline where it gives one (a metamorphic oracle: its compiler's result on the original).
    The torch reference may carry `readouts`: references are compared without them (ONNX has none),
    a system on those of the kinds it declares."""
    every_readout = {name for readout in readouts for name in readout.names}
    statuses = {name: _status(outcome) for name, outcome in outcomes.items()}
    reference_names = [name for name in outcomes if infos[name].reference]
    usable = {n: outcomes[n].outputs for n in reference_names if outcomes[n].status == "ok"}
    broken = [n for n in reference_names if outcomes[n].failed]
    if broken:
        first = outcomes[broken[0]]
        reason = f"reference {broken[0]} failed in {first.phase}: {first.exc_type}: {first.message}"
        return Verdict("invalid", statuses, reason=reason)
    finite = all(all_finite(outputs) for outputs in usable.values() if outputs is not None)
    if finite and len(usable) > 1:
        (first_name, first), *others = usable.items()
        for other_name, other in others:
            discrepancy = compare_outputs(_without(first, every_readout), _without(other, every_readout))
            if discrepancy:
                reason = f"references {first_name} and {other_name} disagree on {discrepancy.output}"
                return Verdict("invalid", statuses, [Finding(other_name, "mismatch", first_name, discrepancy)], reason)
    findings = []
    for name, outcome in outcomes.items():
        if infos[name].reference:
            continue
        if outcome.failed:
            symptom = "crash" if outcome.status == "error" else outcome.status
            findings.append(Finding(name, symptom, outcome=outcome))
            continue
        against = ORIGINAL if outcome.baseline is not None else _reference_for(infos[name].frontend, usable, infos)
        if outcome.status != "ok" or against is None or not finite:
            continue
        foreign = {output for r in readouts if r.kind not in infos[name].readouts for output in r.names}
        expected = outcome.baseline if outcome.baseline is not None else _without(usable[against], foreign)
        discrepancy = compare_outputs(expected, outcome.outputs or {})
        if discrepancy:
            statuses[name] = "mismatch"
            findings.append(Finding(name, "mismatch", against, discrepancy))
    if any(f.symptom != "mismatch" for f in findings):
        kind: Kind = "crash"
    elif findings:
        kind = "mismatch"
    else:
        kind = "consistent" if finite else "nonfinite"
    return Verdict(kind, statuses, findings)


def crashes_only(verdict: Verdict, why: Uncomparable) -> Verdict:
    """The verdict of a case whose intermediate values are not all finite, or not all in their ops'
    domains (`why`, the first node that says so): a NaN that a Max or Where absorbs, or rounding noise that a
    near-constant group's normalization blows up, leaves finite outputs that any two implementations
    may compute differently, so only crashes (and failed references) count."""
    if verdict.kind == "invalid" and not verdict.findings:
        return verdict  # a reference failed: our bug whatever the values
    findings = [f for f in verdict.findings if f.symptom != "mismatch"]
    statuses = {name: "ok" if status == "mismatch" else status for name, status in verdict.statuses.items()}
    return Verdict("crash" if findings else why.kind, statuses, findings, why.reason())


def _without(outputs: dict[str, np.ndarray], names: Collection[str]) -> dict[str, np.ndarray]:
    return {name: value for name, value in outputs.items() if name not in names}


def _status(outcome: Outcome) -> str:
    return "crash" if outcome.status == "error" else outcome.status


def _reference_for(frontend: str, usable: dict[str, Any], infos: dict[str, BackendInfo]) -> str | None:
    same = [n for n in usable if infos[n].frontend == frontend]
    return (same or list(usable) or [None])[0]
