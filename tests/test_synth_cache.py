"""`deployline synth` answers from the last synth of the same inputs, and only then.

One real synth of the example (a module fixture, through the CLI in a subprocess, as a user runs
it); every test about the key replaces the build (`synth._synthesize_into`) by one that writes a
one-stack assembly in a millisecond, so the record, the lookup and the check are the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from deployline import synth as synth_module
from deployline import synth_cache
from deployline.checks.model import CheckResult, Finding, ParseError, Severity
from deployline.cli import run
from deployline.synth import SynthError, synthesize

ROOT = Path(__file__).resolve().parent.parent
UP_TO_DATE = "is up to date: same deployline.yaml, deployline and aws-cdk-lib as the synth of"


# ---- one real synth, through the CLI ------------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def _cli(*args: str, cwd: Path = ROOT) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "deployline.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run, Run]:
    """The example synthesized by `deployline synth`, then the same command again."""
    out = tmp_path_factory.mktemp("real") / "cdk.out"
    args = ("synth", "--config", "deployline.yaml", "--out", str(out))
    first = _cli(*args)
    assert first.code == 0, first.stderr
    return out, first, _cli(*args)


def test_a_second_synth_of_the_example_is_answered_from_the_first_and_says_so(
    real: tuple[Path, Run, Run],
) -> None:
    out, first, second = real
    assert UP_TO_DATE not in first.stderr
    (said,) = [line for line in second.stderr.splitlines() if UP_TO_DATE in line]
    assert said.startswith(f"{out} is up to date")
    assert said.endswith("; --force synthesizes anyway")
    record = synth_cache.read(out)
    assert record is not None
    assert record.synthesized_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") in said
    # the same report, check line included, and the same exit code
    assert second.code == first.code == 0
    assert second.stdout == first.stdout
    assert [line for line in second.stderr.splitlines() if UP_TO_DATE not in line] == (
        first.stderr.splitlines()
    )
    assert "deployline check: 3 files checked" in second.stderr


def test_an_up_to_date_synth_imports_neither_cdk_nor_jsii_nor_the_config_model(
    real: tuple[Path, Run, Run],
) -> None:
    out, _first, _second = real
    probe = (
        "import sys\n"
        "from deployline.cli import run\n"
        f"code = run(['synth', '--config', 'deployline.yaml', '--out', {str(out)!r}])\n"
        "heavy = ['aws_cdk', 'jsii', 'pydantic', 'deployline.config', 'deployline.app']\n"
        "print('PROBE', code, [m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert UP_TO_DATE in done.stderr
    assert "PROBE 0 []" in done.stdout


def test_the_record_lists_every_file_the_real_synth_wrote(real: tuple[Path, Run, Run]) -> None:
    out, _first, _second = real
    record = synth_cache.read(out)
    assert record is not None
    written = sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.name != synth_cache.RECORD_FILE
    )
    assert sorted(record.outputs) == written
    assert "manifest.json" in written
    assert any(name.endswith(".template.json") for name in written)
    assert any(name.startswith("asset.") for name in written)  # the functions' code too


# ---- the key, with the build replaced -----------------------------------------------------

# A template the checker finds a HIGH finding in (a deprecated Lambda runtime): exit 1.
TEMPLATE = {
    "Resources": {
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "nodejs14.x",
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"ZipFile": "exports.handler = async () => 1"},
            },
        },
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
    }
}


class FakeBuild:
    """Stands in for `_synthesize_into`: writes a one-stack assembly, counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: Exception | None = None
        self.meanwhile: Callable[[], None] = lambda: None

    def __call__(
        self,
        target: Path,
        config_path: str | Path,
        progress: Callable[[str], None],
        *,
        cfn_validation: bool,
    ) -> tuple[str, ...]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        self.meanwhile()
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        (target / "demo.template.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
        manifest = {
            "version": "55.0.0",
            "artifacts": {
                "demo": {
                    "type": "aws:cloudformation:stack",
                    "environment": "aws://unknown-account/unknown-region",
                    "properties": {"templateFile": "demo.template.json"},
                    "displayName": "demo-stack",
                }
            },
        }
        (target / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        return ("a warning the config gave",)


@pytest.fixture
def build(monkeypatch: pytest.MonkeyPatch) -> FakeBuild:
    fake = FakeBuild()
    monkeypatch.setattr(synth_module, "_synthesize_into", fake)
    return fake


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a deployline.yaml (the example's); synth writes ./cdk.out."""
    (tmp_path / "deployline.yaml").write_bytes((ROOT / "deployline.yaml").read_bytes())
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):  # the environment the key reads starts as the test sets it
        if name.startswith(synth_cache.ENV_PREFIXES) and not name.startswith("JSII_SILENCE"):
            monkeypatch.delenv(name)
    return tmp_path


def _synth(**options: Any) -> synth_module.SynthResult:
    return synthesize("deployline.yaml", "cdk.out", **options)


def test_the_same_inputs_are_answered_from_the_record(project: Path, build: FakeBuild) -> None:
    first = _synth()
    second = _synth()
    assert build.calls == 1
    assert first.cached is None
    assert isinstance(second.cached, datetime)
    assert second.stacks == first.stacks
    assert second.warnings == first.warnings == ("a warning the config gave",)
    assert second.check == first.check
    assert first.check is not None and first.check.exit_code() == 1  # findings, kept as found


def test_force_synthesizes_anyway(project: Path, build: FakeBuild) -> None:
    _synth()
    assert _synth(force=True).cached is None
    assert build.calls == 2
    assert _synth().cached is not None  # and leaves a record of its own


def test_a_changed_config_synthesizes_again(project: Path, build: FakeBuild) -> None:
    _synth()
    config = project / "deployline.yaml"
    config.write_bytes(config.read_bytes() + b"\n# a comment changes the bytes\n")
    assert _synth().cached is None
    assert build.calls == 2


def test_changed_deployline_code_synthesizes_again(
    project: Path, build: FakeBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    _synth()
    digest = synth_cache.source_digest()
    monkeypatch.setattr(synth_cache, "source_digest", lambda root=None: "0" * 64 + digest)
    assert _synth().cached is None
    assert build.calls == 2


@pytest.mark.parametrize("package", ["aws-cdk-lib", "constructs", "cdk-nag", "jsii", "pydantic"])
def test_another_package_version_synthesizes_again(
    project: Path, build: FakeBuild, monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    _synth()
    installed = synth_cache.package_versions

    def upgraded(names: tuple[str, ...]) -> dict[str, str | None]:
        versions = installed(names)
        if package in versions:
            versions[package] = "99.0.0"
        return versions

    monkeypatch.setattr(synth_cache, "package_versions", upgraded)
    assert _synth().cached is None
    assert build.calls == 2


def test_another_python_synthesizes_again(
    project: Path, build: FakeBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    _synth()
    monkeypatch.setattr(sys, "version_info", (3, 99, 0, "final", 0))
    assert _synth().cached is None


def test_cdk_context_from_the_environment_synthesizes_again(
    project: Path, build: FakeBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aws-cdk-lib's App reads context from CDK_CONTEXT_JSON (and the default account and
    region from CDK_DEFAULT_*): a synth with another value is another synth."""
    _synth()
    monkeypatch.setenv("CDK_CONTEXT_JSON", json.dumps({"@aws-cdk/core:newStyleStackSynthesis": 1}))
    assert _synth().cached is None
    assert _synth().cached is not None
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    assert _synth().cached is None
    assert build.calls == 3
    record = (project / "cdk.out" / synth_cache.RECORD_FILE).read_text(encoding="utf-8")
    assert "eu-west-1" not in record  # values are kept as digests


def test_cfn_validation_is_part_of_the_key(project: Path, build: FakeBuild) -> None:
    _synth()
    assert _synth(cfn_validation=True).cached is None
    assert _synth(cfn_validation=True).cached is not None
    assert build.calls == 2


def test_check_on_or_off_shares_one_synth(project: Path, build: FakeBuild) -> None:
    """The check is no input of the templates: `--no-check`, then a checked synth, build once,
    and the checked one checks (and keeps the result for the next)."""
    unchecked = _synth(check=False)
    assert unchecked.check is None
    checked = _synth()
    assert checked.cached is not None and checked.check is not None
    assert checked.check.exit_code() == 1
    assert build.calls == 1
    record = synth_cache.read(project / "cdk.out")
    assert record is not None and record.check is not None


@pytest.mark.parametrize("tamper", ["modify", "delete", "add", "modify_asset"])
def test_an_output_changed_since_synthesizes_again(
    project: Path, build: FakeBuild, tamper: str
) -> None:
    _synth()
    out = project / "cdk.out"
    template = out / "demo.template.json"
    if tamper == "modify":
        template.write_text(template.read_text().replace("nodejs14.x", "nodejs22.x"))
    elif tamper == "delete":
        template.unlink()
    elif tamper == "add":
        (out / "other.template.json").write_text(json.dumps(TEMPLATE))
    else:
        (out / "asset.1234").mkdir()
        (out / "asset.1234" / "index.py").write_text("print('not what was synthesized')")
    assert _synth().cached is None
    assert build.calls == 2
    assert _synth().cached is not None


def test_a_record_edited_by_hand_is_no_answer(project: Path, build: FakeBuild) -> None:
    _synth()
    record_file = project / "cdk.out" / synth_cache.RECORD_FILE
    data = json.loads(record_file.read_text())
    data["outputs"]["demo.template.json"] = "0" * 64
    record_file.write_text(json.dumps(data))
    assert _synth().cached is None
    record_file.write_text("{not json")
    assert _synth().cached is None
    assert build.calls == 3


def test_a_failed_synth_leaves_no_record(project: Path, build: FakeBuild) -> None:
    build.fail = SynthError("desired_count must be at least 1, got 0")
    with pytest.raises(SynthError):
        _synth()
    assert not (project / "cdk.out" / synth_cache.RECORD_FILE).exists()


def test_a_failed_synth_keeps_the_previous_record_of_the_previous_inputs(
    project: Path, build: FakeBuild
) -> None:
    """The output the failed synth did not replace is still that of its own inputs: answered
    for them, never for the inputs that failed."""
    _synth()
    config = project / "deployline.yaml"
    before = config.read_bytes()
    config.write_bytes(before + b"\n# another config\n")
    build.fail = SynthError("desired_count must be at least 1, got 0")
    with pytest.raises(SynthError):
        _synth()
    with pytest.raises(SynthError):
        _synth()  # still no answer for these inputs
    config.write_bytes(before)
    assert _synth().cached is not None
    assert build.calls == 3


def test_a_check_that_fails_to_run_leaves_no_record(
    project: Path, build: FakeBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> CheckResult:
        raise RuntimeError("the checker broke")

    monkeypatch.setattr(synth_module, "check_synthesized", broken)
    with pytest.raises(RuntimeError):
        _synth()
    assert not (project / "cdk.out" / synth_cache.RECORD_FILE).exists()


def test_a_config_edited_during_the_synth_leaves_no_record(project: Path, build: FakeBuild) -> None:
    config = project / "deployline.yaml"
    build.meanwhile = lambda: config.write_bytes(config.read_bytes() + b"\n# edited\n")
    _synth()
    assert not (project / "cdk.out" / synth_cache.RECORD_FILE).exists()


def test_the_check_is_run_again_from_another_working_directory(
    project: Path, build: FakeBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File names in findings are relative to the working directory: a kept result is used
    only where it was made."""
    config, out = project / "deployline.yaml", project / "cdk.out"
    here = synthesize(config, out)
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    runs: list[Path] = []
    real_check = synth_module.check_synthesized

    def counting(outdir: Path, config_path: str | Path) -> CheckResult:
        runs.append(outdir)
        return real_check(outdir, config_path)

    monkeypatch.setattr(synth_module, "check_synthesized", counting)
    there = synthesize(config, out)
    assert there.cached is not None and len(runs) == 1
    assert here.check is not None and there.check is not None
    assert here.check.files != there.check.files  # named from where each ran
    assert synthesize(config, out).cached is not None
    assert len(runs) == 1  # kept for this directory now
    assert build.calls == 1


# ---- the command --------------------------------------------------------------------------


def test_the_cached_command_exits_and_reports_as_the_first(
    project: Path, build: FakeBuild, capsys: pytest.CaptureFixture[str]
) -> None:
    first_code = run(["synth"])
    first = capsys.readouterr()
    second_code = run(["synth"])  # plain options: answered before typer parses them
    second = capsys.readouterr()
    third_code = run(["synth", "--config=deployline.yaml"])  # through typer
    third = capsys.readouterr()
    assert build.calls == 1
    assert first_code == second_code == third_code == 1  # the check's finding fails all three
    assert second.out == first.out == third.out
    assert "DL601" in first.err
    for later in (second, third):
        lines = later.err.splitlines()
        assert UP_TO_DATE in lines[0] and lines[0].startswith("cdk.out is up to date")
        assert lines[1:] == first.err.splitlines()


def test_plain_options_are_answered_without_typer_and_others_go_through_it(
    project: Path,
    build: FakeBuild,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from deployline import cli

    assert run(["synth", "--no-check"]) == 0
    capsys.readouterr()
    real_invoke = cli._invoke
    invoked: list[list[str]] = []

    def invoke(args: list[str], command: str | None) -> int:
        invoked.append(args)
        return real_invoke(args, command)

    monkeypatch.setattr(cli, "_invoke", invoke)
    plain = ["synth", "-c", "deployline.yaml", "-o", "cdk.out", "--no-check", "--out", "cdk.out"]
    assert run(plain) == 0
    assert invoked == [] and UP_TO_DATE in capsys.readouterr().err
    assert run(["synth", "--no-check", "--bogus"]) == 2  # typer's usage error, up to date or not
    assert "No such option: --bogus" in capsys.readouterr().err
    assert run(["synth", "--config"]) == 2
    assert len(invoked) == 2 and build.calls == 1


def test_the_command_with_force_synthesizes(project: Path, build: FakeBuild) -> None:
    assert run(["synth", "--no-check"]) == 0
    assert run(["synth", "--no-check", "--force"]) == 0
    assert build.calls == 2


def test_a_config_error_is_reported_when_nothing_is_cached(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "deployline.yaml").write_text("service: Not_Valid\n")
    assert run(["synth"]) == 2
    assert "problem" in capsys.readouterr().err


# ---- the pieces ---------------------------------------------------------------------------


def test_the_source_digest_follows_every_file_but_caches(tmp_path: Path) -> None:
    package = tmp_path / "deployline"
    (package / "runtime").mkdir(parents=True)
    (package / "app.py").write_text("X = 1\n")
    (package / "feature_flags.json").write_text("{}")
    (package / "runtime" / "handler.py").write_text("def handler(e, c):\n    return 1\n")
    before = synth_cache.source_digest(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    assert synth_cache.source_digest(package) == before
    for name, text in [
        ("app.py", "X = 2\n"),
        ("feature_flags.json", '{"flag": true}'),
        ("runtime/handler.py", "def handler(e, c):\n    return 2\n"),
    ]:
        (package / name).write_text(text)
        assert synth_cache.source_digest(package) != before
        before = synth_cache.source_digest(package)
    (package / "app.py").rename(package / "main.py")  # a rename is a change too
    assert synth_cache.source_digest(package) != before


def test_the_source_digest_is_of_the_running_package() -> None:
    import deployline

    assert synth_cache.package_dir() == Path(deployline.__file__).resolve().parent
    assert (synth_cache.package_dir() / "synth_cache.py").is_file()


def test_package_versions_agree_with_importlib_metadata() -> None:
    from importlib import metadata

    names = (*synth_cache.SYNTH_PACKAGES, *synth_cache.CHECK_PACKAGES)
    assert synth_cache.package_versions(names) == {name: metadata.version(name) for name in names}
    assert synth_cache.package_versions(("no-such-package-here",)) == {"no-such-package-here": None}


def test_a_check_result_survives_the_record() -> None:
    def finding(rule: str, severity: Severity, **extra: Any) -> Finding:
        return Finding(rule, severity, "a.json", "Res", "Properties.X", "msg", **extra)

    result = CheckResult(
        findings=[finding("DL601", Severity.HIGH, line=3, title="t", remediation="r")],
        unknown=[finding("DL120", Severity.MEDIUM, unknown=True)],
        errors=[ParseError("b.json", "not JSON", 2)],
        files=["a.json", "b.json"],
        suppressed=1,
        baselined=2,
        suppressed_findings=[finding("DL701", Severity.LOW, resource_type="AWS::S3::Bucket")],
        rules=["DL120", "DL601"],
        threshold=Severity.MEDIUM,
        baselined_findings=[finding("DL130", Severity.CRITICAL)],
        notes=["a stale baseline entry"],
        templated=["c.yaml.j2"],
    )
    data = json.loads(json.dumps(synth_cache.encode_check(result)))
    assert synth_cache.decode_check(data) == result


def test_the_message_names_the_directory_the_config_and_the_time() -> None:
    when = datetime.fromisoformat("2026-11-23T10:00:05+00:00")
    text = synth_cache.up_to_date_message(Path("cdk.out"), Path("conf/deployline.yaml"), when)
    local = when.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert text == (
        f"cdk.out is up to date: same deployline.yaml, deployline and aws-cdk-lib as the synth "
        f"of {local}; --force synthesizes anyway"
    )
