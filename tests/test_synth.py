"""`deployline synth` of the example: offline, environment-agnostic, tagged, atomic."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deployline import synth as synth_module
from deployline.synth import SynthError, synthesize

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
REGION = re.compile(
    r"\b(?:us|eu|ap|sa|ca|me|af|il|mx)-(?:gov-)?(?:north|south|east|west|central|northeast|"
    r"southeast|northwest|southwest)-[0-9]\b"
)
REQUIRED_TAGS = {"Environment", "Project", "ManagedBy", "Service"}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> synth_module.SynthResult:
    """The example, synthesized once for the module, with aws-cdk-lib's own CloudFormation
    validation on (off by default; it changes no template, and its verdict is tested below)."""
    out = tmp_path_factory.mktemp("synth") / "cdk.out"
    return synthesize(ROOT / "deployline.yaml", out, cfn_validation=True)


def _templates(result: synth_module.SynthResult) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s.name: json.loads(s.template.read_text()) for s in result.stacks}


def test_synth_writes_a_cloud_assembly_with_the_pipeline_stack(synthesized) -> None:  # type: ignore[no-untyped-def]
    names = [s.name for s in synthesized.stacks]
    assert "payment-processor-pipeline-shared" in names
    assert (synthesized.outdir / "manifest.json").is_file()
    for stack in synthesized.stacks:
        template = json.loads(stack.template.read_text())
        assert stack.resources == len(template["Resources"])
        assert stack.outputs == len(template.get("Outputs", {}))


def test_the_example_pipeline_deploys_to_every_configured_environment(synthesized) -> None:  # type: ignore[no-untyped-def]
    """build_app's pipeline deploys every environment of the config: it updates itself, then
    staging, then plans production for approval and deploys it."""
    pipeline = _templates(synthesized)["payment-processor-pipeline-shared"]
    (resource,) = (
        r for r in pipeline["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"
    )
    stages = [stage["Name"] for stage in resource["Properties"]["Stages"]]
    assert stages == [
        "Source",
        "Build",
        "Test",
        "UpdatePipeline",
        "Deploy-staging",
        "Approve-production",
        "Deploy-production",
    ]
    assert stages[-1] == "Deploy-production"
    assert synthesized.check is not None and synthesized.check.exit_code("LOW") == 0


def test_templates_hold_no_literal_account_or_region(synthesized) -> None:  # type: ignore[no-untyped-def]
    for name, template in _templates(synthesized).items():
        # Mappings and Conditions may name regions to choose behaviour per region (the ELB
        # log-delivery principal differs in regions older than August 2022); neither targets one.
        body = json.dumps(
            {k: v for k, v in template.items() if k not in ("Mappings", "Conditions")}
        )
        assert not ACCOUNT.findall(body), f"{name}: literal account ID"
        assert not REGION.findall(body), f"{name}: literal region"


def test_every_tagged_resource_carries_the_required_tags(synthesized) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    for name, template in _templates(synthesized).items():
        env = "shared" if name.endswith("-shared") else name.rsplit("-", 1)[-1]
        for logical_id, resource in template["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if not isinstance(tags, list):
                continue
            keys = {t["Key"]: t["Value"] for t in tags}
            assert set(keys) >= REQUIRED_TAGS, f"{name}/{logical_id}: {sorted(keys)}"
            assert keys["ManagedBy"] == "deployline"
            assert keys["Project"] == "payments"
            assert keys["Environment"] == env
            assert keys["CostCenter"] == "4200"
            checked += 1
    assert checked > 0


def test_artifact_store_is_kms_encrypted_versioned_and_private(synthesized) -> None:  # type: ignore[no-untyped-def]
    template = _templates(synthesized)["payment-processor-pipeline-shared"]
    buckets = [r for r in template["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    kms = [
        b
        for b in buckets
        if b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "aws:kms"
    ]
    assert kms, "the artifact bucket must use aws:kms"
    artifact = kms[0]["Properties"]
    assert artifact["VersioningConfiguration"] == {"Status": "Enabled"}
    assert artifact["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rules = artifact["LifecycleConfiguration"]["Rules"]
    assert any("ExpirationInDays" in r and "NoncurrentVersionExpiration" in r for r in rules)
    for bucket in buckets:
        assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"


def test_cdk_app_entry_point_synthesizes_for_the_cdk_cli(tmp_path: Path) -> None:
    """What `npx aws-cdk synth` runs (cdk.json "app"): CDK_OUTDIR set by the CLI."""
    app_command = json.loads((ROOT / "cdk.json").read_text())["app"]
    assert app_command.endswith("-m deployline.app")
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps({"config": str(ROOT / "deployline.yaml")}),
        # aws-cdk-lib's own CloudFormation validation (on in this app, as `cdk synth` keeps
        # it) costs ~5 s; test_the_example_passes_aws_cdk_libs_own_... runs it
        "CDK_VALIDATION": "false",
    }
    subprocess.run(
        [sys.executable, "-m", "deployline.app"],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=600,
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert any(a.get("displayName") == "payment-processor-pipeline-shared" for a in stacks)


def test_failed_synth_keeps_the_previous_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")

    def broken_build_app(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("desired_count must be at least 1, got 0")

    import deployline.app

    monkeypatch.setattr(deployline.app, "build_app", broken_build_app)
    with pytest.raises(SynthError, match="desired_count must be at least 1"):
        synthesize(ROOT / "deployline.yaml", out)
    assert (out / "manifest.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["cdk.out"], "no scratch directory left behind"


def test_the_function_asset_holds_exactly_the_runtime_package(synthesized) -> None:  # type: ignore[no-untyped-def]
    """The asset hash is deployline's own (runtime_digest); what the asset holds must still be
    every file of runtime/ and contract.py and nothing else, so the hash describes the code that
    ships."""
    from deployline.constructs.runtime_function import RUNTIME_DIR

    expected = sorted(
        [
            "contract.py",
            *(
                f"runtime/{p.relative_to(RUNTIME_DIR).as_posix()}"
                for p in RUNTIME_DIR.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
            ),
        ]
    )
    holding_runtime = [
        d for d in synthesized.outdir.glob("asset.*") if (d / "runtime" / "__init__.py").is_file()
    ]
    assert len(holding_runtime) == 1  # one asset for every function
    shipped = sorted(
        p.relative_to(holding_runtime[0]).as_posix()
        for p in holding_runtime[0].rglob("*")
        if p.is_file()
    )
    assert shipped == expected


def test_the_runtime_digest_follows_the_code(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from deployline.constructs import runtime_function

    package = tmp_path / "deployline"
    (package / "runtime").mkdir(parents=True)
    (package / "runtime" / "__init__.py").write_text("")
    (package / "runtime" / "handler.py").write_text("def handler(e, c):\n    return 1\n")
    monkeypatch.setattr(runtime_function, "PACKAGE_DIR", package)
    monkeypatch.setattr(runtime_function, "RUNTIME_DIR", package / "runtime")
    runtime_function.runtime_digest.cache_clear()
    try:
        before = runtime_function.runtime_digest()
        runtime_function.runtime_digest.cache_clear()
        (package / "runtime" / "__pycache__").mkdir()
        (package / "runtime" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"x")
        assert runtime_function.runtime_digest() == before  # caches do not ship
        runtime_function.runtime_digest.cache_clear()
        (package / "runtime" / "handler.py").write_text("def handler(e, c):\n    return 2\n")
        assert runtime_function.runtime_digest() != before
    finally:
        runtime_function.runtime_digest.cache_clear()


def test_the_example_passes_aws_cdk_libs_own_cloudformation_validation(synthesized) -> None:  # type: ignore[no-untyped-def]
    """Off by default in deployline synth (it costs ~6 s); the templates must pass it when on."""
    result = synthesized
    # aws-cdk-lib writes the report only when a validation plugin ran (in deployline synth, only
    # this validator), and lists only the plugins that found something (or were acknowledged)
    path = result.outdir / "validation-report.json"
    assert path.is_file(), "aws-cdk-lib's CloudFormation validation did not run"
    assert json.loads(path.read_text())["pluginReports"] == []


def test_the_output_takes_the_user_s_umask(synthesized) -> None:  # type: ignore[no-untyped-def]
    from deployline.fileio import current_umask

    assert synthesized.outdir.stat().st_mode & 0o777 == 0o777 & ~current_umask()


def _config_with_checks(tmp_path: Path, checks: str) -> Path:
    path = tmp_path / "deployline.yaml"
    path.write_text((ROOT / "deployline.yaml").read_text() + checks, encoding="utf-8")
    return path


def _build_timeouts(outdir: Path) -> list[int]:
    """TimeoutInMinutes of every CodeBuild project synthesized into `outdir`."""
    return sorted(
        resource["Properties"]["TimeoutInMinutes"]
        for template in outdir.glob("*.template.json")
        for resource in json.loads(template.read_text())["Resources"].values()
        if resource["Type"] == "AWS::CodeBuild::Project"
    )


def test_synth_s_check_reads_checks_options_as_deployline_check_does(  # type: ignore[no-untyped-def]
    synthesized, tmp_path: Path
) -> None:
    """One schema for `checks:`: DL301's `limit` option tightens synth's check to 10 minutes
    (every build of the example takes longer), and a short reason suppresses, as in check."""
    timeouts = _build_timeouts(synthesized.outdir)
    assert timeouts and min(timeouts) > 10
    strict = _config_with_checks(tmp_path, "checks:\n  options:\n    dl301: {limit: 10}\n")
    result = synth_module.check_synthesized(synthesized.outdir, strict)
    assert sorted(f.message for f in result.findings) == [
        f"TimeoutInMinutes is {minutes}, above the limit of 10" for minutes in timeouts
    ]
    assert {f.rule_id for f in result.findings} == {"DL301"} and result.exit_code() == 1
    accepted = _config_with_checks(
        tmp_path,
        "checks:\n  options:\n    dl301: {limit: 10}\n  suppress:\n    - {id: dl301, reason: ok}\n",
    )
    result = synth_module.check_synthesized(synthesized.outdir, accepted)
    assert [f.rule_id for f in result.findings] == [] and result.suppressed == len(timeouts)
    assert result.exit_code() == 0


def test_ctrl_c_during_the_swap_waits_for_both_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """SIGINT between moving the old output away and moving the new one in takes effect only
    after both: the new output is in place, the old one gone, then KeyboardInterrupt. The signal
    comes from another thread, as a terminal's SIGINT may reach any thread (jsii runs some)."""
    import signal
    import threading

    # Python's own handler (an earlier test may have imported checkov.main, which sets its own)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    target, scratch = tmp_path / "cdk.out", tmp_path / ".cdk.out-scratch"
    target.mkdir()
    (target / "old").write_text("old")
    scratch.mkdir()
    (scratch / "new").write_text("new")
    rename = Path.rename
    go = threading.Event()

    def send() -> None:
        go.wait(10)
        os.kill(os.getpid(), signal.SIGINT)

    # started before the swap, like jsii's threads: it does not block SIGINT itself
    sender = threading.Thread(target=send, daemon=True)
    sender.start()

    def rename_then_interrupt(self: Path, to: Path) -> Path:
        moved = rename(self, to)
        if self == target:  # the first of the two renames
            go.set()
            sender.join()
            time.sleep(0.05)  # the interpreter runs the Python-level handler about now
        return moved

    monkeypatch.setattr(Path, "rename", rename_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        synth_module._swap_in(scratch, target)
    assert [p.name for p in tmp_path.iterdir()] == ["cdk.out"]
    assert [p.name for p in target.iterdir()] == ["new"]
