"""`deployline check` and `deployline rules`: exit codes, rule selection, formats, --output,
baselines. Most tests call the command's entry point in-process (`checks.cli.main`, what the
console script runs for these commands); a few start the real console script or `python -m` where
the process itself is the behaviour (the script's wiring, colour on a pipe, light imports)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from deployline.checks.cli import main

BIN = Path(sys.executable).parent / "deployline"
ASSEMBLY = Path(__file__).resolve().parent.parent / "fixtures" / "assemblies" / "app"

CLEAN = "Resources:\n  Handle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n"
BARE_BUCKET = "Resources:\n  DataBucket:\n    Type: AWS::S3::Bucket\n"


def run_process(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real console script in a subprocess."""
    env = {**os.environ, "NO_COLOR": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.run(
        [str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`deployline check|rules ARGS` in this process, from `cwd`, with its exit code and output."""
    stdout, stderr = io.StringIO(), io.StringIO()
    here = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse's usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(list(args), code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    (root / "clean.yaml").write_text(CLEAN)
    (root / "bad.yaml").write_text(BARE_BUCKET)
    (root / "broken.json").write_text('{"Resources": {')
    (root / "empty").mkdir()
    return root


def test_the_console_script_runs_check_with_its_exit_codes(work: Path) -> None:
    assert run_process("check", "clean.yaml", cwd=work).returncode == 0
    failed = run_process("check", "bad.yaml", cwd=work)
    assert failed.returncode == 1 and "DL101" in failed.stdout
    usage = run_process("check", "missing.yaml", cwd=work)
    assert usage.returncode == 2 and "no such file or directory" in usage.stderr


def test_exit_0_when_nothing_reaches_the_threshold(work: Path) -> None:
    out = run("check", "clean.yaml", cwd=work)
    assert out.returncode == 0, out.stderr
    assert "1 file checked, 0 findings" in out.stdout


def test_exit_1_on_a_finding_at_or_above_the_threshold(work: Path) -> None:
    out = run("check", "bad.yaml", cwd=work)
    assert out.returncode == 1
    assert "DL101" in out.stdout and "DataBucket" in out.stdout
    assert "FAILED (threshold HIGH" in out.stdout


def test_the_threshold_option_moves_the_line(work: Path) -> None:
    assert run("check", "bad.yaml", "--rules", "DL205", cwd=work).returncode == 0
    assert run("check", "bad.yaml", "-r", "DL205", "-t", "medium", cwd=work).returncode == 1
    bad = run("check", "bad.yaml", "--severity-threshold", "urgent", cwd=work)
    assert bad.returncode == 2 and "unknown severity 'urgent'" in bad.stderr


def test_a_parse_error_fails_the_run_and_the_other_files_are_still_checked(work: Path) -> None:
    out = run("check", "broken.json", "bad.yaml", "--format", "json", cwd=work)
    assert out.returncode == 1
    document = json.loads(out.stdout)
    assert [e["file"] for e in document["errors"]] == ["broken.json"]
    assert any(f["rule_id"] == "DL101" for f in document["findings"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "missing.yaml"], "no such file or directory: missing.yaml"),
        (["check", "bad.yaml", "--rules", "DL999"], "no rule matches 'DL999'"),
        (["check", "bad.yaml", "--skip", "XX"], "--skip: no rule matches 'XX'"),
        (["check", "bad.yaml", "--format", "xml"], "--format 'xml' is not supported"),
        (["check", "bad.yaml", "--bogus"], "unrecognized arguments: --bogus"),
        (["check", "bad.yaml", "--baseline", "none.json"], "no such baseline file"),
        (["check", "bad.yaml", "--config", "none.yaml"], "no such config file"),
        (["rules", "DL999"], "no rule matches 'DL999'"),
        (["rules", "--format", "pdf"], "--format 'pdf' is not supported"),
        (["check", "empty"], "no CloudFormation template under empty"),
        (["check", "bad.yaml", "--profile", "x"], "--profile 'x' is not a profile"),
    ],
)
def test_usage_errors_are_one_line_exit_2_and_no_traceback(
    work: Path, args: list[str], message: str
) -> None:
    out = run(*args, cwd=work)
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stderr.startswith("error: "), out.stderr  # like every other command's errors
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_rules_and_skip_take_comma_lists_repeats_and_prefixes(work: Path) -> None:
    def rule_ids(*extra: str) -> set[str]:
        out = run("check", "bad.yaml", "--format", "json", *extra, cwd=work)
        return {f["rule_id"] for f in json.loads(out.stdout)["findings"]}

    assert rule_ids("--rules", "DL101,DL205") == {"DL101", "DL205"}
    assert rule_ids("--rules", "DL101", "--rules", "dl103") == {"DL101", "DL103"}
    assert rule_ids("--rules", "DL1", "--skip", "DL101,DL104") == {"DL103"}


def test_sarif_and_junit_go_to_stdout(work: Path) -> None:
    sarif = run("check", "bad.yaml", "-f", "sarif", cwd=work)
    assert sarif.returncode == 1
    assert json.loads(sarif.stdout)["version"] == "2.1.0"
    junit = run("check", "bad.yaml", "-f", "junit", cwd=work)
    assert ET.fromstring(junit.stdout).tag == "testsuites"


def test_output_writes_the_report_to_a_file_and_a_summary_to_stderr(work: Path) -> None:
    out = run("check", "bad.yaml", "--format", "sarif", "--output", "reports/check.sarif", cwd=work)
    assert out.returncode == 1
    assert out.stdout == ""
    assert "report written to reports/check.sarif" in out.stderr
    written = json.loads((work / "reports" / "check.sarif").read_text())
    assert written["runs"][0]["results"]
    assert not [p for p in (work / "reports").iterdir() if p.name.endswith(".tmp")]


def test_write_baseline_then_baseline_accepts_the_known_findings(work: Path) -> None:
    first = run("check", "bad.yaml", "--write-baseline", "baseline.json", cwd=work)
    assert first.returncode == 0
    assert "baseline entries to baseline.json" in first.stderr
    again = run("check", "bad.yaml", "--baseline", "baseline.json", "-f", "json", cwd=work)
    assert again.returncode == 0
    summary = json.loads(again.stdout)["summary"]
    assert summary["findings"] == 0 and summary["baselined"] > 0


def test_config_suppressions_are_read_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BARE_BUCKET)
    (tmp_path / "deployline.yaml").write_text(
        "checks:\n  suppress:\n"
        "    - {id: DL101, reason: fixture bucket holds nothing}\n"
        "    - {id: DL103, reason: fixture bucket holds nothing}\n"
    )
    out = run("check", "bad.yaml", "-f", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    assert json.loads(out.stdout)["summary"]["suppressed"] == 2
    assert run("check", "bad.yaml", "--config", "deployline.yaml", cwd=tmp_path).returncode == 0


def test_a_cloud_assembly_is_checked_with_its_nested_stack_and_stage(work: Path) -> None:
    out = run("check", ASSEMBLY, "-f", "json", cwd=work)
    files = json.loads(out.stdout)["files"]
    assert len(files) == 3 and any(f.endswith(".nested.template.json") for f in files)


def test_rules_lists_every_rule_and_shows_one_in_full(work: Path) -> None:
    listing = run("rules", cwd=work)
    assert listing.returncode == 0
    assert any(line.startswith("DL101 ") for line in listing.stdout.splitlines())
    one = run("rules", "DL101", "--format", "json", cwd=work)
    [rule] = json.loads(one.stdout)
    assert rule["id"] == "DL101" and rule["rationale"] and rule["fix_example"]


def test_python_dash_m_runs_the_checker(work: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "deployline.checks", "bad.yaml", "-f", "json"],
        cwd=work, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert json.loads(out.stdout)["findings"]


def test_help_lists_the_options(work: Path) -> None:
    out = run("check", "--help", cwd=work)
    assert out.returncode == 0
    for option in ("--format", "--output", "--severity-threshold", "--baseline", "--no-color"):
        assert option in out.stdout


@pytest.mark.parametrize("command", [["check", "bad.yaml", "-f", "sarif"], ["rules"]])
def test_check_imports_no_heavy_module(work: Path, command: list[str]) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['deployline', *{command!r}]\n"
        "from deployline import cli\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('aws_cdk', 'pydantic', 'boto3', 'botocore', 'jsii', 'constructs')\n"
        "sys.stderr.write(repr(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=60
    )
    assert out.stderr.strip().splitlines()[-1] == "[]"


# deployline synth runs the checker ------------------------------------------------------------


def test_synth_fails_with_a_summary_when_findings_reach_the_threshold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import typer

    from deployline.checks.model import CheckResult, Finding, Severity
    from deployline.cli import _report_synth_check

    finding = Finding("DL101", Severity.HIGH, "cdk.out/App.template.json", "Bucket", "P", "m")
    with pytest.raises(typer.Exit) as failed:
        _report_synth_check(CheckResult(findings=[finding], files=["cdk.out/App.template.json"]))
    assert failed.value.exit_code == 1
    err = capsys.readouterr().err
    assert "DL101" in err and "Bucket" in err
    assert "1 finding(s) at or above HIGH" in err and "--no-check" in err

    below = CheckResult(findings=[finding], threshold=Severity.CRITICAL, files=["a"])
    _report_synth_check(below)  # below the threshold: reported, not failed
    assert "passed (threshold CRITICAL" in capsys.readouterr().err


def test_synth_of_the_example_checks_what_it_wrote_and_no_check_skips_it(tmp_path: Path) -> None:
    """`deployline synth` in-process, as the console script runs it (cli.run): two synths of the
    example (the console script's own wiring is test_the_console_script_runs_check_...)."""
    from deployline import cli

    root = Path(__file__).resolve().parents[2]

    def synth(*extra: str) -> tuple[int, str]:
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = cli.run(["synth", "--config", str(root / "deployline.yaml"), *extra])
        return code, err.getvalue()

    code, stderr = synth("--out", str(tmp_path / "a"))
    assert code == 0, stderr[-2000:]
    assert "deployline check:" in stderr
    assert "0 findings" in stderr
    code, stderr = synth("--out", str(tmp_path / "b"), "--no-check")
    assert code == 0, stderr[-2000:]
    assert "deployline check:" not in stderr
    assert (tmp_path / "b" / "manifest.json").is_file()


def test_text_piped_to_a_file_has_no_colour(work: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    out = subprocess.run(
        [str(BIN), "check", "bad.yaml"], cwd=work, capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    # the in-process runner above leaves NO_COLOR alone; this one runs without it
    assert out.returncode == 1
    assert "DL101" in out.stdout and "\x1b[" not in out.stdout


def test_the_typer_commands_behave_like_the_fast_path(work: Path) -> None:
    """What `deployline --help` registers (deployline.cli.LAZY_COMMANDS) parses the same way."""
    from typer.testing import CliRunner

    from deployline.cli import LAZY_COMMANDS, register_commands

    assert LAZY_COMMANDS["check"] == ("deployline.checks.cli", "check_command")
    assert LAZY_COMMANDS["rules"] == ("deployline.checks.cli", "rules_command")
    app = register_commands(["check", "rules"])
    runner = CliRunner()
    args = ["check", str(work / "bad.yaml"), "--rules", "DL101,DL205", "-f", "json", "-t", "low"]
    found = runner.invoke(app, args)
    assert found.exit_code == 1
    assert {f["rule_id"] for f in json.loads(found.stdout)["findings"]} == {"DL101", "DL205"}
    missing = runner.invoke(app, ["check", str(work / "nope.yaml")])
    assert missing.exit_code == 2
    assert runner.invoke(app, ["rules", "DL1", "-f", "markdown"]).stdout.startswith("## DL1")
