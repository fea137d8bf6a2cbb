"""deployline.assets: what the synth step asks cdk-assets to publish, and how.

A stand-in `cdk-assets` executable records each call, so the tests see exactly the commands the
pipeline would run, against manifests shaped like the ones aws-cdk-lib writes (the pipeline stack
tests plan the real app's manifests).
"""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from deployline import assets


def role(account: str, region: str) -> str:
    """The file-publishing role aws-cdk-lib names in an asset manifest."""
    name = f"cdk-hnb659fds-file-publishing-role-{account}-{region}"
    return f"arn:${{AWS::Partition}}:iam::{account}:role/{name}"


AGNOSTIC_ROLE = role("${AWS::AccountId}", "${AWS::Region}")


def manifest(path: Path, files: dict[str, list[tuple[str, str | None, str]]]) -> Path:
    """files: asset ID -> [(destination ID, region or None, role)]."""
    data: dict[str, Any] = {"version": "48.0.0", "files": {}, "dockerImages": {}}
    for asset_id, destinations in files.items():
        data["files"][asset_id] = {
            "source": {"path": f"asset.{asset_id}", "packaging": "zip"},
            "destinations": {
                dest_id: {
                    "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}",
                    "objectKey": f"{asset_id}.zip",
                    "assumeRoleArn": role,
                    **({"region": region} if region else {}),
                }
                for dest_id, region, role in destinations
            },
        }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A cdk-assets stand-in: appends `<args>` as a JSON line to calls.jsonl; exits 1 when its
    arguments mention FAIL."""
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "cdk-assets"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "print('published ' + ' '.join(sys.argv[4:]))\n"
        "sys.exit(1 if any('FAIL' in a for a in sys.argv) else 0)\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_an_asset_shared_by_stacks_in_one_account_and_region_is_published_once(
    tmp_path: Path, recorder: tuple[Path, Path]
) -> None:
    staging = manifest(
        tmp_path / "svc-service-staging.assets.json",
        {"abc": [("current_account-current_region", None, AGNOSTIC_ROLE)]},
    )
    manifest(
        tmp_path / "svc-service-production.assets.json",
        {"abc": [("current_account-current_region", None, AGNOSTIC_ROLE)]},
    )
    script, log = recorder
    out = io.StringIO()

    code = assets.main([str(tmp_path), "--cdk-assets", str(script)], out=out)

    assert code == assets.EXIT_OK
    # The manifests are read in name order; the second stack's copy of "abc" is not asked for.
    assert calls(log) == [
        [
            "--path",
            str(tmp_path / "svc-service-production.assets.json"),
            "publish",
            "abc:current_account-current_region",
        ],
    ]
    assert "publishing 1 asset(s) to 1 destination(s)" in out.getvalue()
    assert staging.exists()


def test_every_account_and_region_is_a_destination_of_its_own(
    tmp_path: Path, recorder: tuple[Path, Path]
) -> None:
    manifest(
        tmp_path / "svc-pipeline-shared.assets.json",
        {"fn": [("111111111111-us-east-1", "us-east-1", role("111111111111", "us-east-1"))]},
    )
    manifest(
        tmp_path / "svc-service-staging.assets.json",
        {"fn": [("222222222222-us-east-1", "us-east-1", role("222222222222", "us-east-1"))]},
    )
    manifest(
        tmp_path / "svc-service-production.assets.json",
        {
            "fn": [("333333333333-eu-west-1", "eu-west-1", role("333333333333", "eu-west-1"))],
            "other": [("333333333333-eu-west-1", "eu-west-1", role("333333333333", "eu-west-1"))],
        },
    )
    plan = assets.plan(tmp_path)
    assert [(p.destination.role, p.destination.region, p.count) for p in plan] == [
        (role("111111111111", "us-east-1"), "us-east-1", 1),
        (role("222222222222", "us-east-1"), "us-east-1", 1),
        (role("333333333333", "eu-west-1"), "eu-west-1", 2),
    ]
    script, log = recorder

    failed = assets.publish(plan, cdk_assets=[str(script)], out=io.StringIO())

    assert failed == []
    made = sorted(calls(log))
    assert made == sorted(
        [
            [
                "--path",
                str(tmp_path / "svc-pipeline-shared.assets.json"),
                "publish",
                "fn:111111111111-us-east-1",
            ],
            [
                "--path",
                str(tmp_path / "svc-service-staging.assets.json"),
                "publish",
                "fn:222222222222-us-east-1",
            ],
            [
                "--path",
                str(tmp_path / "svc-service-production.assets.json"),
                "publish",
                "fn:333333333333-eu-west-1",
                "other:333333333333-eu-west-1",
            ],
        ]
    )


def test_a_failed_destination_fails_the_run_and_is_named(
    tmp_path: Path, recorder: tuple[Path, Path]
) -> None:
    manifest(
        tmp_path / "a.assets.json",
        {"FAIL1": [("222222222222-us-east-1", "us-east-1", role("222222222222", "us-east-1"))]},
    )
    manifest(
        tmp_path / "b.assets.json",
        {"ok": [("333333333333-eu-west-1", "eu-west-1", role("333333333333", "eu-west-1"))]},
    )
    script, log = recorder
    out = io.StringIO()

    code = assets.main([str(tmp_path), "--cdk-assets", str(script)], out=out)

    assert code == assets.EXIT_FAILED
    assert len(calls(log)) == 2  # the other destination was still published
    text = out.getvalue()
    assert "cdk-assets failed on a.assets.json (exit 1)" in text
    assert "[cdk-hnb659fds-file-publishing-role-222222222222-us-east-1 in us-east-1]" in text


def test_nothing_to_publish_is_said_and_succeeds(tmp_path: Path) -> None:
    out = io.StringIO()
    assert assets.main([str(tmp_path), "--cdk-assets", "/no/such/tool"], out=out) == 0
    assert "no assets to publish" in out.getvalue()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not a readable asset manifest"),
        ('{"files": {"x": {"source": {}}}}', "files.x has no 'destinations' object"),
        ('["a"]', "an asset manifest is a JSON object"),
    ],
)
def test_a_broken_manifest_is_a_usage_error_naming_the_file(
    tmp_path: Path, content: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.assets.json").write_text(content, encoding="utf-8")
    assert assets.main([str(tmp_path)]) == assets.EXIT_USAGE
    err = capsys.readouterr().err
    assert "x.assets.json" in err and expected in err


def test_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(assets.AssetError, match="not a directory"):
        assets.plan(tmp_path / "cdk.out")


def test_a_cdk_assets_that_cannot_run_fails_its_destination(tmp_path: Path) -> None:
    manifest(tmp_path / "a.assets.json", {"x": [("d", None, AGNOSTIC_ROLE)]})
    out = io.StringIO()
    failed = assets.publish(assets.plan(tmp_path), cdk_assets=[str(tmp_path / "nope")], out=out)
    assert len(failed) == 1
    assert "cannot run" in out.getvalue()


def test_the_stacks_own_templates_are_not_published(
    tmp_path: Path, recorder: tuple[Path, Path]
) -> None:
    """aws-cdk-lib lists each template as a file asset (for `cdk deploy`); the pipeline deploys
    templates from its artifacts, so only the real assets go to cdk-assets."""
    path = manifest(
        tmp_path / "svc-service-staging.assets.json",
        {
            "fn": [("d", None, AGNOSTIC_ROLE)],
            "tpl": [("d", None, AGNOSTIC_ROLE)],
        },
    )
    data = json.loads(path.read_text())
    data["files"]["tpl"]["source"] = {
        "path": "svc-service-staging.template.json",
        "packaging": "file",
    }
    path.write_text(json.dumps(data))
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "version": "48.0.0",
                "artifacts": {
                    "svc-service-staging": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"templateFile": "svc-service-staging.template.json"},
                    }
                },
            }
        )
    )
    (publication,) = assets.plan(tmp_path)
    assert publication.selectors == {path: ["fn:d"]}
