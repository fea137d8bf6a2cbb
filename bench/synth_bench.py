"""`deployline synth` of the example beside the floor of CDK in Python (one empty bucket).

Target (foundation issue): median ratio at or under 2.0 as the pipeline grows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import time_commands  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    bindir = Path(sys.executable).parent
    scratch = Path(tempfile.mkdtemp(prefix="deployline-bench-"))
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "14,16,18,19,20,21,23"}
    try:
        timings = time_commands(
            {
                "deployline synth (example)": lambda i: [
                    str(bindir / "deployline"), "synth", "--config", str(ROOT / "deployline.yaml"),
                    "--out", str(scratch / f"dl-{i}"),
                ],
                "CDK floor (one bucket)": lambda i: [
                    sys.executable, str(ROOT / "bench" / "floor_app.py"), str(scratch / f"fl-{i}")
                ],
            },
            runs=args.runs,
            cwd=str(ROOT),
            env=env,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ours = timings["deployline synth (example)"]
    floor = timings["CDK floor (one bucket)"]
    ratio = ours.median / floor.median
    print(f"\n== synth: {args.runs} runs each, interleaved, after a warm-up run ==")
    for t in (ours, floor):
        print(f"  {t.name:<30} median {t.median:6.2f}s   ({t.spread})")
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"  ratio deployline/floor: {ratio:.2f}  ({verdict} the target of <= {TARGET})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
