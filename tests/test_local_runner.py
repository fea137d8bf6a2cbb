"""deployline run-local: the local runner and its command.

Scans run Bandit for real (installed by the stage's own pip command into a virtualenv shared by
this module, so downloads happen once). pip-audit needs PyPI's JSON API and Trivy is a separate
binary, so the scan tests skip them knowingly (`--skip-scanner`), or put a stub `trivy` on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from deployline import stages
from deployline.config import load_config
from deployline.local_runner import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_PASSED,
    EXIT_USAGE,
    LocalRunError,
    docker_available,
    execute,
    find_workdir,
    plan,
    render_result,
    run_local,
    run_local_command,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "payment-processor"

app = typer.Typer()
app.command()(run_local_command)

_IGNORE_COPY = shutil.ignore_patterns("reports", "__pycache__", ".pytest_cache", ".coverage")

FLAWS = '''"""Injected flaws: the scan must fail on these."""
import subprocess

DB_PASSWORD = "hunter2-production"


def backup(target: str) -> int:
    return subprocess.call("tar czf backup.tgz " + target, shell=True)
'''


def _quiet() -> Console:
    return Console(stderr=True, quiet=True)


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _path_without(*tools: str) -> str:
    """This process's PATH minus every directory that holds one of `tools`."""
    dirs = os.environ["PATH"].split(os.pathsep)
    return os.pathsep.join(d for d in dirs if not any((Path(d) / t).exists() for t in tools))


def _write_config(
    directory: Path,
    *,
    commands: Sequence[str] = ("true",),
    junit: str | None = "reports/junit.xml",
    scanners: Sequence[str] = ("bandit",),
    paths: Sequence[str] = (".",),
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "service": "demo",
        "project": "demo",
        "source": {"type": "s3"},
        "test": {"commands": list(commands), "reports": {"junit": junit, "coverage": None}},
        "security": {"scanners": list(scanners), "paths": list(paths)},
        "environments": [{"name": "dev", "plain_http": True}],
    }
    path = directory / "deployline.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def venv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One virtualenv for the module's runs, so the scanners are downloaded once."""
    return tmp_path_factory.mktemp("shared") / "venv"


@pytest.fixture
def sample_repo(tmp_path: Path) -> Path:
    """A copy of the sample service at its place in a repository (no git)."""
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE, repo / "examples" / "payment-processor", ignore=_IGNORE_COPY)
    return repo


def _sample_config(repo: Path) -> Path:
    return repo / "examples" / "payment-processor" / "deployline.yaml"


def _invoke(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.output


# --------------------------------------------------------------------------------------------
# scan
# --------------------------------------------------------------------------------------------


def test_scan_runs_bandit_for_real_on_the_sample_and_passes(
    sample_repo: Path, venv_dir: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    code, output = _invoke(
        [
            "scan",
            "--config",
            str(_sample_config(sample_repo)),
            "--workdir",
            str(sample_repo),
            "--skip-scanner",
            "trivy",
            "--skip-scanner",
            "pip-audit",
            "--reports-dir",
            str(reports),
            "--venv",
            str(venv_dir),
        ],
        env={"PATH": _path_without("trivy")},
    )
    assert code == EXIT_PASSED, output
    bandit = json.loads((reports / "bandit.json").read_text())
    scanned = {Path(name).name for name in bandit["metrics"] if name != "_totals"}
    assert {"payments.py", "service.py", "gunicorn.conf.py"} <= scanned
    assert bandit["metrics"]["_totals"]["SEVERITY.HIGH"] == 0
    verdict = json.loads((reports / "gate-verdict.json").read_text())
    assert verdict["passed"] is True
    assert verdict["skipped"] == ["trivy", "pip-audit"]
    assert "Security gate PASSED at threshold high" in output
    assert "Skipped on purpose: trivy, pip-audit" in output
    assert "--skip-scanner trivy" in output  # the skipped steps say why


def test_scan_fails_on_injected_flaws_and_names_them(
    sample_repo: Path, venv_dir: Path, tmp_path: Path
) -> None:
    (sample_repo / "examples" / "payment-processor" / "app" / "admin.py").write_text(FLAWS)
    reports = tmp_path / "reports"
    code, output = _invoke(
        [
            "scan",
            "-c",
            str(_sample_config(sample_repo)),
            "--workdir",
            str(sample_repo),
            "--skip-scanner",
            "trivy",
            "--skip-scanner",
            "pip-audit",
            "--reports-dir",
            str(reports),
            "--venv",
            str(venv_dir),
        ],
        env={"PATH": _path_without("trivy")},
    )
    assert code == EXIT_FAILED, output
    assert "Security gate FAILED at threshold high" in output
    assert "B602" in output and "admin.py" in output  # shell=True with a built command: HIGH
    verdict = json.loads((reports / "gate-verdict.json").read_text())
    assert verdict["passed"] is False
    by_rule = {(f["rule_id"], f["severity"]) for f in verdict["findings"]}
    assert ("B602", "high") in by_rule
    assert ("B105", "low") in by_rule  # the hard-coded password, named below the threshold
    password = next(f for f in verdict["findings"] if f["rule_id"] == "B105")
    assert "admin.py" in password["location"]


def test_a_configured_scanner_that_is_not_installed_is_an_error_never_a_silent_pass(
    sample_repo: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    code, output = _invoke(
        [
            "scan",
            "-c",
            str(_sample_config(sample_repo)),
            "--workdir",
            str(sample_repo),
            "--skip-scanner",
            "pip-audit",
            "--reports-dir",
            str(reports),
        ],
        env={"PATH": _path_without("trivy")},
    )
    assert code == EXIT_USAGE
    flat = " ".join(output.split())
    assert "security.scanners runs trivy, but no `trivy` is on PATH" in flat
    assert "install Trivy" in flat and "--skip-scanner trivy" in flat
    assert "Traceback" not in output
    assert not reports.exists()  # nothing ran


def test_a_trivy_on_path_is_used_and_its_report_judged(
    sample_repo: Path, venv_dir: Path, tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    empty = {"SchemaVersion": 2, "ArtifactName": "x", "ArtifactType": "filesystem", "Results": []}
    _executable(
        bindir / "trivy",
        "#!/usr/bin/env bash\n"
        'echo "$*" >> "$(dirname "$0")/calls.log"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --output ] && out="$2"; shift; done\n'
        f"printf '%s' '{json.dumps(empty)}' > \"$out\"\n",
    )
    env = {"PATH": f"{bindir}{os.pathsep}{_path_without('trivy')}"}
    result = run_local(
        "scan",
        config_path=_sample_config(sample_repo),
        workdir=sample_repo,
        skip_scanners=["pip-audit"],
        reports_dir=tmp_path / "reports",
        venv_dir=venv_dir,
        docker=False,
        base_env={**os.environ, **env},
        console=_quiet(),
    )
    # the gate passed, but the image was not scanned for want of Docker: not a pass
    assert result.exit_code == EXIT_INCOMPLETE
    assert result.without_docker == ("Run Trivy on the image",)
    assert result.verdict is not None and result.verdict.passed
    assert "trivy-fs.json" in result.collected
    assert "trivy-image.json is absent: the container image was not scanned" in (
        result.verdict.notes
    )
    calls = (bindir / "calls.log").read_text()
    assert calls.startswith("fs --scanners vuln,secret") and "examples/payment-processor" in calls
    image_step = next(s for s in result.steps if s.name == "Run Trivy on the image")
    assert image_step.status == "skipped" and "Docker" in image_step.note


# --------------------------------------------------------------------------------------------
# the same commands as the pipeline
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage_name", ["test", "scan", "build"])
def test_local_commands_are_the_buildspec_commands(stage_name: str) -> None:
    config = load_config(_sample_config(SAMPLE.parents[1]))
    stage = stages.stages(config)[stage_name]  # type: ignore[index]
    if stage_name == "test":
        spec = stages.test_buildspec(config, junit_report_group="j", coverage_report_group="c")
    elif stage_name == "scan":
        spec = stages.scan_buildspec(config)
    else:
        spec = stages.build_buildspec(config)
    buildspec_commands = [
        cmd for phase in stages.PHASES for cmd in spec["phases"].get(phase, {}).get("commands", [])
    ]
    planned = plan(stage, docker=True)
    assert [p.step.command for p in planned] == buildspec_commands
    # what does not run locally is exactly what needs the pipeline's AWS context
    assert [p.step.name for p in planned if not p.run] == [
        s.name for s in stage.steps if s.pipeline_only
    ]
    without_docker = plan(stage, docker=False)
    assert {p.step.name for p in without_docker if not p.run} == {
        s.name for s in stage.steps if s.pipeline_only or s.needs_docker
    }


# --------------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------------


def test_build_without_docker_is_skipped_not_passed_and_writes_the_deployment_files(
    sample_repo: Path, venv_dir: Path, tmp_path: Path
) -> None:
    result = run_local(
        "build",
        config_path=_sample_config(sample_repo),
        workdir=sample_repo,
        reports_dir=tmp_path / "out",
        venv_dir=venv_dir,
        docker=False,
        console=_quiet(),
    )
    assert result.exit_code == EXIT_INCOMPLETE
    assert result.without_docker == ("Build the image",)
    status = {s.name: (s.status, s.note) for s in result.steps}
    assert status["Build the image"] == ("skipped", "no Docker engine answers `docker info`")
    assert status["Log in to Amazon ECR"][0] == "skipped"
    assert status["Log in to Amazon ECR"][1].startswith("pipeline only:")
    assert result.collected == ("imagedefinitions.json", "imageDetail.json")
    assert result.missing == ()
    definitions = json.loads((tmp_path / "out" / "imagedefinitions.json").read_text())
    assert definitions == [{"name": "app", "imageUri": "deployline-local/payment-processor:local"}]
    assert any("Docker" in n for n in result.notes)
    console = Console(record=True, width=200)
    render_result(result, console)
    said = console.export_text()
    assert "build stage skipped: no Docker engine answers `docker info`, so no image was built" in (
        said
    )
    assert "passed" not in said


def test_run_local_build_without_docker_exits_3_and_never_says_passed(
    sample_repo: Path, venv_dir: Path, tmp_path: Path
) -> None:
    """The command, with no `docker` on PATH at all (as on a machine without Docker)."""
    env = {"PATH": _path_without("docker")}
    code, output = _invoke(
        [
            "build",
            "--config",
            str(_sample_config(sample_repo)),
            "--workdir",
            str(sample_repo),
            "--reports-dir",
            str(tmp_path / "out"),
            "--venv",
            str(venv_dir),
        ],
        env=env,
    )
    said = " ".join(output.split())  # the console folds long lines
    assert code == EXIT_INCOMPLETE == 3
    assert "build stage skipped" in said and "no image was built" in said
    assert "passed" not in said.split("build stage skipped")[1]


def test_build_with_a_docker_engine_builds_the_image(
    sample_repo: Path, venv_dir: Path, tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _executable(
        bindir / "docker",
        "#!/usr/bin/env bash\n"
        'echo "$*" >> "$(dirname "$0")/calls.log"\n'
        '[ "$1" = info ] && echo 27.0.1\n'
        "exit 0\n",
    )
    base = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    result = run_local(
        "build",
        config_path=_sample_config(sample_repo),
        workdir=sample_repo,
        reports_dir=tmp_path / "out",
        venv_dir=venv_dir,
        base_env=base,
        console=_quiet(),
    )
    assert result.exit_code == EXIT_PASSED
    build = next(s for s in result.steps if s.name == "Build the image")
    assert build.status == "passed"
    calls = (bindir / "calls.log").read_text().splitlines()
    assert calls[0].startswith("info")
    docker_build = next(c for c in calls if c.startswith("build"))
    assert "--platform linux/amd64 --file examples/payment-processor/Dockerfile" in docker_build
    assert docker_build.endswith(
        "--tag deployline-local/payment-processor:local examples/payment-processor"
    )
    assert not any(c.startswith(("push", "login")) for c in calls)


def test_docker_available_asks_the_engine(tmp_path: Path) -> None:
    answering, silent = tmp_path / "up", tmp_path / "down"
    for directory, script in (
        (answering, "#!/bin/sh\necho 27.0.1\n"),
        (silent, "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"),
    ):
        directory.mkdir()
        _executable(directory / "docker", script)
    assert docker_available({"PATH": str(answering)}) is True
    assert docker_available({"PATH": str(silent)}) is False
    assert docker_available({"PATH": str(tmp_path / "nowhere")}) is False


# --------------------------------------------------------------------------------------------
# how commands run
# --------------------------------------------------------------------------------------------


def test_a_failing_command_stops_the_stage_shows_its_full_output_and_exits_1(
    tmp_path: Path, venv_dir: Path
) -> None:
    lines = "; ".join(f"echo 'output line {i}'" for i in range(60))
    config = _write_config(
        tmp_path / "repo",
        commands=["echo first", f"{lines}; echo 'to stderr' >&2; false", "echo never"],
    )
    code, output = _invoke(
        ["test", "-c", str(config), "--reports-dir", str(tmp_path / "r"), "--venv", str(venv_dir)]
    )
    assert code == EXIT_FAILED
    assert all(f"output line {i}" in output for i in range(60))  # the full output, not a tail
    assert "to stderr" in output
    assert "test stage failed at" in output and "the pipeline would stop here" in output


def test_outcomes_after_a_failure_are_not_run(tmp_path: Path, venv_dir: Path) -> None:
    config = _write_config(tmp_path / "repo", commands=["true", "exit 3", "echo never"])
    result = run_local(
        "test",
        config_path=config,
        reports_dir=tmp_path / "r",
        venv_dir=venv_dir,
        console=_quiet(),
    )
    assert [s.status for s in result.steps] == ["passed", "failed", "not run"]
    assert result.steps[1].note == "the command ended the shell (exit 3)"
    assert result.exit_code == EXIT_FAILED


def test_commands_share_one_shell_like_codebuild(tmp_path: Path, venv_dir: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "README").write_text("empty directories are not copied (nor by git)")
    config = _write_config(
        repo,
        commands=[
            "cd sub",
            "export EXPORTED=yes; PLAIN=also",
            'mkdir -p reports && echo "$PWD $EXPORTED $PLAIN" > reports/junit.xml',
        ],
        junit="sub/reports/junit.xml",
    )
    result = run_local(
        "test", config_path=config, reports_dir=tmp_path / "r", venv_dir=venv_dir, console=_quiet()
    )
    assert result.exit_code == EXIT_PASSED, [s.output for s in result.steps]
    cwd, exported, plain = (tmp_path / "r" / "junit.xml").read_text().split()
    assert cwd.endswith("/src/sub") and (exported, plain) == ("yes", "also")


def test_commands_run_in_a_fresh_virtualenv_first_on_path(tmp_path: Path) -> None:
    config = _write_config(
        tmp_path / "repo",
        commands=[
            "mkdir -p reports",
            'python -c "import sys; print(sys.prefix)" > reports/junit.xml',
            'echo "$VIRTUAL_ENV $(command -v pip)" >> reports/junit.xml',
        ],
    )
    result = run_local(
        "test",
        config_path=config,
        reports_dir=tmp_path / "r",
        base_env={**os.environ, "PYTHONPATH": "/leak", "VIRTUAL_ENV": "/somewhere/else"},
        console=_quiet(),
    )
    assert result.exit_code == EXIT_PASSED
    prefix, virtual_env, pip = (tmp_path / "r" / "junit.xml").read_text().split()
    assert "deployline-test-" in prefix and prefix.endswith("/venv")
    assert virtual_env == prefix and pip == f"{prefix}/bin/pip"
    assert not Path(prefix).exists()  # the scratch directory is gone (no --keep)


def test_keep_leaves_the_scratch_copy_for_inspection(tmp_path: Path, venv_dir: Path) -> None:
    config = _write_config(tmp_path / "repo", commands=["echo kept > marker.txt"], junit=None)
    result = run_local(
        "test",
        config_path=config,
        reports_dir=tmp_path / "r",
        venv_dir=venv_dir,
        keep=True,
        console=_quiet(),
    )
    assert result.scratch is not None
    try:
        assert (result.scratch / "src" / "marker.txt").read_text() == "kept\n"
    finally:
        shutil.rmtree(result.scratch)


def test_the_users_tree_is_never_modified(
    sample_repo: Path, venv_dir: Path, tmp_path: Path
) -> None:
    config = _write_config(
        sample_repo,
        commands=["rm -rf examples", "echo x > new-file", "chmod -R a-w . || true"],
        junit=None,
    )

    def snapshot() -> dict[str, tuple[int, int, int]]:
        return {
            str(p.relative_to(sample_repo)): (
                p.stat().st_size,
                p.stat().st_mtime_ns,
                p.stat().st_mode,
            )
            for p in sample_repo.rglob("*")
        }

    before = snapshot()
    result = run_local(
        "test", config_path=config, reports_dir=tmp_path / "r", venv_dir=venv_dir, console=_quiet()
    )
    assert result.exit_code == EXIT_PASSED
    assert snapshot() == before


def test_stale_reports_are_removed_before_a_run(tmp_path: Path, venv_dir: Path) -> None:
    reports = tmp_path / "r"
    reports.mkdir()
    (reports / "junit.xml").write_text("<testsuite tests='1' failures='0'/>")
    config = _write_config(tmp_path / "repo", commands=["false"])
    result = run_local(
        "test", config_path=config, reports_dir=reports, venv_dir=venv_dir, console=_quiet()
    )
    assert result.exit_code == EXIT_FAILED
    assert not (reports / "junit.xml").exists()
    assert result.missing == ("junit.xml",)


def test_a_hanging_command_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    step = stages.Step(name="hang", command="sleep 60 & sleep 60", phase="build")
    started = time.monotonic()
    (outcome,) = execute(
        [step], cwd=tmp_path, env=dict(os.environ), logdir=tmp_path / "logs", timeout_seconds=1
    )
    assert time.monotonic() - started < 15
    assert outcome.status == "failed"
    assert "timed out" in outcome.note
    leftover = subprocess.run(
        ["pgrep", "-f", f"{tmp_path}"], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == ""


def test_progress_events_come_in_order(tmp_path: Path) -> None:
    steps = [
        stages.Step(name="a", command="echo a", phase="build"),
        stages.Step(name="b", command="sleep 1.2; echo b", phase="build"),
    ]
    events: list[tuple[str, int]] = []
    outcomes = execute(
        steps,
        cwd=tmp_path,
        env=dict(os.environ),
        logdir=tmp_path / "logs",
        on_event=lambda kind, index, code, elapsed: events.append((kind, index)),
    )
    assert [o.output for o in outcomes] == ["a\n", "b\n"]
    # a loaded machine may tick during "echo a" too; the order of starts and ends is the contract
    milestones = [event for event in events if event[0] != "tick"]
    assert milestones == [("start", 0), ("end", 0), ("start", 1), ("end", 1)]
    assert ("tick", 1) in events and events[-1] == ("end", 1)


# --------------------------------------------------------------------------------------------
# the scratch copy
# --------------------------------------------------------------------------------------------


def test_the_default_workdir_is_the_repository_that_holds_the_config() -> None:
    assert find_workdir(_sample_config(SAMPLE.parents[1])) == ROOT


# --------------------------------------------------------------------------------------------
# usage errors: exit 2, a message, no traceback
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["test", "--skip-scanner", "bandit"], "applies to the scan stage only"),
        (["scan", "--skip-scanner", "semgrep"], "'semgrep' is not a scanner"),
        (["scan", "--skip-scanner", "trivy"], "names a scanner that security.scanners does not"),
    ],
)
def test_usage_errors_exit_2_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    config = _write_config(tmp_path / "repo", scanners=["bandit"])
    code, output = _invoke([*args, "-c", str(config)])
    assert code == EXIT_USAGE
    assert message in " ".join(output.split())
    assert "Traceback" not in output


def test_an_invalid_config_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "deployline.yaml"
    config.write_text("service: demo\nproject: demo\nsource: {type: s3}\nenvironments: []\n")
    code, output = _invoke(["test", "-c", str(config)])
    assert code == EXIT_USAGE
    assert f"{config}:4" in output and "environments" in output
    assert "Traceback" not in output


def test_a_missing_config_exits_2(tmp_path: Path) -> None:
    code, output = _invoke(["build", "-c", str(tmp_path / "nope.yaml")])
    assert code == EXIT_USAGE
    assert "file not found" in output


def test_run_local_rejects_an_unknown_stage(tmp_path: Path) -> None:
    with pytest.raises(LocalRunError, match="unknown stage 'deploy'"):
        run_local("deploy", config_path=_write_config(tmp_path), console=_quiet())
