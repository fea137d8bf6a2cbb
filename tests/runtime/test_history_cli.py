"""`deployline history` end to end: the recorder fills a table on a moto server from pipeline
events, then the real console script reads it back over HTTP and prints records and metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.stub import Stubber

from deployline.runtime import recorder
from deployline.runtime.recorder import Recorder, RecorderSettings

from .conftest import PIPELINE, REGION, create_deployments_table, make_client, stage_event

TABLE = "payment-processor-deployments-shared"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def seeded(moto_url: str) -> dict[str, str]:
    """Three production deployments (ok, failed, ok 60 minutes after the failure) and one
    staging deployment, recorded by the recorder itself."""
    dynamodb = make_client("dynamodb", moto_url)
    create_deployments_table(dynamodb, TABLE)
    settings = RecorderSettings(
        table_name=TABLE,
        service="payment-processor",
        pipeline=PIPELINE,
        environments=(
            recorder.EnvironmentSpec(name="staging", stage="Deploy-staging", deployment_group=None),
            recorder.EnvironmentSpec(
                name="production", stage="Deploy-production", deployment_group=None
            ),
        ),
        production="production",
    )
    # stage events need neither CodePipeline nor CodeDeploy: stubbers with no responses prove it
    codepipeline = make_client("codepipeline", "http://127.0.0.1:9")
    codedeploy = make_client("codedeploy", "http://127.0.0.1:9")
    with Stubber(codepipeline), Stubber(codedeploy):
        rec = Recorder(
            settings,
            dynamodb=dynamodb,
            cloudwatch=make_client("cloudwatch", moto_url),
            codepipeline=codepipeline,
            codedeploy=codedeploy,
            sleep=lambda _: None,
        )
        first, failed, fixed, staged = (str(uuid.uuid4()) for _ in range(4))
        for event in (
            stage_event(staged, "Deploy-staging", "STARTED", _at(0)),
            stage_event(staged, "Deploy-staging", "SUCCEEDED", _at(6)),
            stage_event(first, "Deploy-production", "STARTED", _at(10)),
            stage_event(first, "Deploy-production", "SUCCEEDED", _at(25)),
            stage_event(failed, "Deploy-production", "STARTED", _at(100)),
            stage_event(failed, "Deploy-production", "FAILED", _at(110)),
            stage_event(fixed, "Deploy-production", "STARTED", _at(150)),
            stage_event(fixed, "Deploy-production", "SUCCEEDED", _at(170)),
        ):
            rec.handle(event)
    return {"url": moto_url, "first": first, "failed": failed, "fixed": fixed, "staged": staged}


def _history(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "deployline.cli", "history", "--endpoint-url", url, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def test_history_json_lists_the_recorded_deployments_and_their_dora_metrics(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    done = _history(
        seeded["url"], "--table", TABLE, "--region", REGION, "--format", "json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    by_execution = {(r["execution_id"], r["environment"]): r for r in report["records"]}
    assert by_execution[(seeded["failed"], "production")]["status"] == "failed"
    assert by_execution[(seeded["fixed"], "production")]["status"] == "succeeded"
    assert by_execution[(seeded["staged"], "staging")]["status"] == "succeeded"
    metrics = report["metrics"]
    assert metrics["deployments"] == 3  # production is the default subject of the metrics
    assert metrics["change_failure_rate"] == pytest.approx(1 / 3)
    assert metrics["time_to_restore_seconds"] == 60 * 60  # failed at 110, fixed at 170


def test_history_table_prints_records_and_metrics_for_one_environment(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    done = _history(
        seeded["url"], "--table", TABLE, "--region", REGION, "--env", "staging", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    table, _, metrics = done.stdout.partition("DORA metrics: staging")
    assert "staging" in table and "succeeded" in table and "6m 0s" in table
    assert "production" not in table  # --env keeps to one environment
    assert "Change failure rate" in metrics and "0.0% (0 of 1)" in metrics
    assert "commit" not in table  # columns with no value in any record are left out


def test_history_against_a_missing_table_says_so_and_exits_2(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    done = _history(seeded["url"], "--table", "no-such-table", "--region", REGION, cwd=tmp_path)
    assert done.returncode == 2
    assert "no-such-table" in done.stderr and "Traceback" not in done.stderr
