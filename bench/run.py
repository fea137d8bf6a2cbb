"""`make bench`: every benchmark, ours beside the peers, in one run. Prints medians and ratios.

Exit status is non-zero when a target is missed, so a regression is visible in CI logs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _load(name: str):  # type: ignore[no-untyped-def]
    path = HERE / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    status = 0
    for name in ("synth_bench", "check_bench"):
        module = _load(name)
        if module is None:
            print(f"({name}.py not present; skipped)")
            continue
        status |= int(module.main([]) or 0)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
