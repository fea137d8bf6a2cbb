"""The CLI: init, validate, schema, and synth's handling of bad input (exit 2, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deployline.cli import app
from deployline.config import load_config

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_init_writes_a_starter_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "deployline.yaml"
    result = run(
        "init",
        "--path",
        str(target),
        "--service",
        "orders",
        "--project",
        "shop",
        "--repository",
        "acme/orders",
        "--email",
        "ops@example.com",
        "--no-interactive",
    )
    assert result.exit_code == 0, result.output
    config = load_config(target)
    assert config.service == "orders"
    assert config.notifications.emails == ["ops@example.com"]
    assert "# " in target.read_text()  # commented for the newcomer


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "deployline.yaml"
    target.write_text("keep me\n")
    result = run("init", "--path", str(target), "--service", "orders", "--no-interactive")
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert target.read_text() == "keep me\n"


def test_init_overwrites_with_force(tmp_path: Path) -> None:
    target = tmp_path / "deployline.yaml"
    target.write_text("old\n")
    result = run(
        "init",
        "--path",
        str(target),
        "--service",
        "orders",
        "--source",
        "s3",
        "--no-interactive",
        "--force",
    )
    assert result.exit_code == 0, result.output
    assert load_config(target).source.type == "s3"


def test_init_prompts_for_missing_answers(tmp_path: Path) -> None:
    target = tmp_path / "deployline.yaml"
    answers = "billing\nfinance\ncodecommit\nbilling-repo\nbilling@example.com\n"
    result = runner.invoke(app, ["init", "--path", str(target), "--interactive"], input=answers)
    assert result.exit_code == 0, result.output
    config = load_config(target)
    assert (config.service, config.project, config.source.type) == (
        "billing",
        "finance",
        "codecommit",
    )


def test_init_rejects_an_invalid_service_name_without_writing(tmp_path: Path) -> None:
    target = tmp_path / "deployline.yaml"
    result = run("init", "--path", str(target), "--service", "Bad_Name", "--no-interactive")
    assert result.exit_code == 2
    assert "service" in result.output
    assert not target.exists()


def test_validate_reports_every_problem_with_lines(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("service: Bad\nproject: p\nsource: {type: github}\nenvironments: []\n")
    result = run("validate", "--config", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:1: service:" in result.output
    assert f"{bad}:3: source.repository: is required" in result.output
    assert f"{bad}:4: environments:" in result.output
    assert "Traceback" not in result.output


def test_synth_of_a_broken_config_exits_2_naming_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(
        Path("deployline.yaml").read_text().replace("desired_count: 1", "desired_count: zero")
    )
    out = tmp_path / "out"
    result = run("synth", "--config", str(bad), "--out", str(out))
    assert result.exit_code == 2
    assert "environments[0].desired_count" in result.output
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "zero" in t)
    assert f"{bad}:{line}:" in result.output
    assert not out.exists(), "a failed synth must not leave an output directory"


def test_schema_prints_json_schema() -> None:
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "deployline.yaml"
    assert {"service", "project", "source", "environments"} <= set(schema["required"])


@pytest.mark.parametrize("command", ["synth", "validate"])
def test_missing_config_file_is_a_clean_error(tmp_path: Path, command: str) -> None:
    result = run(command, "--config", str(tmp_path / "absent.yaml"))
    assert result.exit_code == 2
    assert "file not found" in result.output
    assert "Traceback" not in result.output


def test_help_lists_every_command_including_lazy_ones() -> None:
    from deployline.cli import LAZY_COMMANDS, register_commands

    result = runner.invoke(register_commands(), ["--help"])
    assert result.exit_code == 0
    for name in ["init", "validate", "synth", "schema", *LAZY_COMMANDS]:
        assert name in result.output


def test_a_light_command_does_not_import_heavy_modules() -> None:
    """`deployline schema --help` must not import aws_cdk, boto3 or the local runner."""
    import subprocess
    import sys

    code = (
        "import sys; sys.argv=['deployline','schema','--help'];"
        "from deployline import cli;\n"
        "try: cli.main()\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in ('aws_cdk','boto3','deployline.local_runner') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_validate_prints_a_warning_for_a_test_listener_open_to_everyone(tmp_path: Path) -> None:
    import yaml

    root = Path(__file__).resolve().parent.parent
    data = yaml.safe_load((root / "deployline.yaml").read_text(encoding="utf-8"))
    data["environments"][-1]["test_listener_cidrs"] = ["0.0.0.0/0"]
    path = tmp_path / "deployline.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = runner.invoke(app, ["validate", "--config", str(path)])
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "test_listener_cidrs" in result.stderr


def test_importing_the_cdk_app_prints_no_node_banner() -> None:
    """jsii's Node end-of-life banner is quieted before aws_cdk loads, whatever the import order."""
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("JSII_")}
    done = subprocess.run(
        [sys.executable, "-c", "import deployline.app, aws_cdk; aws_cdk.App()"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert "end-of-life" not in done.stderr and "!!!" not in done.stderr


def test_synth_summary_shows_whole_stack_names_in_a_narrow_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cdk deploy` takes the stack names from this table: an 80-column pipe must not cut them.
    (The summary is what is under test; the synth itself is test_synth's.)"""
    from deployline import synth as synth_module

    names = ("payment-processor-pipeline-shared", "payment-processor-service-production")
    result = synth_module.SynthResult(
        outdir=tmp_path,
        stacks=[
            synth_module.StackSummary(name, 50, 5, tmp_path / f"{name}.template.json")
            for name in names
        ],
    )
    monkeypatch.setattr(synth_module, "synthesize", lambda *args, **kwargs: result)
    monkeypatch.setenv("COLUMNS", "80")
    done = runner.invoke(app, ["synth", "--no-check", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    for name in names:
        assert f" {name} " in done.stdout
        assert f"{name}.template.json" in done.stdout
