"""The CLI: init, validate, schema, --version, one error style, Ctrl-C, and synth's handling of
bad input (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import product
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from deployline import cli
from deployline.cli import app
from deployline.config import load_config
from deployline.init_config import DEPLOYMENTS, SOURCES

ROOT = Path(__file__).resolve().parent.parent
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
    answers = (
        "billing\nfinance\ncodecommit\nbilling-repo\nrelease/1.0\nrolling\n"
        "billing@example.com, ops@example.com\n"
    )
    result = runner.invoke(app, ["init", "--path", str(target), "--interactive"], input=answers)
    assert result.exit_code == 0, result.output
    config = load_config(target)
    assert (config.service, config.project, config.source.type) == (
        "billing",
        "finance",
        "codecommit",
    )
    assert (config.source.repository, config.source.branch) == ("billing-repo", "release/1.0")  # type: ignore[union-attr]
    assert config.environments[-1].deployment.value == "rolling"
    assert config.notifications.emails == ["billing@example.com", "ops@example.com"]


def test_init_asks_again_for_a_choice_that_does_not_exist(tmp_path: Path) -> None:
    target = tmp_path / "deployline.yaml"
    answers = "billing\n\ngitlab\ns3\ncanary\nblue_green\n\n"
    result = runner.invoke(app, ["init", "--path", str(target), "--interactive"], input=answers)
    assert result.exit_code == 0, result.output
    assert result.output.count("Source (github, s3, codecommit)") == 2
    assert result.output.count("Production deployment (blue_green, rolling)") == 2
    config = load_config(target)
    assert (config.source.type, config.environments[-1].deployment.value) == ("s3", "blue_green")
    assert config.notifications.emails == []


def test_init_refuses_a_deployment_mode_that_does_not_exist(tmp_path: Path) -> None:
    target = tmp_path / "deployline.yaml"
    code, _, err = _run_main(
        ["init", "--path", str(target), "--deployment", "canary", "--no-interactive"]
    )
    assert code == 2
    assert err == "error: --deployment must be blue_green or rolling, got 'canary'\n"
    assert not target.exists()


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
        "print(sorted(m for m in ('aws_cdk','boto3','deployline.local_runner')"
        " if m in sys.modules))"
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


# --------------------------------------------------------------------------------------------
# What init writes: the user's umask, atomically
# --------------------------------------------------------------------------------------------


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_init_writes_with_the_user_s_umask(tmp_path: Path, mask: int, mode: int) -> None:
    os.umask(mask)
    target = tmp_path / "deployline.yaml"
    assert run("init", "--path", str(target), "--no-interactive").exit_code == 0
    assert target.stat().st_mode & 0o777 == mode


@pytest.mark.usefixtures("umask")
def test_init_force_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    target = tmp_path / "deployline.yaml"
    target.write_text("old\n")
    target.chmod(0o640)
    os.umask(0o000)
    assert run("init", "--path", str(target), "--no-interactive", "--force").exit_code == 0
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["deployline.yaml"]  # no temporary left


# --------------------------------------------------------------------------------------------
# One error style, --version, Ctrl-C: through cli.run, what the console script runs
# --------------------------------------------------------------------------------------------


def _run_main(args: list[str]) -> tuple[int, str, str]:
    """`deployline ARGS` in-process, as the console script runs it: (exit code, out, err)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.run(args)
    return code, out.getvalue(), err.getvalue()


def test_version_prints_the_version() -> None:
    from deployline import __version__

    assert _run_main(["--version"]) == (0, f"deployline {__version__}\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synth", "--bogus"], "error: No such option: --bogus"),
        (["nosuch"], "error: No such command 'nosuch'. (see `deployline --help`)"),
        (["synth", "--config"], "error: Option '--config' requires an argument."),
        (["run-local", "deploy"], "error: Invalid value for 'stage'"),
    ],
)
def test_usage_errors_are_one_error_line_and_exit_2(args: list[str], message: str) -> None:
    code, out, err = _run_main(args)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert "--help`)" in err
    assert out == "" and "Traceback" not in err and "Usage:" not in err and "╭" not in err


def test_a_config_error_is_in_the_same_style(tmp_path: Path) -> None:
    code, _, err = _run_main(["validate", "--config", str(tmp_path / "absent.yaml")])
    assert code == 2
    assert err.splitlines() == [
        "error: 1 problem in the configuration:",
        f"  {tmp_path / 'absent.yaml'}: file not found; run `deployline init` to write a starter",
    ]


def test_at_most_fifty_problems_are_printed(tmp_path: Path) -> None:
    path = tmp_path / "deployline.yaml"
    path.write_text(
        "service: orders\nproject: shop\nsource: {type: s3}\n"
        "environments: [{name: staging, plain_http: true}]\n"
        "notifications:\n  emails: [" + ", ".join(f"bad{i}" for i in range(80)) + "]\n"
    )
    code, _, err = _run_main(["validate", "--config", str(path)])
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == "error: 80 problems in the configuration:"
    assert len(lines) == 1 + 50 + 1 and lines[-1] == "  ... and 30 more"


def test_ctrl_c_exits_130_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import deployline.synth

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(deployline.synth, "synthesize", interrupted)
    assert _run_main(["synth", "--out", str(tmp_path / "out")]) == (130, "", "interrupted\n")


def test_an_interrupt_that_surfaces_as_a_javascript_error_is_still_an_interrupt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Node gets the same SIGINT and dies; jsii then fails the synth with a JavaScript error,
    which must not be reported as a problem of deployline.yaml (by synth, or by the deploy
    commands that synthesize through deployline.synth)."""
    import deployline.app
    from deployline.interrupts import interrupts

    def node_died(*_args: object, **_kwargs: object) -> None:
        interrupts.seen = True
        raise RuntimeError("Error on jsii API channel to child process: Error: read ECONNRESET")

    monkeypatch.setattr(deployline.app, "build_app", node_died)
    out = tmp_path / "out"
    code, stdout, stderr = _run_main(
        ["synth", "--config", str(ROOT / "deployline.yaml"), "--out", str(out)]
    )
    assert (code, stdout, stderr) == (130, "", "interrupted\n")
    assert list(tmp_path.iterdir()) == []
    assert interrupts.seen is False  # a synth after the command is not taken for interrupted


def test_ctrl_c_during_a_real_synth_leaves_the_previous_output(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it, once the synth has started
    (its scratch directory exists): exit 130, one line, the old cdk.out untouched, no scratch."""
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(
        [sys.executable, "-m", "deployline.cli", "synth", "--out", str(out), "--no-check"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".cdk.out-") for p in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(1.0)  # jsii is building the stacks now
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout, stderr) == (130, "", "interrupted\n")
    assert [p.name for p in tmp_path.iterdir()] == ["cdk.out"]
    assert [p.name for p in out.iterdir()] == ["manifest.json"]


# --------------------------------------------------------------------------------------------
# Every init choice writes a config that validates, synthesizes and passes deployline check
# --------------------------------------------------------------------------------------------
#
# Cost: for each of the 24 discrete choices hypothesis draws 3 sets of answers, each written
# through the CLI in-process and validated (72 inits, a few seconds); the last config of half
# the choices (`synthesized_choice`) is built into ONE CDK app with the others and synthesized
# once (12 services, 24 stacks), then checked once.


#: (source, production's deployment, with e-mail, flags or prompts): every discrete choice.
INIT_CHOICES = list(product(SOURCES, DEPLOYMENTS, (True, False), ("flags", "prompts")))

_NAME = st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,6}){0,2}", fullmatch=True)
_EMAILS = st.lists(
    st.from_regex(r"[a-z0-9._+-]{1,12}@[a-z0-9-]{1,10}\.(com|org|io)", fullmatch=True),
    min_size=1,
    max_size=2,
    unique_by=str.lower,
)
_BRANCH = st.one_of(
    st.sampled_from(["main", "develop", "release/2.1", "v1.0", "1.0", "yes", "feature/x_y"]),
    st.from_regex(r"[a-z][a-z0-9_-]{0,12}(/[a-z0-9][a-z0-9_-]{0,8})?", fullmatch=True),
)


@st.composite
def init_answers(draw: st.DrawFn, choice: tuple[str, str, bool, str], index: int) -> dict:  # type: ignore[type-arg]
    source, deployment, with_email, _ = choice
    answers = {
        "service": f"{draw(_NAME)[:22].rstrip('-')}-i{index}",
        "project": draw(_NAME),
        "source": source,
        "deployment": deployment,
        "emails": draw(_EMAILS) if with_email else [],
    }
    if source == "github":
        owner, name = (
            draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,15}", fullmatch=True)),
            draw(_NAME),
        )
        answers.update(repository=f"{owner}/{name}", branch=draw(_BRANCH))
    elif source == "codecommit":
        answers.update(
            repository=draw(st.from_regex(r"[A-Za-z0-9_.-]{1,30}", fullmatch=True)),
            branch=draw(_BRANCH),
        )
    return answers


def _init(path: Path, answers: dict, mode: str):  # type: ignore[no-untyped-def,type-arg]
    if mode == "flags":
        args = ["init", "--path", str(path), "--no-interactive"]
        for key in ("service", "project", "source", "repository", "branch", "deployment"):
            if key in answers:
                args += [f"--{key}", answers[key]]
        for email in answers["emails"]:
            args += ["--email", email]
        return runner.invoke(app, args)
    typed = [answers["service"], answers["project"], answers["source"]]
    if "repository" in answers:
        typed += [answers["repository"], answers["branch"]]
    typed += [answers["deployment"], ", ".join(answers["emails"])]
    return runner.invoke(
        app, ["init", "--path", str(path), "--interactive"], input="\n".join(typed) + "\n"
    )


#: Examples hypothesis draws for each discrete choice (the last one is synthesized).
EXAMPLES_PER_CHOICE = 3


def synthesized_choice(choice: tuple) -> bool:  # type: ignore[type-arg]
    """Whether the config of `choice` is synthesized: flags and prompts are two ways to type the
    same answers into the same config (each file is read back and compared with its answers
    above), so each source, deployment and e-mail is synthesized once, half of them answered by
    flags, the other half by prompts."""
    _, _, with_email, mode = choice
    return (mode == "flags") is with_email


def _write_examples(directory: Path, choice: tuple, index: int) -> tuple[dict, Path]:  # type: ignore[type-arg]
    """Init with answers hypothesis draws for `choice`; each file must validate as written and
    say what was answered. Returns the last answers and file."""
    last: list[tuple[dict, Path]] = []  # type: ignore[type-arg]

    @settings(
        max_examples=EXAMPLES_PER_CHOICE,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(answers=init_answers(choice, index))
    def write(answers: dict) -> None:  # type: ignore[type-arg]
        path = directory / f"{answers['service']}.yaml"
        path.unlink(missing_ok=True)
        result = _init(path, answers, choice[3])
        assert result.exit_code == 0, (choice, answers, result.output)
        config = load_config(path)  # what `deployline validate` runs
        assert config.service == answers["service"]
        assert config.source.type == choice[0]
        assert config.environments[-1].deployment.value == choice[1]
        assert config.notifications.emails == answers["emails"]
        if "branch" in answers:
            assert config.source.branch == answers["branch"]  # type: ignore[union-attr]
        last.append((answers, path))

    write()
    return last[-1]


@pytest.fixture(scope="module")
def init_configs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[tuple, dict, Path]]:  # type: ignore[type-arg]
    """Each discrete init choice, with answers drawn by hypothesis; every file validated."""
    directory = tmp_path_factory.mktemp("init")
    return [
        (choice, *_write_examples(directory, choice, index))
        for index, choice in enumerate(INIT_CHOICES)
    ]


@pytest.fixture(scope="module")
def init_synthesized(
    init_configs: list[tuple[tuple, dict, Path]],  # type: ignore[type-arg]
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, list[str]]:
    """Every init config in one app, synthesized once; then each service's templates checked
    at LOW with its own deployline.yaml (as its `deployline synth` would): the findings, as
    "RULE resource: message", by service."""
    from config_cases import synthesize_together
    from deployline.checks.api import check_paths

    outdir = tmp_path_factory.mktemp("init-synth") / "cdk.out"
    configs = {
        path: load_config(path) for choice, _, path in init_configs if synthesized_choice(choice)
    }
    assert len(configs) == len(INIT_CHOICES) // 2
    synthesize_together(list(configs.values()), outdir)
    findings: dict[str, list[str]] = {}
    for path, config in configs.items():
        templates = sorted(outdir.glob(f"{config.service}-*.template.json"))
        assert len(templates) == 1 + len(config.environments), templates
        checked = check_paths(templates, severity_threshold="LOW", config_path=path)
        assert not checked.errors, checked.errors
        findings[config.service] = [
            f"{f.rule_id} {f.resource}: {f.message}" for f in checked.at_or_above()
        ]
    return findings


def test_every_init_choice_writes_a_config_that_validates(
    init_configs: list[tuple[tuple, dict, Path]],  # type: ignore[type-arg]
) -> None:
    assert sorted({choice for choice, _, _ in init_configs}) == sorted(INIT_CHOICES)


def _findings_by_service(
    init_configs: list[tuple[tuple, dict, Path]],  # type: ignore[type-arg]
    init_synthesized: dict[str, list[str]],
    *,
    with_email: bool,
) -> dict[str, list[str]]:
    """The check's findings of the services whose init choice had (or had not) an e-mail."""
    return {
        answers["service"]: init_synthesized[answers["service"]]
        for choice, answers, _ in init_configs
        if synthesized_choice(choice)
        and choice[2] is with_email
        and init_synthesized[answers["service"]]
    }


def test_every_init_choice_with_an_email_synthesizes_and_passes_check(
    init_configs: list[tuple[tuple, dict, Path]],  # type: ignore[type-arg]
    init_synthesized: dict[str, list[str]],
) -> None:
    assert _findings_by_service(init_configs, init_synthesized, with_email=True) == {}


def test_every_init_choice_without_an_email_synthesizes_and_passes_check(
    init_configs: list[tuple[tuple, dict, Path]],  # type: ignore[type-arg]
    init_synthesized: dict[str, list[str]],
) -> None:
    assert _findings_by_service(init_configs, init_synthesized, with_email=False) == {}
