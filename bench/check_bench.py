"""`deployline check` beside cfn-lint and checkov: whole-process time and catalog coverage.

Timing (interleaved runs after a warm-up, medians, ratios), on the same templates in the same run:
  (a) one realistic pipeline template: the example app's synthesized pipeline stack;
  (b) a directory of 100 templates, generated deterministically from the rule fixtures and the
      synthesized stacks (copies with renamed logical IDs, every reference renamed with them).
Targets on a 2-core machine: (a) ours <= 0.25x cfn-lint and <= 0.1x checkov; (b) ours < 2 s.

Coverage: each tool runs once over the rule fixtures (tests/fixtures/templates/<ID>/). A catalog
row counts as detected by a tool when, on one of the row's fail_* fixtures, the tool reports a
check on a logical ID that the fixture expects, and the tool does not report that same check
anywhere on the row's pass_* fixtures. Our checker must detect every row.

Runs offline (checkov --skip-download; no AWS account), in a scratch directory so no tool picks up
a config file from the checkout. Exit status 1 when a target is missed. About 4 minutes here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import Timing

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "templates"
CATALOG = ROOT / "tests" / "fixtures" / "failure-catalog.md"
BIN = Path(sys.executable).parent
TARGET_CFN_LINT = 0.25
TARGET_CHECKOV = 0.10
TARGET_DIRECTORY_SECONDS = 2.0
DIRECTORY_SIZE = 100
ENV = {
    **os.environ,
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "14,16,18,19,20,21,23",
    "NO_COLOR": "1",
    "BC_SKIP_MAPPING": "TRUE",  # checkov: no download of the guideline mapping (offline)
}

Command = Sequence[str]
# Exit codes that mean "ran and reported": ours 0/1; checkov 0/1; cfn-lint a bitmask of
# 2 (errors), 4 (warnings) and 8 (informational).
ACCEPTED: dict[str, frozenset[int]] = {
    "deployline check": frozenset({0, 1}),
    "cfn-lint": frozenset(range(0, 16)),
    "checkov": frozenset({0, 1}),
}


def tools(*, single_file: bool) -> dict[str, Callable[[Path], Command]]:
    """How each tool is called on a template file (single_file) or on a directory."""

    def ours(target: Path) -> Command:
        return [str(BIN / "deployline"), "check", str(target)]

    def cfn_lint(target: Path) -> Command:
        files = [target] if single_file else sorted(target.glob("*.json"))
        return [str(BIN / "cfn-lint"), *map(str, files)]

    def checkov(target: Path) -> Command:
        where = ["-f", str(target)] if single_file else ["-d", str(target)]
        return [
            str(BIN / "checkov"),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--quiet",
            "--compact",
            *where,
        ]

    return {"deployline check": ours, "cfn-lint": cfn_lint, "checkov": checkov}


def time_tools(
    target: Path, *, single_file: bool, runs: int, cwd: Path, warmup: bool = True
) -> dict[str, Timing]:
    """A warm-up round (when `warmup`), then `runs` interleaved rounds (A B C A B C ...), each
    the whole process's wall time."""
    commands = {name: build(target) for name, build in tools(single_file=single_file).items()}
    for name, argv in commands.items() if warmup else ():
        _run(name, argv, cwd)
    results: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            _run(name, argv, cwd)
            results[name].append(time.perf_counter() - start)
    return {name: Timing(name, values) for name, values in results.items()}


def _run(name: str, argv: Command, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(list(argv), cwd=cwd, env=ENV, capture_output=True, check=False)
    if proc.returncode not in ACCEPTED[name]:
        tail = proc.stderr.decode(errors="replace")[-800:]
        raise RuntimeError(f"{name} exited {proc.returncode}: {tail}")
    return proc


# ------------------------------------------------------------------------------------------
# Templates


def synthesize(out: Path) -> list[Path]:
    """The example app's stacks, synthesized once (no check) into `out`; pipeline first."""
    argv = [
        str(BIN / "deployline"),
        "synth",
        "--config",
        str(ROOT / "deployline.yaml"),
        "--out",
        str(out),
        "--no-check",
    ]
    proc = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"deployline synth failed: {proc.stderr.decode(errors='replace')[-800:]}"
        )
    stacks = sorted(out.glob("*.template.json"), key=lambda p: ("pipeline" not in p.name, p.name))
    if not stacks or "pipeline" not in stacks[0].name:
        raise RuntimeError(f"no pipeline stack in {out}: {[p.name for p in stacks]}")
    return stacks


def fixture_files() -> list[Path]:
    return sorted(
        p
        for p in FIXTURES.glob("DL*/*")
        if p.suffix in {".yaml", ".yml", ".json"} and p.name.startswith(("pass_", "fail_"))
    )


def load_template(path: Path) -> dict[str, Any]:
    from deployline.checks.loader import parse_text

    return parse_text(path.read_text(encoding="utf-8"), str(path))


def rename_references(value: Any, mapping: dict[str, str]) -> Any:
    """`value` with every reference to a logical ID in `mapping` renamed: Ref, Fn::GetAtt
    (both forms), `${X}`/`${X.Attr}` in Fn::Sub (not the Sub's own variables), DependsOn."""
    if isinstance(value, list):
        return [rename_references(v, mapping) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        key, arg = next(iter(value.items()))
        if key == "Ref" and isinstance(arg, str):
            return {"Ref": mapping.get(arg, arg)}
        if key == "Fn::GetAtt":
            if isinstance(arg, str) and "." in arg:
                head, attr = arg.split(".", 1)
                return {key: f"{mapping.get(head, head)}.{attr}"}
            if isinstance(arg, list) and arg and isinstance(arg[0], str):
                return {key: [mapping.get(arg[0], arg[0]), *rename_references(arg[1:], mapping)]}
        if key == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (None, {})
            if isinstance(arg, list) and arg and isinstance(arg[0], str):
                text = arg[0]
                local = arg[1] if len(arg) > 1 and isinstance(arg[1], dict) else {}
            if isinstance(text, str):
                renamed = _rename_sub(text, {k: v for k, v in mapping.items() if k not in local})
                if isinstance(arg, str):
                    return {key: renamed}
                return {key: [renamed, rename_references(local, mapping)]}
    out: dict[str, Any] = {}
    for k, v in value.items():
        if k == "DependsOn":
            out[k] = (
                mapping.get(v, v)
                if isinstance(v, str)
                else [mapping.get(d, d) if isinstance(d, str) else d for d in v]
                if isinstance(v, list)
                else v
            )
        else:
            out[k] = rename_references(v, mapping)
    return out


def _rename_sub(text: str, mapping: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        head, dot, attr = name.partition(".")
        return "${" + mapping.get(head, head) + dot + attr + "}"

    return re.sub(r"\$\{(?!!)([^}]+)\}", repl, text)


def copy_with_suffix(template: dict[str, Any], suffix: str) -> dict[str, Any]:
    """A copy of `template` whose resources are renamed `<id><suffix>`, references included."""
    resources = template.get("Resources")
    if not isinstance(resources, dict):
        return template
    mapping = {lid: f"{lid}{suffix}" for lid in resources if isinstance(lid, str)}
    out = {k: v for k, v in template.items() if k not in ("Resources", "Outputs", "Metadata")}
    out["Resources"] = {
        mapping.get(lid, lid): rename_references(body, mapping) for lid, body in resources.items()
    }
    if isinstance(template.get("Outputs"), dict):
        out["Outputs"] = rename_references(template["Outputs"], mapping)
    return out


def build_directory(target: Path, synthesized: list[Path], fixtures: list[Path]) -> list[Path]:
    """DIRECTORY_SIZE templates: every 4th a synthesized stack, the rest fixtures, in a fixed
    order; each a copy with resources renamed by its index."""
    target.mkdir(parents=True, exist_ok=True)
    big = [load_template(p) for p in synthesized]
    small = [load_template(p) for p in fixtures]
    written: list[Path] = []
    for i in range(DIRECTORY_SIZE):
        source = big[(i // 4) % len(big)] if i % 4 == 0 else small[(i * 7) % len(small)]
        path = target / f"template-{i:03d}.json"
        path.write_text(json.dumps(copy_with_suffix(source, f"C{i:03d}"), indent=1))
        written.append(path)
    return written


# ------------------------------------------------------------------------------------------
# Coverage


def catalog_ids() -> list[str]:
    from deployline.checks.docs import parse_catalog

    return [r.id for r in parse_catalog(CATALOG.read_text(encoding="utf-8"))]


def expected_ids(path: Path) -> set[str]:
    meta = load_template(path).get("Metadata", {}).get("DeploylineTest", {})
    return set(meta.get("expect_findings") or []) | set(meta.get("expect_unknown") or [])


Reports = dict[tuple[str, str], set[str]]  # (file name relative to FIXTURES, logical ID) -> checks


def _relative(file: str) -> str:
    path = Path(file)
    if not path.is_absolute():
        path = (FIXTURES / file.lstrip("/")).resolve()
    try:
        return str(path.resolve().relative_to(FIXTURES))
    except ValueError:
        return str(path)


def run_concurrently(commands: dict[str, Command], cwd: Path) -> dict[str, bytes]:
    """Standard output of each command, all started at once (coverage is not timed)."""
    procs = {
        name: subprocess.Popen(
            list(argv), cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        for name, argv in commands.items()
    }
    return {name: proc.communicate()[0] for name, proc in procs.items()}


def coverage_commands(files: list[Path]) -> dict[str, Command]:
    """Each tool once over the fixtures, with machine-readable output."""
    checkov = [str(BIN / "checkov"), "--framework", "cloudformation", "--skip-download"]
    return {
        "deployline check": [str(BIN / "deployline"), "check", str(FIXTURES), "--format", "json"],
        "cfn-lint": [str(BIN / "cfn-lint"), "--format", "json", *map(str, files)],
        "checkov": [*checkov, "--quiet", "-o", "json", "-d", str(FIXTURES)],
    }


def ours_reports(stdout: bytes) -> Reports:
    data = json.loads(stdout or b"{}")
    out: Reports = defaultdict(set)
    for item in data.get("findings", []):
        out[(_relative(item["file"]), item["resource"])].add(item["rule_id"])
    return out


def cfn_lint_reports(stdout: bytes) -> Reports:
    out: Reports = defaultdict(set)
    for match in json.loads(stdout or b"[]"):
        path = match.get("Location", {}).get("Path") or []
        if len(path) >= 2 and path[0] == "Resources":
            out[(_relative(match["Filename"]), str(path[1]))].add(match["Rule"]["Id"])
    return out


def checkov_reports(stdout: bytes) -> Reports:
    data = json.loads(stdout or b"{}")
    reports = data if isinstance(data, list) else [data]
    out: Reports = defaultdict(set)
    for report in reports:
        for check in report.get("results", {}).get("failed_checks", []):
            file = check.get("file_abs_path") or check.get("file_path", "")
            logical = str(check.get("resource", "")).rsplit(".", 1)[-1]
            out[(_relative(file), logical)].add(check["check_id"])
    return out


def detected(rule_id: str, reports: Reports) -> set[str]:
    """The tool's checks that tell the row's fail fixtures from its pass fixtures (empty: the
    row is not detected)."""
    folder = FIXTURES / rule_id
    on_pass: set[str] = set()
    for (file, _), checks in reports.items():
        if file.startswith(f"{rule_id}/pass_"):
            on_pass |= checks
    credit: set[str] = set()
    for fail in sorted(folder.glob("fail_*")):
        rel = f"{rule_id}/{fail.name}"
        for logical in expected_ids(fail):
            credit |= reports.get((rel, logical), set()) - on_pass
    return credit


# ------------------------------------------------------------------------------------------


def _print_timings(title: str, timings: dict[str, Timing]) -> None:
    ours = timings["deployline check"]
    print(f"\n== {title} ==")
    for t in timings.values():
        ratio = ours.median / t.median
        tail = "" if t is ours else f"   ours/{t.name}: {ratio:.3f}x"
        print(f"  {t.name:<18} median {t.median:6.2f}s  ({t.spread}){tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="(a) timed runs per tool (Default: 5)")
    parser.add_argument(
        "--directory-runs",
        type=int,
        default=3,
        help="(b) timed runs per tool on the 100 templates (Default: 3; the peers take 20-30 s "
        "each there, and make bench should stay near 5 minutes)",
    )
    parser.add_argument(
        "--skip-coverage", action="store_true", help="time only; no coverage matrix"
    )
    args = parser.parse_args(argv)
    for flag, value in (("--runs", args.runs), ("--directory-runs", args.directory_runs)):
        if value < 1:
            parser.error(f"{flag} must be at least 1, got {value}")
    scratch = Path(tempfile.mkdtemp(prefix="deployline-check-bench-"))
    failures: list[str] = []
    try:
        synthesized = synthesize(scratch / "cdk.out")
        pipeline = synthesized[0]
        directory = scratch / "templates"
        build_directory(directory, synthesized, fixture_files())
        work = scratch / "cwd"
        work.mkdir()

        single = time_tools(pipeline, single_file=True, runs=args.runs, cwd=work)
        n_resources = len(load_template(pipeline).get("Resources", {}))
        _print_timings(
            f"(a) one pipeline template ({pipeline.name}, {n_resources} resources), "
            f"{args.runs} interleaved runs after a warm-up",
            single,
        )
        ours = single["deployline check"].median
        for peer, target in (("cfn-lint", TARGET_CFN_LINT), ("checkov", TARGET_CHECKOV)):
            ratio = ours / single[peer].median
            ok = ratio <= target
            print(f"  target ours <= {target}x {peer}: {ratio:.3f}x  {'met' if ok else 'MISSED'}")
            if not ok:
                failures.append(f"(a) ours/{peer} {ratio:.3f} > {target}")

        # the tools were warmed up by (a) and the files were just written: no warm-up round
        many = time_tools(
            directory, single_file=False, runs=args.directory_runs, cwd=work, warmup=False
        )
        _print_timings(
            f"(b) a directory of {DIRECTORY_SIZE} templates ({len(synthesized)} synthesized "
            f"stacks and the rule fixtures, renamed copies), {args.directory_runs} interleaved "
            "runs",
            many,
        )
        ours_dir = many["deployline check"].median
        ok = ours_dir < TARGET_DIRECTORY_SECONDS
        print(
            f"  target ours < {TARGET_DIRECTORY_SECONDS:.0f}s: {ours_dir:.2f}s  "
            f"{'met' if ok else 'MISSED'}"
        )
        if not ok:
            failures.append(f"(b) {ours_dir:.2f}s >= {TARGET_DIRECTORY_SECONDS}s")

        if not args.skip_coverage:
            failures += coverage(work)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if failures:
        print("\ncheck bench: targets missed: " + "; ".join(failures))
        return 1
    print("\ncheck bench: every target met")
    return 0


def coverage(cwd: Path) -> list[str]:
    """Print the coverage matrix; return failures (a row our checker does not detect)."""
    rows = catalog_ids()
    fixtures = fixture_files()
    output = run_concurrently(coverage_commands(fixtures), cwd)
    reports = {
        "deployline check": ours_reports(output["deployline check"]),
        "cfn-lint": cfn_lint_reports(output["cfn-lint"]),
        "checkov": checkov_reports(output["checkov"]),
    }
    print(
        f"\n== coverage: catalog rows whose fail fixtures each tool tells from the pass "
        f"fixtures ({len(fixtures)} fixture templates) =="
    )
    print(f"  {'row':<6} {'ours':<5} {'cfn-lint':<28} {'checkov':<28}")
    totals = dict.fromkeys(reports, 0)
    missed: list[str] = []
    for rule_id in rows:
        cells = []
        for name, tool_reports in reports.items():
            credit = detected(rule_id, tool_reports)
            if name == "deployline check":  # ours must detect the row with the row's own rule
                totals[name] += rule_id in credit
                cells.append("yes" if rule_id in credit else "NO")
                if rule_id not in credit:
                    missed.append(rule_id)
                continue
            totals[name] += bool(credit)
            shown = ",".join(sorted(credit)[:3]) + ("..." if len(credit) > 3 else "")
            cells.append(f"yes ({shown})" if credit else "-")
        print(f"  {rule_id:<6} {cells[0]:<5} {cells[1]:<28} {cells[2]:<28}")
    print("  total  " + "  ".join(f"{name}: {count}/{len(rows)}" for name, count in totals.items()))
    return [f"our checker does not detect {', '.join(missed)}"] if missed else []


if __name__ == "__main__":
    raise SystemExit(main())
