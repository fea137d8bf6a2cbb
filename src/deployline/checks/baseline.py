"""Baselines: findings a team has already accepted, so a new check fails only on new findings.

A baseline is a JSON file written by `deployline check --write-baseline FILE`:

    {"version": 1, "tool": "deployline", "findings": [
        {"rule_id": "DL302", "file": "cdk.out/app.template.json", "resource": "BuildRole",
         "path": "Policies[0].PolicyDocument.Statement[1].Action", "severity": "HIGH",
         "message": "..."}]}

Entries are keyed like `Finding.key` (rule, file, resource, property path; never the line, which
moves with every edit). Files are stored relative to the baseline's own directory, so the same
baseline matches whichever directory the check runs from. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployline.checks.model import Finding

BASELINE_VERSION = 1
Key = tuple[str, str, str, str]


class BaselineError(Exception):
    """A baseline file that cannot be read or has the wrong shape (a usage error: exit 2)."""


def _relative_to(file: str, base: Path, cwd: Path) -> str:
    """`file` (as a finding names it: relative to `cwd`, or absolute) relative to `base`."""
    absolute = Path(file) if Path(file).is_absolute() else cwd / file
    try:
        return Path(os.path.relpath(absolute, base)).as_posix()
    except ValueError:  # another drive on Windows: keep it absolute
        return absolute.as_posix()


@dataclass
class Baseline:
    """Accepted findings, keyed by (rule_id, file relative to `base`, resource, path)."""

    base: Path
    entries: dict[Key, dict[str, Any]] = field(default_factory=dict)
    source: str = ""

    def key_of(self, finding: Finding, cwd: Path | None = None) -> Key:
        here = cwd if cwd is not None else Path.cwd()
        return (
            finding.rule_id,
            _relative_to(finding.file, self.base, here),
            finding.resource,
            finding.path,
        )

    def partition(
        self,
        findings: Iterable[Finding],
        *,
        checked_files: Sequence[str] = (),
        rules_run: Sequence[str] = (),
        cwd: Path | None = None,
    ) -> tuple[list[Finding], list[Finding], list[dict[str, Any]]]:
        """(new, baselined, stale). A stale entry matched nothing although its file was checked
        and its rule ran (entries for files or rules outside this run are not stale)."""
        here = cwd if cwd is not None else Path.cwd()
        new: list[Finding] = []
        accepted: list[Finding] = []
        matched: set[Key] = set()
        for finding in findings:
            key = self.key_of(finding, here)
            if key in self.entries:
                accepted.append(finding)
                matched.add(key)
            else:
                new.append(finding)
        files = {_relative_to(f, self.base, here) for f in checked_files}
        ran = set(rules_run)
        stale = [
            entry
            for key, entry in self.entries.items()
            if key not in matched and key[1] in files and (not ran or key[0] in ran)
        ]
        return new, accepted, stale


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline file. Raises BaselineError saying what is wrong and how to fix it."""
    p = Path(path)
    fix = f"write a fresh one with `deployline check ... --write-baseline {p}`"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{p}: no such baseline file; {fix}") from None
    except OSError as exc:
        raise BaselineError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{p}: not a JSON baseline ({exc}); {fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise BaselineError(f"{p}: a baseline is an object with a `findings` list; {fix}")
    version = data.get("version", BASELINE_VERSION)
    if version != BASELINE_VERSION:
        raise BaselineError(
            f"{p}: baseline version {version!r} is not supported (expected {BASELINE_VERSION}); "
            f"{fix}"
        )
    baseline = Baseline(base=p.resolve().parent, source=str(p))
    for i, entry in enumerate(data["findings"]):
        if not isinstance(entry, dict):
            raise BaselineError(f"{p}: findings[{i}] must be an object; {fix}")
        parts = [entry.get(k) for k in ("rule_id", "file", "resource", "path")]
        if not all(isinstance(v, str) for v in parts):
            raise BaselineError(
                f"{p}: findings[{i}] needs string rule_id, file, resource and path; {fix}"
            )
        key = (str(parts[0]).upper(), str(parts[1]), str(parts[2]), str(parts[3]))
        baseline.entries[key] = entry
    return baseline


def baseline_document(
    findings: Iterable[Finding], base: Path, cwd: Path | None = None
) -> dict[str, Any]:
    """The JSON document a baseline file holds for `findings`, files relative to `base`."""
    here = cwd if cwd is not None else Path.cwd()
    entries: dict[Key, dict[str, Any]] = {}
    for f in findings:
        file = _relative_to(f.file, base, here)
        entries[(f.rule_id, file, f.resource, f.path)] = {
            "rule_id": f.rule_id,
            "file": file,
            "resource": f.resource,
            "path": f.path,
            "severity": f.severity.name,
            "message": f.message,
        }
    return {
        "version": BASELINE_VERSION,
        "tool": "deployline",
        "findings": [entries[k] for k in sorted(entries)],
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and os.replace, so
    a reader never sees a half-written file. The file gets the mode a plain `open` would give
    it (0666 less the user's umask), not mkstemp's 0600. Raises OSError."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_baseline(path: str | Path, findings: Iterable[Finding], cwd: Path | None = None) -> int:
    """Write `findings` as a baseline at `path` (atomically); returns the number of entries."""
    target = Path(path)
    document = baseline_document(findings, target.resolve().parent, cwd)
    atomic_write(target, json.dumps(document, indent=2, sort_keys=False) + "\n")
    return len(document["findings"])
