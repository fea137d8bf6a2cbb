"""Whole-process timing shared by the benchmarks: warm-up, interleaved runs, medians."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    name: str
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def spread(self) -> str:
        return f"{min(self.runs):.2f}-{max(self.runs):.2f}s"


def time_commands(
    commands: dict[str, Sequence[str] | Callable[[int], Sequence[str]]],
    *,
    runs: int,
    warmup: int = 1,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Timing]:
    """Run each command `warmup` times untimed, then `runs` times, interleaved (A B A B ...), so
    load from elsewhere hits every command alike. A callable gets the run number (fresh paths).
    Non-zero exits are accepted (a checker exits 1 on findings); a command that cannot start
    raises."""

    def argv(spec: Sequence[str] | Callable[[int], Sequence[str]], i: int) -> list[str]:
        return list(spec(i) if callable(spec) else spec)

    for i in range(warmup):
        for spec in commands.values():
            subprocess.run(argv(spec, -1 - i), cwd=cwd, env=env, capture_output=True, check=False)
    results: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(runs):
        for name, spec in commands.items():
            start = time.perf_counter()
            proc = subprocess.run(argv(spec, i), cwd=cwd, env=env, capture_output=True, check=False)
            elapsed = time.perf_counter() - start
            if proc.returncode not in (0, 1):
                tail = proc.stderr.decode(errors="replace")[-800:]
                raise RuntimeError(f"{name} exited {proc.returncode}: {tail}")
            results[name].append(elapsed)
    return {name: Timing(name, values) for name, values in results.items()}
