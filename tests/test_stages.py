"""deployline.stages: the buildspecs, and what their commands do when they run.

The build and scan commands are executed for real (in bash, through run-local's executor) with
stub `aws`, `docker`, scanner and `python3 -m <scanner>` executables on PATH, so the tests check
the files the pipeline would get, not just the text of the commands.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from deployline import stages
from deployline.config import DeploylineConfig, load_config, parse_config_text
from deployline.local_runner import execute

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CONFIG = ROOT / "examples" / "payment-processor" / "deployline.yaml"
REPOSITORY_URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payment-processor-app-shared"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def config() -> DeploylineConfig:
    return load_config(SAMPLE_CONFIG)


def _with(config: DeploylineConfig, **changes: Any) -> DeploylineConfig:
    """A copy of the config with top-level sections replaced (validated again)."""
    data = config.model_dump(mode="json", exclude_none=True)
    for key, value in changes.items():
        section, _, field_name = key.partition("__")
        if field_name:
            data[section][field_name] = value
        else:
            data[section] = value
    return DeploylineConfig.model_validate(data)


# --------------------------------------------------------------------------------------------
# Stubs
# --------------------------------------------------------------------------------------------


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


_AWS = r"""#!/usr/bin/env bash
echo "aws $*" >> "$STUB_LOG"
case "$1 $2" in
  "ecr get-login-password") echo stub-password ;;
  "ecr describe-images")
    if [[ " $* " == *" --image-ids "* ]]; then
      case "${STUB_IMAGE:-missing}" in
        exists) echo '{"imageDetails": [{"imageTags": ["x"]}]}' ;;
        missing) echo "An error occurred (ImageNotFoundException): no such image" >&2; exit 254 ;;
        *) echo "An error occurred (AccessDeniedException): not authorized" >&2; exit 254 ;;
      esac
    else
      echo "${STUB_CACHE_TAG:-None}"
    fi ;;
  *) echo "unexpected aws call: $*" >&2; exit 2 ;;
esac
"""

_DOCKER = r"""#!/usr/bin/env bash
echo "docker $*" >> "$STUB_LOG"
if [ "$1" = login ]; then echo "login password: $(cat)" >> "$STUB_LOG"; fi
exit 0
"""

# A scanner stub: writes a minimal report to its --output/-o file, then exits 1 (findings).
_REPORTS = {
    "bandit": {"errors": [], "generated_at": "2026-05-01T00:00:00Z", "metrics": {}, "results": []},
    "pip_audit": {
        "dependencies": [{"name": "flask", "version": "3.1.3", "vulns": []}],
        "fixes": [],
    },
    "trivy": {"SchemaVersion": 2, "ArtifactName": "ARTIFACT", "Results": [{"Target": "T"}]},
}

_SCANNER = r"""#!/usr/bin/env bash
# usage: scanner-stub NAME ARGS...
name="$1"; shift
echo "$name $*" >> "$STUB_LOG"
out=""; last=""
while [ $# -gt 0 ]; do
  case "$1" in
    --output|-o) out="$2"; shift 2 ;;
    *) last="$1"; shift ;;
  esac
done
[ -n "$out" ] || { echo "$name stub: no --output" >&2; exit 2; }
"$REAL_PYTHON" "$STUB_DIR/write_report.py" "$name" "$last" "$out"
exit 1
"""

_WRITE_REPORT = """\
import json, os, sys
name, target, out = sys.argv[1:4]
report = json.loads(os.environ["STUB_REPORT_JSON"])[name]
if "ArtifactName" in report:
    report.update(ArtifactName=target, Results=[{"Target": target}])
with open(out, "w") as f:
    json.dump(report, f)
"""

_PYTHON3 = r"""#!/usr/bin/env bash
# python3 stub: `-m bandit|pip_audit` go to the scanner stub, `-m pip install` is recorded.
if [ "$1" = -m ]; then
  case "$2" in
    bandit|pip_audit) m="$2"; shift 2; exec scanner-stub "$m" "$@" ;;
    pip) echo "pip $*" >> "$STUB_LOG"; exit 0 ;;
  esac
fi
exec "$REAL_PYTHON" "$@"
"""


@pytest.fixture
def stub_env(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "stub-bin"
    bindir.mkdir()
    _executable(bindir / "aws", _AWS)
    _executable(bindir / "docker", _DOCKER)
    _executable(bindir / "scanner-stub", _SCANNER)
    _executable(bindir / "python3", _PYTHON3)
    (bindir / "write_report.py").write_text(_WRITE_REPORT, encoding="utf-8")
    _executable(bindir / "trivy", '#!/usr/bin/env bash\nexec scanner-stub trivy "$@"\n')
    return {
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "REAL_PYTHON": sys.executable,
        "STUB_DIR": str(bindir),
        "STUB_LOG": str(tmp_path / "calls.log"),
        "STUB_REPORT_JSON": json.dumps(_REPORTS),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": SHA,
        "REPOSITORY_URI": REPOSITORY_URI,
        # `python3 -m deployline.assets` imports this deployline, wherever it is installed.
        "PYTHONPATH": str(Path(stages.__file__).resolve().parents[1]),
    }


def _run_all(stage: stages.StageSpec, cwd: Path, env: dict[str, str]) -> list[Any]:
    """Every step, pipeline-only ones included, as CodeBuild would run them; except Trivy's
    install, which downloads (the stub `trivy` is on PATH instead; its checksum check is tested
    on its own)."""
    cwd.mkdir(parents=True, exist_ok=True)
    steps = [s for s in stage.steps if not s.name.startswith("Install Trivy")]
    return execute(steps, cwd=cwd, env=env, logdir=cwd.parent / "logs")


def _calls(env: dict[str, str]) -> list[str]:
    path = Path(env["STUB_LOG"])
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


# --------------------------------------------------------------------------------------------
# env_var and the stage model
# --------------------------------------------------------------------------------------------


def test_stage_rejects_steps_out_of_phase_order() -> None:
    steps = (
        stages.Step(name="b", command="true", phase="build"),
        stages.Step(name="i", command="true", phase="install"),
    )
    with pytest.raises(ValueError, match="phase order"):
        stages.StageSpec(name="test", steps=steps, output_dir=".", outputs=(), timeout_minutes=5)


def test_pipeline_only_step_must_say_why() -> None:
    with pytest.raises(ValueError, match="local_note"):
        stages.Step(name="push", command="docker push x", phase="build", pipeline_only=True)


def test_scan_report_names_are_the_security_gates() -> None:
    from deployline.runtime import security_gate

    assert dict(stages.SCANNER_REPORTS) == security_gate.REPORT_FILES
    assert stages.OPTIONAL_REPORTS == security_gate.OPTIONAL_FILES


def test_every_buildspec_runs_in_bash_and_aborts_on_failure(config: DeploylineConfig) -> None:
    specs = [
        stages.test_buildspec(config, junit_report_group="j", coverage_report_group="c"),
        stages.scan_buildspec(config),
        stages.build_buildspec(config),
        stages.synth_buildspec(config),
    ]
    for spec in specs:
        assert spec["version"] == "0.2"
        assert spec["env"]["shell"] == "bash"
        assert spec["phases"], spec
        assert all(p["on-failure"] == "ABORT" for p in spec["phases"].values())
        assert "post_build" not in spec["phases"]  # post_build runs even after a failed build


def test_no_buildspec_holds_a_literal_account_id_or_region(config: DeploylineConfig) -> None:
    hub = _with(config, build__dockerhub_secret="ci/dockerhub")
    text = json.dumps(
        [
            stages.test_buildspec(hub, junit_report_group="j", coverage_report_group="c"),
            stages.scan_buildspec(hub),
            stages.build_buildspec(hub),
            stages.synth_buildspec(hub),
        ]
    )
    assert not re.search(r"(?<![0-9a-f])\d{12}(?![0-9a-f])", text)
    assert not re.search(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov)?-[a-z]+-\d\b", text)
    commands = "\n".join(stages.build_stage(hub).commands())
    assert '--region "$AWS_DEFAULT_REGION"' in commands
    assert '"${REPOSITORY_URI%%/*}"' in commands  # the registry host comes from the URI


# --------------------------------------------------------------------------------------------
# test
# --------------------------------------------------------------------------------------------


def test_test_buildspec_runs_the_configured_commands_and_sends_both_reports(
    config: DeploylineConfig,
) -> None:
    spec = stages.test_buildspec(
        config, junit_report_group="arn:junit", coverage_report_group="arn:coverage"
    )
    assert spec["phases"]["build"]["commands"] == list(config.test.commands)
    assert spec["reports"] == {
        "arn:junit": {
            "files": ["junit.xml"],
            "base-directory": "examples/payment-processor/reports",
            "file-format": "JUNITXML",
        },
        "arn:coverage": {
            "files": ["coverage.xml"],
            "base-directory": "examples/payment-processor/reports",
            "file-format": "COBERTURAXML",
        },
    }
    assert "artifacts" not in spec


def test_test_buildspec_leaves_out_a_report_the_config_turns_off(
    config: DeploylineConfig,
) -> None:
    no_coverage = _with(config, test__reports={"junit": "out/junit.xml", "coverage": None})
    spec = stages.test_buildspec(no_coverage, junit_report_group="j", coverage_report_group="c")
    assert spec["reports"] == {
        "j": {"files": ["junit.xml"], "base-directory": "out", "file-format": "JUNITXML"}
    }


def test_report_paths_must_stay_inside_the_repository(config: DeploylineConfig) -> None:
    escaping = _with(config, test__reports={"junit": "../elsewhere/junit.xml", "coverage": None})
    with pytest.raises(ValueError, match="inside the repository"):
        stages.test_stage(escaping)


# --------------------------------------------------------------------------------------------
# scan
# --------------------------------------------------------------------------------------------


def test_scan_buildspec_installs_pinned_scanners_and_verifies_trivy(
    config: DeploylineConfig,
) -> None:
    spec = stages.scan_buildspec(config)
    install = "\n".join(spec["phases"]["install"]["commands"])
    assert f"bandit=={stages.BANDIT_VERSION}" in install
    assert f"pip-audit=={stages.PIP_AUDIT_VERSION}" in install
    assert f"/v{stages.TRIVY_VERSION}/trivy_{stages.TRIVY_VERSION}_" in install
    for digest in stages.TRIVY_SHA256.values():
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        assert digest in install
    assert "sha256sum --check --strict" in install
    assert spec["artifacts"] == {
        "files": ["bandit.json", "pip-audit.json", "trivy-fs.json", "trivy-image.json"],
        "base-directory": "security-reports",
    }


def test_trivy_install_refuses_a_download_whose_checksum_differs(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    bindir = Path(stub_env["PATH"].split(os.pathsep)[0])
    # curl stub: "downloads" a tampered archive to --output
    _executable(
        bindir / "curl",
        '#!/usr/bin/env bash\necho "curl $*" >> "$STUB_LOG"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --output ] && out="$2"; shift; done\n'
        'printf tampered > "$out"\n',
    )
    _executable(bindir / "install", '#!/usr/bin/env bash\necho "install $*" >> "$STUB_LOG"\n')
    step = next(s for s in stages.scan_stage(config).steps if s.name.startswith("Install Trivy"))
    (outcome,) = execute([step], cwd=tmp_path, env=stub_env, logdir=tmp_path / "logs")
    assert outcome.status == "failed"
    assert "FAILED" in outcome.output  # sha256sum's verdict on the tampered file
    calls = _calls(stub_env)
    assert any("releases/download/v0.70.0/trivy_0.70.0_Linux-" in c for c in calls)
    assert not any(c.startswith("install ") for c in calls)  # never installed


def test_scan_runs_only_the_configured_scanners(config: DeploylineConfig) -> None:
    only_bandit = _with(config, security__scanners=["bandit"])
    text = json.dumps(stages.scan_buildspec(only_bandit))
    assert "bandit" in text and "pip_audit" not in text and "trivy" not in text
    assert stages.scan_stage(only_bandit).outputs == ("bandit.json",)


def test_scanner_findings_never_fail_the_build_and_every_report_is_written(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "examples" / "payment-processor").mkdir(parents=True)
    (src / "examples" / "payment-processor" / "requirements.txt").write_text("flask==3.1.3\n")
    (src / "examples" / "payment-processor" / "requirements-dev.txt").write_text("pytest==9\n")
    outcomes = _run_all(stages.scan_stage(config), src, stub_env)
    assert [o.status for o in outcomes] == ["passed"] * len(outcomes), [
        (o.name, o.output) for o in outcomes if o.status != "passed"
    ]
    reports = src / "security-reports"
    assert sorted(p.name for p in reports.iterdir()) == [
        "bandit.json",
        "pip-audit.json",
        "trivy-fs.json",
        "trivy-image.json",
    ]
    calls = _calls(stub_env)
    audit = next(c for c in calls if c.startswith("pip_audit"))
    # both requirements files, found under security.paths, in a stable order
    assert (
        "--requirement examples/payment-processor/requirements-dev.txt "
        "--requirement examples/payment-processor/requirements.txt"
    ) in audit
    image_scan = next(c for c in calls if c.startswith("trivy image"))
    assert "--image-src remote" in image_scan
    assert image_scan.endswith(f"{REPOSITORY_URI}:{SHA}")
    assert any("exited 1; the security gate decides" in o.output for o in outcomes)


def test_image_scan_is_skipped_without_a_repository_uri(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in stub_env.items() if k != "REPOSITORY_URI"}
    only_trivy = _with(config, security__scanners=["trivy"])
    outcomes = _run_all(stages.scan_stage(only_trivy), tmp_path / "src", env)
    assert all(o.status == "passed" for o in outcomes)
    assert not (tmp_path / "src" / "security-reports" / "trivy-image.json").exists()
    assert "image scan skipped" in outcomes[-1].output
    assert not any(c.startswith("trivy image") for c in _calls(env))


def test_trivy_over_several_paths_merges_the_results_into_one_report(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    two_paths = _with(config, security__scanners=["trivy"], security__paths=["svc-a", "svc-b"])
    src = tmp_path / "src"
    for name in ("svc-a", "svc-b"):
        (src / name).mkdir(parents=True)
    outcomes = _run_all(stages.scan_stage(two_paths), src, stub_env)
    assert all(o.status == "passed" for o in outcomes), [o.output for o in outcomes]
    merged = json.loads((src / "security-reports" / "trivy-fs.json").read_text())
    assert [r["Target"] for r in merged["Results"]] == ["svc-a", "svc-b"]
    assert merged["ArtifactName"] == "svc-a,svc-b"
    assert sorted(p.name for p in (src / "security-reports").iterdir()) == [
        "trivy-fs.json",
        "trivy-image.json",
    ]


def test_pip_audit_without_requirements_files_writes_no_report_and_says_why(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    only_audit = _with(config, security__scanners=["pip-audit"])
    src = tmp_path / "src"
    (src / "examples" / "payment-processor").mkdir(parents=True)
    outcomes = _run_all(stages.scan_stage(only_audit), src, stub_env)
    assert all(o.status == "passed" for o in outcomes)
    assert not (src / "security-reports" / "pip-audit.json").exists()
    assert "nothing to audit" in outcomes[-1].output


# --------------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------------


def test_build_buildspec_writes_the_image_record_and_exports_the_tag(
    config: DeploylineConfig,
) -> None:
    spec = stages.build_buildspec(config)
    assert spec["artifacts"] == {
        "files": ["imagedefinitions.json", "imageDetail.json"],
        "base-directory": "image-artifacts",
    }
    assert spec["env"]["exported-variables"] == ["IMAGE_TAG", "IMAGE_URI"]
    assert "secrets-manager" not in spec["env"]
    assert stages.build_stage(config).inputs == ("REPOSITORY_URI",)


def test_build_pushes_the_commit_and_records_the_image(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    stub_env["STUB_CACHE_TAG"] = "previous-commit"
    src = tmp_path / "src"
    outcomes = _run_all(stages.build_stage(config), src, stub_env)
    assert all(o.status == "passed" for o in outcomes), [(o.name, o.output) for o in outcomes]

    image = f"{REPOSITORY_URI}:{SHA}"
    out = src / "image-artifacts"
    assert json.loads((out / "imagedefinitions.json").read_text()) == [
        {"name": "app", "imageUri": image}
    ]
    assert json.loads((out / "imageDetail.json").read_text()) == {"ImageURI": image}
    assert sorted(p.name for p in out.iterdir()) == ["imageDetail.json", "imagedefinitions.json"]

    calls = _calls(stub_env)
    assert "aws ecr get-login-password --region eu-west-1" in calls
    assert (
        "docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        in calls
    )
    assert "login password: stub-password" in calls
    build = next(c for c in calls if c.startswith("docker build"))
    assert "--pull --platform linux/amd64 --file examples/payment-processor/Dockerfile" in build
    assert f"--cache-from {REPOSITORY_URI}:previous-commit" in build
    assert "--build-arg BUILDKIT_INLINE_CACHE=1" in build
    assert build.endswith(f"--tag {image} examples/payment-processor")
    assert f"docker push {image}" in calls
    # The image reaches the services through CloudFormation, not through ECS's API.
    assert not any(c.startswith("aws ecs") for c in calls)


def test_rerun_of_the_same_commit_skips_build_and_push_but_still_deploys(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    stub_env["STUB_IMAGE"] = "exists"
    outcomes = _run_all(stages.build_stage(config), tmp_path / "src", stub_env)
    assert all(o.status == "passed" for o in outcomes)
    calls = _calls(stub_env)
    assert not any(c.startswith(("docker build", "docker push")) for c in calls)
    assert (tmp_path / "src" / "image-artifacts" / "imagedefinitions.json").is_file()
    assert "immutable" in next(o.output for o in outcomes if "exists" in o.name)


def test_build_fails_when_ecr_answers_with_an_unexpected_error(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    stub_env["STUB_IMAGE"] = "denied"
    outcomes = _run_all(stages.build_stage(config), tmp_path / "src", stub_env)
    failed = next(o for o in outcomes if o.status == "failed")
    assert failed.name == "Check whether the image already exists"
    assert "AccessDeniedException" in failed.output
    assert not any(c.startswith("docker build") for c in _calls(stub_env))


def test_build_fails_clearly_without_a_repository_uri(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    del stub_env["REPOSITORY_URI"]
    outcomes = _run_all(stages.build_stage(config), tmp_path / "src", stub_env)
    assert outcomes[0].status == "failed"
    assert "REPOSITORY_URI is not set" in outcomes[0].output


def test_image_tag_is_sanitized_to_ecr_tag_rules(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    stub_env["CODEBUILD_RESOLVED_SOURCE_VERSION"] = "refs/heads/feature x"
    _run_all(stages.build_stage(config), tmp_path / "src", stub_env)
    detail = json.loads((tmp_path / "src" / "image-artifacts" / "imageDetail.json").read_text())
    assert detail == {"ImageURI": f"{REPOSITORY_URI}:refs-heads-feature-x"}


def test_dockerhub_login_reads_the_secret_through_secrets_manager(
    config: DeploylineConfig, stub_env: dict[str, str], tmp_path: Path
) -> None:
    hub = _with(config, build__dockerhub_secret="ci/dockerhub")
    spec = stages.build_buildspec(hub)
    assert spec["env"]["secrets-manager"] == {
        "DOCKERHUB_USERNAME": "ci/dockerhub:username",
        "DOCKERHUB_PASSWORD": "ci/dockerhub:password",
    }
    stub_env.update(DOCKERHUB_USERNAME="acme", DOCKERHUB_PASSWORD="hub-secret")
    outcomes = _run_all(stages.build_stage(hub), tmp_path / "src", stub_env)
    assert all(o.status == "passed" for o in outcomes)
    calls = _calls(stub_env)
    assert "docker login --username acme --password-stdin" in calls
    assert "login password: hub-secret" in calls
    assert not any("hub-secret" in o.command for o in outcomes)  # never on a command line


def test_build_without_cache_neither_looks_up_nor_embeds_a_cache(
    config: DeploylineConfig,
) -> None:
    no_cache = _with(config, build__cache=False)
    text = json.dumps(stages.build_buildspec(no_cache))
    assert "--cache-from" not in text and "BUILDKIT_INLINE_CACHE" not in text
    assert "--platform linux/amd64" in text


def test_arm64_platform_reaches_docker_build(config: DeploylineConfig) -> None:
    arm = _with(config, build__platform="linux/arm64")
    assert "--platform linux/arm64" in json.dumps(stages.build_buildspec(arm))


def test_every_command_is_valid_bash(config: DeploylineConfig) -> None:
    import subprocess

    hub = _with(config, build__dockerhub_secret="ci/dockerhub", security__paths=["a", "b c"])
    for stage in stages.stages(hub).values():
        for step in stage.steps:
            result = subprocess.run(
                ["bash", "-n", "-c", step.command], capture_output=True, text=True, check=False
            )
            assert result.returncode == 0, (stage.name, step.name, result.stderr)


def test_a_minimal_config_gets_default_stages() -> None:
    minimal = parse_config_text(
        "service: svc\nproject: proj\nsource: {type: s3}\n"
        "environments: [{name: dev, plain_http: true}]\n"
    )
    build = stages.build_stage(minimal)
    assert build.outputs == ("imagedefinitions.json", "imageDetail.json")
    assert any(
        "--file Dockerfile " in s.command and s.command.endswith(" .; fi") for s in build.steps
    )
    assert stages.scan_stage(minimal).outputs == (
        "bandit.json",
        "pip-audit.json",
        "trivy-fs.json",
        "trivy-image.json",
    )


# --------------------------------------------------------------------------------------------
# synth
# --------------------------------------------------------------------------------------------

# A `deployline` stand-in: records its arguments and writes a cloud assembly with one asset
# manifest per stack, as `deployline synth` does.
_DEPLOYLINE = r"""#!/usr/bin/env bash
echo "deployline $*" >> "$STUB_LOG"
out="${@: -1}"
mkdir -p "$out"
for stack in svc-service-staging svc-service-production; do
  cat > "$out/$stack.assets.json" <<JSON
{"version": "48.0.0", "files": {"abc": {"source": {"path": "asset.abc", "packaging": "zip"},
 "destinations": {"current_account-current_region": {"bucketName": "b", "objectKey": "abc.zip",
 "assumeRoleArn": "arn:aws:iam::123456789012:role/cdk-hnb659fds-file-publishing-role"}}}}}
JSON
  echo '{"Resources": {}}' > "$out/$stack.template.json"
done
[ -z "${STUB_SYNTH_FAILS:-}" ] || { echo "DL405: production needs approval" >&2; exit 1; }
"""

_CDK_ASSETS = r"""#!/usr/bin/env bash
echo "cdk-assets $*" >> "$STUB_LOG"
"""

_NPM = r"""#!/usr/bin/env bash
echo "npm $*" >> "$STUB_LOG"
"""


@pytest.fixture
def synth_env(stub_env: dict[str, str]) -> dict[str, str]:
    bindir = Path(stub_env["STUB_DIR"])
    _executable(bindir / "deployline", _DEPLOYLINE)
    _executable(bindir / "cdk-assets", _CDK_ASSETS)
    _executable(bindir / "npm", _NPM)
    return {**stub_env, "CDK_ASSETS": str(bindir / "cdk-assets")}


def test_synth_buildspec_installs_the_pinned_deployline_and_cdk_assets(
    config: DeploylineConfig,
) -> None:
    spec = stages.synth_buildspec(config)
    install = spec["phases"]["install"]["commands"]
    assert install == [
        "python3 -m pip install --quiet --disable-pip-version-check "
        f"{config.pipeline.deployline_requirement}",
        "npm install --silent --no-save --no-fund --no-audit --prefix "
        f"{stages.CDK_ASSETS_PREFIX} cdk-assets@{stages.CDK_ASSETS_VERSION}",
    ]
    assert spec["artifacts"] == {"files": ["**/*"], "base-directory": "cdk.out"}
    assert "post_build" not in spec["phases"]


def test_a_requirement_with_shell_characters_is_quoted(config: DeploylineConfig) -> None:
    pinned = _with(
        config,
        pipeline={"deployline_requirement": "deployline[extra]>=0.1,<0.2"},
    )
    (install, _) = stages.synth_stage(pinned).commands("install")
    assert install.endswith("'deployline[extra]>=0.1,<0.2'")


def test_synth_synthesizes_the_config_then_publishes_each_asset_once(
    config: DeploylineConfig, synth_env: dict[str, str], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    outcomes = _run_all(stages.synth_stage(config), src, synth_env)
    assert all(o.status == "passed" for o in outcomes), [(o.name, o.output) for o in outcomes]

    calls = _calls(synth_env)
    assert "deployline synth --config deployline.yaml --out cdk.out" in calls
    publishes = [c for c in calls if c.startswith("cdk-assets")]
    # Two stacks share the asset in one destination: cdk-assets is asked once.
    assert publishes == [
        "cdk-assets --path cdk.out/svc-service-production.assets.json publish "
        "abc:current_account-current_region"
    ]
    assert calls.index("deployline synth --config deployline.yaml --out cdk.out") < calls.index(
        publishes[0]
    )


def test_a_synth_that_fails_publishes_nothing(
    config: DeploylineConfig, synth_env: dict[str, str], tmp_path: Path
) -> None:
    synth_env["STUB_SYNTH_FAILS"] = "1"
    outcomes = _run_all(stages.synth_stage(config), tmp_path / "src", synth_env)
    failed = next(o for o in outcomes if o.status == "failed")
    assert failed.name == "Synthesize and check the app"
    assert "DL405" in failed.output
    assert not any(c.startswith("cdk-assets") for c in _calls(synth_env))
