"""Snapshot the synthesized templates of every config in the repository, to prove a refactor.

    python tools/snapshot.py save  /tmp/before    # before the change
    python tools/snapshot.py check /tmp/before    # after: exit 1 and a diff if any template moved

Synthesizes deployline.yaml, every examples/*/deployline.yaml and a no-e-mail variant of the
example (the path `deployline init` writes without --email) in-process, the way `deployline
synth` does, and keeps the CloudFormation templates only: manifest.json, tree.json and asset
staging carry paths and versions that are not the template's business. Asset hashes of code
that changed on purpose (runtime/ functions) show up as diffs; the commit says why.
"""

from __future__ import annotations

import difflib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _configs(scratch: Path) -> dict[str, Path]:
    configs = {"example": ROOT / "deployline.yaml"}
    for path in sorted((ROOT / "examples").glob("*/deployline.yaml")):
        configs[path.parent.name] = path
    raw = yaml.safe_load((ROOT / "deployline.yaml").read_text(encoding="utf-8"))
    raw.pop("notifications", None)
    no_email = scratch / "no-email" / "deployline.yaml"
    no_email.parent.mkdir(parents=True)
    no_email.write_text(yaml.safe_dump(raw), encoding="utf-8")
    configs["no-email"] = no_email
    return configs


def _templates(out: Path) -> dict[str, str]:
    return {
        p.name: json.dumps(json.loads(p.read_text(encoding="utf-8")), indent=1, sort_keys=True)
        for p in sorted(out.glob("*.template.json"))
    }


def snapshot() -> dict[str, dict[str, str]]:
    from deployline.synth import synthesize

    scratch = Path(tempfile.mkdtemp(prefix="deployline-snapshot-"))
    try:
        result = {}
        for name, config in _configs(scratch).items():
            out = scratch / "out" / name
            synthesize(config, out, check=False)
            result[name] = _templates(out)
            print(f"  {name}: {len(result[name])} templates", file=sys.stderr)
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"save", "check"}:
        print(__doc__, file=sys.stderr)
        return 2
    mode, where = argv[0], Path(argv[1])
    now = snapshot()
    if mode == "save":
        where.mkdir(parents=True, exist_ok=True)
        (where / "templates.json").write_text(json.dumps(now), encoding="utf-8")
        print(f"saved {sum(len(t) for t in now.values())} templates to {where}")
        return 0
    before = json.loads((where / "templates.json").read_text(encoding="utf-8"))
    moved = 0
    for config in sorted(set(before) | set(now)):
        old, new = before.get(config, {}), now.get(config, {})
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                moved += 1
                sys.stdout.writelines(
                    difflib.unified_diff(
                        old.get(name, "").splitlines(keepends=True),
                        new.get(name, "").splitlines(keepends=True),
                        f"before/{config}/{name}",
                        f"after/{config}/{name}",
                        n=2,
                    )
                )
    total = sum(len(t) for t in now.values())
    print(f"{total - moved} of {total} templates identical; {moved} differ")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
