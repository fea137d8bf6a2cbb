"""`deployline check` and `deployline rules`: thin typer commands over checks.api and
checks.output. Registered lazily by deployline.cli; importing this module stays light (no aws_cdk,
pydantic, boto3 or jsii).

Exit codes: 0 no finding at or above the threshold, 1 findings at or above it or a template
that could not be parsed (the other files' findings are all reported), 2 a usage error (no such
path, no template under the paths, unknown rule or profile, bad format).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from deployline.checks.model import Severity

EXIT_USAGE = 2
_FORMATS = ("text", "json", "sarif", "junit")
_RULE_FORMATS = ("text", "json", "markdown")


def _usage(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return EXIT_USAGE


def _split(values: list[str] | None) -> list[str]:
    """`--rules DL1,DL302 --rules DL4` -> ["DL1", "DL302", "DL4"]."""
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def _use_colour(no_color: bool, to_file: bool) -> bool:
    if no_color or to_file or os.environ.get("NO_COLOR"):
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def check_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Template files (.json/.yaml/.yml/.template), directories, or CDK cloud "
            "assemblies (cdk.out).",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Output format: text, json, sarif or junit.")
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the report to FILE (atomically).", dir_okay=False
        ),
    ] = None,
    severity_threshold: Annotated[
        str | None,
        typer.Option(
            "--severity-threshold",
            "-t",
            help="Fail (exit 1) on findings at or above LOW, MEDIUM, HIGH or CRITICAL. "
            "Default: checks.severity_threshold in deployline.yaml, else HIGH.",
            show_default=False,
        ),
    ] = None,
    rules: Annotated[
        list[str] | None,
        typer.Option(
            "--rules", "-r", help="Only these rule IDs or prefixes (DL3,DL702).", show_default=False
        ),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", "-s", help="Skip these rule IDs or prefixes.", show_default=False),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="deployline.yaml with `checks:` suppressions. Default: ./deployline.yaml if "
            "present.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Accept the findings recorded in this baseline file.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option(
            "--write-baseline",
            help="Record the current findings as a baseline file.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="Plain text output.")] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            "-x",
            help="Skip files or folders matching this glob (repeatable): tests, '*.j2'.",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            help="A named rule set: third-party leaves deployline's house conventions "
            "(DL701 tags, DL702 names, DL704 outputs, DL506 deployment record) out.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check CloudFormation templates and CDK cloud assemblies for CI/CD anti-patterns."""
    raise typer.Exit(
        run_check(
            paths,
            fmt=fmt,
            output=output,
            severity_threshold=severity_threshold,
            rules=rules,
            skip=skip,
            config=config,
            baseline=baseline,
            write_baseline=write_baseline,
            no_color=no_color,
            exclude=exclude,
            profile=profile,
        )
    )


def run_check(
    paths: Sequence[str | Path],
    *,
    fmt: str = "text",
    output: Path | None = None,
    severity_threshold: str | None = None,
    rules: list[str] | None = None,
    skip: list[str] | None = None,
    config: Path | None = None,
    baseline: Path | None = None,
    write_baseline: Path | None = None,
    no_color: bool = False,
    exclude: list[str] | None = None,
    profile: str | None = None,
) -> int:
    """`deployline check` without the argument parser; returns the exit code. Usage errors are
    one line on stderr and exit code 2."""
    from deployline.checks.api import CheckUsageError, check_paths

    fmt = fmt.strip().lower()
    if fmt not in _FORMATS:
        return _usage(f"--format {fmt!r} is not supported; use one of {', '.join(_FORMATS)}")
    if severity_threshold is not None:
        try:
            Severity.parse(severity_threshold)
        except ValueError as exc:
            return _usage(f"--severity-threshold: {exc}")
    try:
        result = check_paths(
            [str(p) for p in paths],
            rules=_split(rules) or None,
            skip=_split(skip) or None,
            severity_threshold=severity_threshold,
            config_path=config,
            baseline=baseline,
            exclude=exclude or (),
            profile=profile,
        )
    except CheckUsageError as exc:
        return _usage(str(exc))

    from deployline.checks import output as out

    if write_baseline is not None:
        from deployline.checks.baseline import write_baseline as write

        try:
            n = write(write_baseline, [*result.findings, *result.baselined_findings])
        except OSError as exc:
            return _usage(f"--write-baseline {write_baseline}: {exc.strerror or exc}")
        sys.stderr.write(f"wrote {n} baseline entr{'y' if n == 1 else 'ies'} to {write_baseline}\n")
        # The findings just recorded are accepted from now on.
        result.baselined_findings = [*result.baselined_findings, *result.findings]
        result.baselined = len(result.baselined_findings)
        result.findings = []

    if output is not None:
        from deployline.checks.baseline import atomic_write

        try:
            atomic_write(output, out.render(result, fmt))
        except OSError as exc:
            return _usage(f"--output {output}: {exc.strerror or exc}")
        sys.stderr.write(out.summary_line(result) + f"; report written to {output}\n")
    elif fmt == "text":
        out.print_text(result, color=_use_colour(no_color, False))
    else:
        sys.stdout.write(out.render(result, fmt))
    return result.exit_code()


def rules_command(
    rule_id: Annotated[
        str | None,
        typer.Argument(
            help="A rule ID (DL302) or prefix (DL3) to show in full.", show_default=False
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Output format: text, json or markdown.")
    ] = "text",
) -> None:
    """List the checker's rules with severity, family, title, rationale, remediation and a fix
    example."""
    raise typer.Exit(run_rules(rule_id, fmt=fmt))


def run_rules(rule_id: str | None = None, *, fmt: str = "text") -> int:
    """`deployline rules` without the argument parser; returns the exit code."""
    from deployline.checks.output import render_rules
    from deployline.checks.registry import rule_classes

    fmt = fmt.strip().lower()
    if fmt not in _RULE_FORMATS:
        return _usage(f"--format {fmt!r} is not supported; use one of {', '.join(_RULE_FORMATS)}")
    classes = list(rule_classes())
    if rule_id is not None:
        wanted = rule_id.strip().upper()
        chosen = [c for c in classes if c.id == wanted]
        if not chosen and len(wanted) < 5:
            chosen = [c for c in classes if c.id.startswith(wanted)]
        if not chosen:
            return _usage(f"no rule matches {rule_id!r}; `deployline rules` lists them")
        classes = chosen
    sys.stdout.write(render_rules(classes, fmt, detail=rule_id is not None))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2), like the rest of the command."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    check = _Parser(
        prog="deployline check",
        description="Check CloudFormation templates and CDK cloud assemblies for CI/CD "
        "anti-patterns. Exit 0: nothing at or above the threshold; 1: findings or a file that "
        "cannot be parsed; 2: usage error.",
    )
    check.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="template file, directory or cloud assembly (cdk.out)",
    )
    check.add_argument(
        "--format",
        "-f",
        dest="fmt",
        default="text",
        help="text, json, sarif or junit (default: text)",
    )
    check.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="write the report to FILE (atomically)"
    )
    check.add_argument(
        "--severity-threshold",
        "-t",
        metavar="LEVEL",
        help="LOW, MEDIUM, HIGH or CRITICAL (default: deployline.yaml "
        "checks.severity_threshold, else HIGH)",
    )
    check.add_argument(
        "--rules",
        "-r",
        action="append",
        metavar="IDS",
        help="only these rule IDs or prefixes, comma-separated or repeated",
    )
    check.add_argument(
        "--skip", "-s", action="append", metavar="IDS", help="skip these rule IDs or prefixes"
    )
    check.add_argument(
        "--config",
        "-c",
        type=Path,
        metavar="FILE",
        help="deployline.yaml with checks: suppressions (default: ./deployline.yaml if present)",
    )
    check.add_argument(
        "--baseline", type=Path, metavar="FILE", help="accept the findings recorded in FILE"
    )
    check.add_argument(
        "--write-baseline", type=Path, metavar="FILE", help="record the current findings in FILE"
    )
    check.add_argument("--no-color", action="store_true", help="plain text output")
    check.add_argument(
        "--exclude",
        "-x",
        action="append",
        metavar="GLOB",
        help="skip files or folders matching GLOB (repeatable)",
    )
    check.add_argument(
        "--profile",
        "-p",
        metavar="NAME",
        help="a named rule set: all (default) or third-party (leaves the house conventions "
        "DL701, DL702, DL704 and DL506 out)",
    )
    rules = _Parser(prog="deployline rules", description="List the checker's rules.")
    rules.add_argument("rule_id", nargs="?", metavar="ID", help="a rule ID or prefix to show")
    rules.add_argument(
        "--format", "-f", dest="fmt", default="text", help="text, json or markdown (default: text)"
    )
    return check, rules


def main(argv: Sequence[str] | None = None) -> int:
    """Fast path for `deployline check ...` and `deployline rules ...` (argv starts with the
    command name): plain argparse, because typer coerces every option through pydantic, which
    `deployline check` must not import. Same options and exit codes as the typer commands."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args and args[0] in {"check", "rules"} else "check"
    check_parser, rules_parser = _parsers()
    if command == "rules":
        r = rules_parser.parse_args(args)
        return run_rules(r.rule_id, fmt=r.fmt)
    c = check_parser.parse_args(args)
    return run_check(
        c.paths,
        fmt=c.fmt,
        output=c.output,
        severity_threshold=c.severity_threshold,
        rules=c.rules,
        skip=c.skip,
        config=c.config,
        baseline=c.baseline,
        write_baseline=c.write_baseline,
        no_color=c.no_color,
        exclude=c.exclude,
        profile=c.profile,
    )
