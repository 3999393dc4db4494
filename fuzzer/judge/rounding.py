"""Which system is wrong: every backend against a float64 run, with the rounding the graph amplifies
as the yardstick, so a deviation that rounding explains is never reported as a bug."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from fuzzer.core.dtypes import FLOATS, dtype
from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.core.testcase import TestCase
from fuzzer.inputs.readouts import Readout, as_arrays, case_leaves, interpreted, read_all
from fuzzer.judge.compare import TOLERANCES, Finding, Verdict, judge
from oracles.base import BackendInfo, Outcome
from specs.base import OpSpec
from specs.interpret import Step, node_outputs

AMPLIFICATION_SLACK = 16.0  # compilers may round differently from eager by a few ulps per op
JITTER_TRIALS = 6


@dataclass
class RoundingEstimate:
    """The float64 result of the graph (its outputs and readouts) and, per element, how far float32
    rounding alone can move it; `dtypes` are the dtypes the outputs have in the case."""

    truth: dict[str, np.ndarray]
    allowed: dict[str, np.ndarray]
    dtypes: dict[str, str]

    def excess(self, outputs: dict[str, np.ndarray]) -> float:
        """Largest deviation from the float64 result in units of the allowance (> 1: not rounding), over
        the outputs a backend computed (a missing one is a discrepancy of its own, not rounding)."""
        names = [name for name in self.truth if name in outputs]
        return max((self._gap(outputs[name], self.truth[name], name) for name in names), default=0.0)

    def distance(self, a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
        """How far two backends' outputs are apart, in units of the allowance, over those both computed."""
        names = [name for name in self.truth if name in a and name in b]
        return max((self._gap(a[name], b[name], name) for name in names), default=0.0)

    def _gap(self, x: np.ndarray, y: np.ndarray, name: str) -> float:
        if np.shape(x) != np.shape(y):
            return float("inf")
        error = np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))
        error = np.where(np.isnan(error), np.inf, error)
        if error.size == 0:
            return 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(error == 0, 0.0, error / self.allowed[name])
        return float(np.nan_to_num(ratio, nan=np.inf).max())


def promote(graph: Graph) -> Graph:
    """The same graph computed in float64: float tensors widen, casts to a float type go to float64."""

    def wide(t: TensorType) -> TensorType:
        return TensorType(t.shape, "float64") if t.dtype in FLOATS else t

    nodes = [
        Node(n.op, n.inputs, n.outputs, {k: "float64" if v in FLOATS else v for k, v in n.attrs.items()})
        for n in graph.nodes
    ]
    types = {name: wide(t) for name, t in graph.types.items()}
    return Graph(graph.inputs, graph.weights, nodes, graph.outputs, types)


def computed(
    graph: Graph, leaves: dict[str, torch.Tensor], readouts: Sequence[Readout], step: Step | None = None
) -> dict[str, np.ndarray]:
    """The graph's outputs and the readouts computed by eager from `leaves` (each node by `step`)."""
    run = interpreted(graph, step)
    with torch.no_grad():
        outputs = as_arrays(dict(zip(graph.outputs, run(leaves))))
    return outputs | read_all(readouts, leaves, run)


def float64_outputs(case: TestCase, readouts: Sequence[Readout] = ()) -> dict[str, np.ndarray]:
    """The graph's outputs and readouts computed by torch eager in float64 (float ones stay float64)."""
    wide = promote(case.graph)
    values = {n: torch.from_numpy(np.asarray(v, dtype(wide.types[n].dtype).numpy)) for n, v in case.values.items()}
    return computed(wide, values, readouts)


def jittered_outputs(case: TestCase, seed: int, readouts: Sequence[Readout] = ()) -> dict[str, np.ndarray]:
    """Eager outputs and readouts with every float intermediate moved by up to one rounding step: a
    sample of what a compiler that rounds differently may legally compute."""
    generator = torch.Generator().manual_seed(seed)

    def jittered(index: int, node: Node, spec: OpSpec, args: list[torch.Tensor]) -> list[torch.Tensor]:
        return [_jitter(value, generator) for value in node_outputs(spec, args)]

    return computed(case.graph, case_leaves(case), readouts, jittered)


def _jitter(value: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if not value.dtype.is_floating_point:
        return value
    noise = torch.rand(value.shape, generator=generator, dtype=torch.float64) * 2 - 1
    return (value.double() * (1 + noise * torch.finfo(value.dtype).eps)).to(value.dtype)


def estimate_rounding(case: TestCase, readouts: Sequence[Readout] = ()) -> RoundingEstimate:
    """Allowance per element: the dtype's tolerance around the float64 result plus, amplified, the
    largest distance from it of eager in float32, plain or jittered. No backend's output is a sample,
    so a wrong reference cannot widen the allowance that judges it."""
    truth = float64_outputs(case, readouts)
    plain = computed(case.graph, case_leaves(case), readouts)
    samples = [plain] + [jittered_outputs(case, seed, readouts) for seed in range(JITTER_TRIALS)]
    dtypes = {name: str(value.dtype) for name, value in plain.items()}
    allowed = {}
    for name, exact in truth.items():
        exact = exact.astype(np.float64)
        rtol, atol = TOLERANCES.get(dtypes[name], (0.0, 0.0))
        spread = np.zeros(exact.shape)
        for sample in samples:
            if name in sample and np.shape(sample[name]) == exact.shape:
                spread = np.maximum(spread, np.abs(np.asarray(sample[name], np.float64) - exact))
        allowed[name] = atol + rtol * np.abs(np.where(np.isfinite(exact), exact, 0.0)) + AMPLIFICATION_SLACK * spread
    return RoundingEstimate(truth, allowed, dtypes)


def refine(
    case: TestCase,
    outcomes: dict[str, Outcome],
    verdict: Verdict,
    infos: dict[str, BackendInfo],
    readouts: Sequence[Readout] = (),
) -> Verdict:
    """Keep only mismatches that rounding cannot explain (in outputs and `readouts` alike), each with
    who agrees with whom; references that disagree only by amplified rounding are not our bug, and
    the systems are judged after all."""
    if not any(f.symptom == "mismatch" for f in verdict.findings):
        return verdict  # also an invalid verdict from a failed reference: that has no findings
    outputs = {name: o.outputs for name, o in outcomes.items() if o.status == "ok" and o.outputs is not None}
    references = [name for name in outputs if infos[name].reference]
    try:
        estimate = estimate_rounding(case, readouts)
    except Exception as error:  # a graph eager cannot widen: judge by the fixed tolerances alone
        note = {"estimate": f"no float64 run ({type(error).__name__}: {error})"[:300]}
        return replace(verdict, findings=[_note(f, note) for f in verdict.findings])
    if verdict.kind == "invalid":
        if any(estimate.excess(outputs[name]) > 1.0 for name in references):
            return verdict
        verdict = _judge_against(references[0], outcomes, infos, readouts)
        verdict.reason = "references agree within amplified rounding"
    findings, statuses, explained = [], dict(verdict.statuses), []
    for finding in verdict.findings:
        if finding.symptom != "mismatch":
            findings.append(finding)
            continue
        attribution = attribute(finding.backend, outputs, estimate, outcomes[finding.backend].baseline)
        if finding.discrepancy and finding.discrepancy.reason == "values" and attribution["excess"] <= 1.0:
            statuses[finding.backend] = "ok"
            explained.append(finding.backend)
            continue
        findings.append(replace(finding, attribution=attribution))
    reason = verdict.reason
    if explained:
        reason = (reason + "; " if reason else "") + f"within amplified rounding: {', '.join(explained)}"
    kind = verdict.kind
    if not findings:
        kind = "consistent"
    elif all(f.symptom == "mismatch" for f in findings):
        kind = "mismatch"
    return Verdict(kind, statuses, findings, reason)


def _judge_against(
    reference: str, outcomes: dict[str, Outcome], infos: dict[str, BackendInfo], readouts: Sequence[Readout]
) -> Verdict:
    """Judge with every reference's outputs replaced by those of `reference` (they agree within rounding)."""
    chosen = outcomes[reference].outputs
    same = {n: replace(o, outputs=chosen) if infos[n].reference else o for n, o in outcomes.items()}
    return judge(same, infos, readouts)


def _note(finding: Finding, note: dict[str, Any]) -> Finding:
    return replace(finding, attribution=note) if finding.symptom == "mismatch" else finding


def attribute(
    backend: str,
    outputs: dict[str, dict[str, np.ndarray]],
    estimate: RoundingEstimate,
    baseline: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The suspect's distance from float64 and from every other backend, in units of the allowance;
    with a metamorphic oracle's `baseline`, also how far its result on the original graph is. Its
    outputs on the equivalent graph are judged by the float64 result of the original, which the
    equivalences keep exactly: beyond rounding there, the rewrite changed what the compiler computes."""
    suspect = outputs[backend]
    others = {name: round(estimate.distance(suspect, o), 3) for name, o in outputs.items() if name != backend}
    attribution = {
        "excess": round(estimate.excess(suspect), 3),
        "excess_by_backend": {name: round(estimate.excess(o), 3) for name, o in outputs.items()},
        "distance_to": others,
        "agrees_with": sorted(name for name, d in others.items() if d <= 2.0),
    }
    if baseline is not None:
        attribution["excess_on_original"] = round(estimate.excess(baseline), 3)
        attribution["distance_to_original"] = round(estimate.distance(suspect, baseline), 3)
    return attribution
