"""The pinned CDK CLI: one version everywhere, found or installed, run with its output streamed,
stopped on Ctrl-C, and a clear error (exit 2) without Node or npm."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deployline.cli import app, register_commands
from deployline.deploy.cdk import (
    CDK_CLI_VERSION,
    CdkCli,
    CdkCliError,
    StackEvent,
    find_cli,
    install_cli,
    installed_version,
    node_executable,
    parse_event,
)

from .conftest import ROOT

NODE = node_executable()


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_package_json_the_lock_and_deployline_pin_the_same_cli() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert package["devDependencies"] == {"aws-cdk": CDK_CLI_VERSION}
    assert lock["packages"][""]["devDependencies"] == {"aws-cdk": CDK_CLI_VERSION}
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == CDK_CLI_VERSION
    assert lock["packages"]["node_modules/aws-cdk"]["integrity"].startswith("sha512-")


def test_the_cli_found_is_the_pinned_one_and_streams_its_output(
    cdk_cli: CdkCli, tmp_path: Path
) -> None:
    lines: list[str] = []
    assert cdk_cli.run(["--version"], cwd=tmp_path, on_line=lines.append) == 0
    assert lines[0].startswith(f"{CDK_CLI_VERSION} (build ")
    assert installed_version(cdk_cli.entry.parents[3]) == CDK_CLI_VERSION


def test_first_use_installs_the_pinned_cli_and_leaves_no_scratch(tmp_path: Path) -> None:
    target = tmp_path / "cache" / f"aws-cdk-{CDK_CLI_VERSION}"
    install_cli(target)
    assert installed_version(target) == CDK_CLI_VERSION
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
    lines: list[str] = []
    cli = CdkCli(NODE, target / "node_modules" / "aws-cdk" / "bin" / "cdk", CDK_CLI_VERSION)
    assert cli.run(["--version"], cwd=tmp_path, on_line=lines.append) == 0
    assert lines[0].startswith(CDK_CLI_VERSION)


def test_a_failed_install_says_why_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script(bin_dir / "npm", "#!/bin/sh\necho 'npm error 404 Not Found - aws-cdk'\nexit 1\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    target = tmp_path / "cache" / "aws-cdk"
    with pytest.raises(CdkCliError) as caught:
        install_cli(target)
    message = str(caught.value)
    assert message.startswith(f"npm could not install aws-cdk@{CDK_CLI_VERSION} into {target}")
    assert "(exit 1):\nnpm error 404 Not Found - aws-cdk\n" in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_without_npm_the_first_use_install_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CdkCliError, match=r"^npm was not found on PATH; it installs the AWS CDK"):
        install_cli(tmp_path / "cache" / "aws-cdk")


def test_without_node_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CdkCliError) as caught:
        find_cli(tmp_path)
    assert str(caught.value).startswith(
        "Node.js was not found on PATH; the AWS CDK CLI runs on it: install Node.js 18 or newer "
        "(https://nodejs.org"
    )


def test_an_old_node_is_refused_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = script(tmp_path / "node", "#!/bin/sh\necho v16.20.2\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CdkCliError) as caught:
        find_cli(tmp_path)
    assert str(caught.value).startswith(
        f"the AWS CDK CLI needs Node.js 18 or newer, found v16.20.2 at {node}: install"
    )


@pytest.mark.parametrize("command", ["deploy", "diff", "rollback", "destroy"])
def test_every_deploy_command_exits_2_without_node_before_reading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    register_commands([command])
    monkeypatch.setenv("PATH", str(tmp_path))
    args = [command, "--config", str(tmp_path / "absent.yaml")]
    if command in {"rollback", "destroy"}:
        args += ["--env", "staging"]
    if command != "diff":
        args.append("--yes")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: Node.js was not found on PATH")
    assert "Traceback" not in result.output


def test_ctrl_c_is_passed_on_and_waited_for(tmp_path: Path) -> None:
    """The CLI gets SIGINT (CloudFormation goes on either way, but the CLI stops cleanly), and
    run() returns only once it has stopped."""
    stopped = tmp_path / "stopped"
    entry = tmp_path / "cli.js"
    entry.write_text(
        "process.on('SIGINT', () => {\n"
        f"  require('fs').writeFileSync({json.dumps(str(stopped))}, 'yes');\n"
        "  process.exit(130);\n"
        "});\n"
        "console.log('ready');\n"
        "setTimeout(() => {}, 60000);\n"
    )

    def interrupt(line: str) -> None:
        if line == "ready":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        CdkCli(NODE, entry, "test").run([], cwd=tmp_path, on_line=interrupt)
    assert stopped.read_text() == "yes"


def test_stack_events_are_read_from_the_clis_lines() -> None:
    assert parse_event(
        "payment-processor-service-staging |  3/43 | 8:16:17 PM | CREATE_COMPLETE         | "
        "AWS::ECS::Cluster                           | Service/Cluster (ServiceCluster572F72F1) "
    ) == StackEvent(
        stack="payment-processor-service-staging",
        done=3,
        total=43,
        status="CREATE_COMPLETE",
        resource_type="AWS::ECS::Cluster",
        detail="Service/Cluster (ServiceCluster572F72F1)",
    )
    failed = parse_event(
        "orders-service-prod | 12/40 | 10:01:02 AM | CREATE_FAILED           | "
        "AWS::ECS::Service | Service/Service (Service9571FDD8) Resource handler returned "
        'message: "Invalid request"'
    )
    assert failed is not None and failed.failed
    assert failed.detail.endswith('Resource handler returned message: "Invalid request"')
    skipped = parse_event(
        "orders-service-prod | 13/40 | 10:01:03 AM | DELETE_FAILED (skipped) | "
        "AWS::Logs::LogGroup | Logs (this will take a few minutes to recover)"
    )
    assert skipped is not None and skipped.status == "DELETE_FAILED"
    assert parse_event("✅  payment-processor-service-staging") is None
    assert parse_event("Stack ARN:") is None


def test_the_cli_runs_without_its_newer_version_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CDK_DISABLE_VERSION_CHECK", raising=False)
    entry = tmp_path / "env.js"
    entry.write_text(
        "console.log(process.env.CDK_DISABLE_VERSION_CHECK + ' ' + process.env.EXTRA)\n"
    )
    lines: list[str] = []
    code = CdkCli(NODE, entry, "test").run(
        [], cwd=tmp_path, on_line=lines.append, env={"EXTRA": "passed"}
    )
    assert (code, lines) == (0, ["1 passed"])
    assert os.environ.get("CDK_DISABLE_VERSION_CHECK") is None


@pytest.mark.parametrize("command", ["deploy", "rollback", "destroy"])
def test_without_a_terminal_or_yes_a_command_that_asks_stops_before_any_work(
    tmp_path: Path, command: str
) -> None:
    register_commands([command])
    args = [command, "--config", str(tmp_path / "absent.yaml")]
    if command != "deploy":
        args += ["--env", "staging"]
    result = CliRunner().invoke(app, args, input="")
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"error: deployline {command} asks for a confirmation and stdin is not a terminal: "
        "pass --yes\n"
    )
