"""torch eager (the torch-side reference) and TorchInductor (torch.compile)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
from torch._dynamo.utils import counters
from torch._inductor import compiler_bisector, metrics
from torch._inductor.codegen import cpp as cpp_codegen
from torch._inductor.compiler_bisector import BisectSubsystem, CompilerBisector, ConfigChange
from torch._inductor.pattern_matcher import GraphPatternEntry, LoweringPatternEntry, ReplacementPatternEntry

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.readouts import Run, as_arrays, case_leaves, lifted, readouts_of
from oracles.frontends import TorchBackend
from specs.lowering import GraphModule


class Eager(TorchBackend):
    name = "eager"
    reference = True

    def compile(self, converted: GraphModule, case: TestCase) -> GraphModule:
        return converted


# torch._inductor.metrics globals that say what lowering and codegen did (torch 2.13 spellings).
KERNEL_METRICS = (
    "generated_kernel_count",
    "generated_cpp_vec_kernel_count",
    "ir_nodes_pre_fusion",
    "cpp_to_dtype_count",
    "num_loop_reordering",
    "parallel_reduction_count",
    "num_comprehensive_padding",
    "num_matches_for_scatter_upon_const_tensor",
    "num_auto_chunking",
    "codegen_mix_order_reduction",
    "rejected_mix_order_reduction_fusion",
    "codegen_nested_reduction",
)
# counters["inductor"] entries about Inductor's caches and autotuning, not about the graph.
BOOKKEEPING = ("fxgraph_", "async_compile_", "autograd_cache", "benchmarking.", "triton_bundler")
# torch.compile backends that each add a layer to the one before (torch's compiler bisector walks them).
LADDER = ("eager", "aot_eager", "aot_eager_decomp_partition", "inductor")
# Inductor's subsystems that torch's compiler bisector can turn off on the CPU (cudagraphs is CUDA's).
SUBSYSTEMS = {s.name: s for s in compiler_bisector.BACKENDS["inductor"] if s.name != "cudagraphs"}
# Process-wide running totals, as Inductor's own counters: the name each generated C++ kernel got from
# the ops fused into it (fused_add_relu), which Inductor counts nowhere itself.
KERNEL_NAMES: Counter[str] = Counter()
# The same for each pattern-matcher rewrite, by the rule that made it (`joint_graph.mul_softmax_pattern`).
RULE_NAMES: Counter[str] = Counter()


class Inductor(TorchBackend):
    """torch.compile with `config` patched into torch._inductor.config while it compiles, in `mode`;
    the plain system patches nothing, its configurations (inductor_configs) say what they change."""

    name = "inductor"
    compositions = ("kernel",)
    config: ClassVar[dict[str, Any]] = {}
    mode: ClassVar[str | None] = None
    dynamic: ClassVar[bool] = False
    weights_as_arguments: ClassVar[bool] = False  # the module takes the weights as a training step takes parameters
    ahead_of_time: ClassVar[bool] = False  # torch.export and AOTInductor instead of torch.compile

    def __init__(self) -> None:
        self._before: Counter[str] | None = None

    def setup(self) -> None:
        super().setup()
        # A graph served from the FX graph cache replays only part of the counters: what a case records,
        # and so what the feedback draws next, would hang on what this machine compiled before.
        # Fuzzed graphs are new, and compiled kernels stay cached, so this costs a campaign nothing.
        torch._inductor.config.fx_graph_cache = False
        # Kernels compile in this process, not in a pool of compile workers: a case has a few small kernels,
        # and lanes (-j) share the cores. The code generated is the same.
        torch._inductor.config.compile_threads = 1
        _count_kernel_names()
        _count_pattern_rules()
        warm = torch.compile(lambda x: torch.relu(x) + 1, backend="inductor", fullgraph=True, dynamic=False)
        warm(torch.ones(2))
        torch._dynamo.reset()

    def stages(self, case: TestCase) -> tuple[str, ...]:
        """torch.compile's backends up to plain Inductor, then this configuration where it is another."""
        return LADDER if self.name == "inductor" else (*LADDER, self.name)

    def switches(self, case: TestCase) -> tuple[str, ...]:
        """Inductor's subsystems as torch's compiler bisector names them."""
        return tuple(SUBSYSTEMS)

    def compile(self, converted: GraphModule, case: TestCase) -> Any:
        self._before = _inductor_counts() if self.record_optimizations else None
        with _without(self.restriction.disabled):
            return self.build(converted, case)

    def build(self, converted: GraphModule, case: TestCase) -> Any:
        """torch.compile at the restricted stage, called once: it compiles lazily, on the first call."""
        stages = self.stages(case)
        stage = stages[(self.restriction.stages or len(stages)) - 1]
        configured = stage == self.name  # plain Inductor's configuration is no configuration
        backend = "inductor" if configured else stage
        mode = self.mode if configured else None
        config = self.config if configured else {}
        compiled = torch.compile(converted, backend=backend, fullgraph=True, dynamic=self.dynamic, mode=mode)
        with torch._inductor.config.patch(config):
            self.compute(compiled, case)
        return compiled

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        return self.compute(compiled, case)

    def convert(self, case: TestCase) -> GraphModule:
        if self.weights_as_arguments:
            return GraphModule(lifted(case.graph), {}).eval()
        return super().convert(case)

    def arguments(self, case: TestCase) -> list[str]:
        """The leaves the compiled module takes, in order; it holds the others (the weights) as constants."""
        return list(case.graph.leaves if self.weights_as_arguments else case.graph.inputs)

    def compute(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        """Everything this configuration computes with the compiled module: its readouts first (a
        second shape is where dynamic shapes get traced), then the graph's outputs on the case's values."""
        run, leaves = self.module_run(compiled, case), case_leaves(case)
        results: dict[str, torch.Tensor] = {}
        for readout in readouts_of(case, self.readouts):
            results |= readout.read(leaves, run)
        with torch.no_grad():
            results |= dict(zip(case.graph.outputs, run(leaves)))
        return as_arrays(results)

    def module_run(self, compiled: Any, case: TestCase) -> Run:
        """The compiled module as a Run; with dynamic shapes, every dim of every argument marked dynamic."""
        names = self.arguments(case)

        def run(leaves: dict[str, torch.Tensor]) -> list[torch.Tensor]:
            arguments = [leaves[name] for name in names]
            for tensor in arguments if self.dynamic else []:
                for dim in range(tensor.dim()):
                    torch._dynamo.maybe_mark_dynamic(tensor, dim)
            return list(compiled(*arguments))

        return run

    def optimizations(self, compiled: Any, case: TestCase) -> dict[str, int]:
        """What Inductor counted during the compile: kernel metrics, pattern-matcher and other
        counters under their torch names, `pattern:<rule>` per pattern-matcher rewrite, and `kernel:<name>`
        per generated C++ kernel, named after the ops fused into it (`kernel:fused_add_relu`)."""
        return {} if self._before is None else dict(_inductor_counts() - self._before)

    def teardown(self) -> None:
        torch._dynamo.reset()


@contextmanager
def _without(disabled: tuple[str, ...]) -> Iterator[None]:
    """Inductor with the subsystems turned off: a config change is patched, a bisected subsystem is
    switched off from its first application (TORCH_BISECT_MAX=-1), one at a time as the bisector does."""
    changes = [SUBSYSTEMS[name] for name in disabled if isinstance(SUBSYSTEMS[name], ConfigChange)]
    bisected = [name for name in disabled if isinstance(SUBSYSTEMS[name], BisectSubsystem)]
    if len(bisected) > 1:
        raise ValueError(f"torch's bisector turns off one subsystem at a time, not {bisected}")
    patch = {change.config_field: change.config_value for change in changes}  # type: ignore[union-attr]
    variables = {"TORCH_BISECT_BACKEND": "inductor", "TORCH_BISECT_SUBSYSTEM": bisected[0]} if bisected else {}
    variables |= {"TORCH_BISECT_MAX": "-1"} if bisected else {}
    os.environ.update(variables)
    compiler_bisector.get_env_val.cache_clear()
    CompilerBisector.reset_counters()
    enabled, CompilerBisector.bisection_enabled = CompilerBisector.bisection_enabled, bool(bisected)
    try:
        with torch._inductor.config.patch(patch):
            yield
    finally:
        CompilerBisector.bisection_enabled = enabled
        for name in variables:
            del os.environ[name]
        compiler_bisector.get_env_val.cache_clear()


def _inductor_counts() -> Counter[str]:
    """Inductor's running totals (process-wide, never reset), under the names dlfuzz records."""
    totals = Counter({name: getattr(metrics, name) for name in KERNEL_METRICS})
    totals.update({name: n for name, n in counters["inductor"].items() if not name.startswith(BOOKKEEPING)})
    totals.update({f"pattern:{name}": n for name, n in RULE_NAMES.items()})
    totals.update({f"kernel:{name}": n for name, n in KERNEL_NAMES.items()})
    return totals


def _count_kernel_names() -> None:
    """Wrap the namer Inductor's C++ codegen looks up for each new kernel, so KERNEL_NAMES counts them."""
    _count_calls(cpp_codegen, "get_fused_kernel_name", lambda name, args: KERNEL_NAMES.update([name]))


def _count_pattern_rules() -> None:
    """Wrap each kind of pattern-matcher entry's apply, so RULE_NAMES counts rewrites by rule: torch's own
    per-pattern counter names a rule by its pattern's root op, and every rule rooted at `sub` is one name."""
    for entry_class in (GraphPatternEntry, LoweringPatternEntry, ReplacementPatternEntry):
        # apply(entry, match, graph, node)
        _count_calls(entry_class, "apply", lambda _, args: RULE_NAMES.update([_rule_name(args[0], args[3])]))


def _count_calls(owner: Any, attribute: str, count: Callable[[Any, tuple[Any, ...]], None]) -> None:
    """Replace owner.attribute (a function, or a method of a class) by one that calls it and then
    `count`s its result and arguments; once per process, however many workers' setups ask."""
    original = getattr(owner, attribute)
    if getattr(original, "counted_by_dlfuzz", False):
        return

    def counted(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        count(result, args)
        return result

    counted.counted_by_dlfuzz = True  # type: ignore[attr-defined]
    setattr(owner, attribute, counted)


def _rule_name(entry: Any, node: Any) -> str:
    """A handler's module and name; a traced replacement's registered name, else torch's own fallback."""
    handler = getattr(entry, "handler", None)
    if handler is not None:
        return f"{handler.__module__.rpartition('.')[2]}.{getattr(handler, '__name__', type(handler).__name__)}"
    return getattr(entry, "pattern_name", None) or f"{type(entry.pattern).__name__}_{node.target}"
