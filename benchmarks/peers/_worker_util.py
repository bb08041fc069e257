"""Shared by the worker scripts (standard library only: each runs in its own venv).

A worker is started as ``python <lib>_worker.py '<json params>'`` and prints one line
``RESULT_JSON {...}`` on stdout. Two modes:

- ``speed``: steady-state env steps/s at a given schedule (and compile/warm-up time apart);
- ``solve``: train in chunks of ``eval_every`` env steps; after each chunk a greedy evaluation
  over ``eval_episodes`` episodes (not timed); stop at mean >= ``threshold``, at
  ``max_seconds`` of training wall clock or at ``max_steps``. The clock includes building the
  agent and every compilation (the first chunk), and excludes evaluation.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import sys
import time
from typing import Any, Callable

RESULT_PREFIX = "RESULT_JSON "


def params() -> dict[str, Any]:
    return json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}


def emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def versions(names: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def steps_for(rate: float, target_s: float, multiple: int, minimum: int) -> int:
    """Env steps that take about ``target_s`` at ``rate``, a whole multiple of ``multiple``."""
    steps = max(minimum, int(rate * target_s))
    return max(multiple, math.ceil(steps / multiple) * multiple)


def evaluation_can_pass(returns: list[float], total: int, threshold: float,
                        best: float) -> bool:
    """False once even ``best`` returns in the remaining episodes cannot reach the mean."""
    return sum(returns) + best * (total - len(returns)) >= threshold * total


def solve_loop(make: Callable[[], Any], train_chunk: Callable[[Any], Any],
               steps_of: Callable[[Any], int], evaluate: Callable[[Any], list[float]],
               p: dict[str, Any]) -> dict[str, Any]:
    """The solve protocol. ``make()`` builds the agent (timed); ``train_chunk(agent)`` trains
    about ``eval_every`` env steps and returns the agent when finished (timed, must block);
    ``evaluate(agent)`` returns greedy episode returns (untimed)."""
    threshold, max_seconds, max_steps = p["threshold"], p["max_seconds"], p["max_steps"]
    start = time.perf_counter()
    agent = make()
    train_s = time.perf_counter() - start
    setup_s = train_s
    eval_s = 0.0
    curve = []
    solved = False
    first_chunk_s = None
    while True:
        start = time.perf_counter()
        agent = train_chunk(agent)
        chunk_s = time.perf_counter() - start
        first_chunk_s = chunk_s if first_chunk_s is None else first_chunk_s
        train_s += chunk_s
        start = time.perf_counter()
        returns = evaluate(agent)
        eval_s += time.perf_counter() - start
        mean = sum(returns) / len(returns)
        steps = steps_of(agent)
        curve.append({"env_steps": steps, "train_s": round(train_s, 3),
                      "eval_mean": mean, "eval_episodes": len(returns)})
        print(f"  steps {steps:>8}  train {train_s:7.1f} s  greedy eval {mean:6.1f} "
              f"({len(returns)} episodes)", file=sys.stderr, flush=True)
        if len(returns) >= p["eval_episodes"] and mean >= threshold:
            solved = True
            break
        if train_s >= max_seconds or steps >= max_steps:
            break
    return {"solved": solved, "seconds_to_solve": train_s if solved else None,
            "steps_to_solve": steps if solved else None, "train_s": train_s,
            "setup_s": setup_s, "first_chunk_s": first_chunk_s, "eval_s": eval_s,
            "env_steps": steps, "curve": curve}


def program_counts(stablehlo: str, optimized_hlo: str) -> dict[str, Any]:
    """What a program is made of: StableHLO ops by kind (``jit(f).lower(...).as_text()``),
    and in XLA's optimised HLO (``.compile().as_text()``) its lines, instructions, fusions by
    kind, while loops and dots. The same counts for every library (benchmarks/program_ops.py)."""
    import collections
    import re

    ops = collections.Counter(re.findall(r"\b(stablehlo\.[a-z_0-9]+|func\.call)\b", stablehlo))
    lines = optimized_hlo.splitlines()
    instructions = [ln for ln in lines if re.match(r"\s*(ROOT\s+)?%?[\w.\-]+ = ", ln)]
    fusion_kinds = collections.Counter(re.findall(r"\bfusion\(.*kind=(k\w+)", optimized_hlo))
    return {
        "stablehlo_ops": sum(ops.values()),
        "stablehlo_by_kind": dict(ops.most_common()),
        "hlo_lines": len(lines),
        "hlo_instructions": len(instructions),
        "fusions": sum(fusion_kinds.values()),
        "fusions_by_kind": dict(fusion_kinds),
        "while_loops": len(re.findall(r"\bwhile\(", optimized_hlo)),
        "dots": len(re.findall(r"\b(dot|convolution)\(", optimized_hlo)),
        "custom_calls": len(re.findall(r"\bcustom-call\(", optimized_hlo)),
    }
