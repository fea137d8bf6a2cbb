"""The security gate: `evaluate` on recorded reports, and the handler against moto (S3 for the
artifact, DynamoDB for the record). moto does not implement CodePipeline's PutJobSuccessResult
or PutJobFailureResult, so the CodePipeline client is botocore's Stubber plus a CallLog."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from deployline.runtime import clients, records, security_gate
from deployline.runtime.security_gate import REPORT_FILES, evaluate

from .conftest import CallLog, create_deployments_table, make_client

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
ALL = ["bandit", "pip-audit", "trivy"]
BANDIT_CLEAN = json.dumps(
    {"errors": [], "generated_at": "2024-05-02T09:14:00Z", "metrics": {}, "results": []}
).encode()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def clean() -> dict[str, bytes]:
    return {
        "bandit.json": BANDIT_CLEAN,
        "pip-audit.json": fixture("pip-audit-clean.json"),
        "trivy-fs.json": fixture("trivy-fs-clean.json"),
    }


# ---------------------------------------------------------------------------------------------
# evaluate()
# ---------------------------------------------------------------------------------------------


def test_passes_on_clean_reports_and_notes_the_skipped_image_scan() -> None:
    verdict = evaluate(clean(), threshold="high", scanners=ALL)

    assert verdict.passed
    assert verdict.counts == {"critical": 0, "high": 0, "medium": 0, "low": 0}
    assert verdict.notes == ("trivy-image.json is absent: the container image was not scanned",)
    assert verdict.summary.startswith("PASSED (threshold high): 0 critical, 0 high")
    assert verdict.output_variables() == {
        "SECURITY_SUMMARY": verdict.summary,
        "CRITICAL": "0",
        "HIGH": "0",
        "MEDIUM": "0",
        "LOW": "0",
        "UNVERIFIED": "0",
    }


def test_fails_on_findings_at_or_above_the_threshold_most_severe_first() -> None:
    reports = clean() | {
        "trivy-fs.json": fixture("trivy-fs.json"),
        "trivy-image.json": fixture("trivy-image.json"),
    }

    verdict = evaluate(reports, threshold="high", scanners=ALL)

    assert not verdict.passed
    assert verdict.counts == {"critical": 2, "high": 2, "medium": 2, "low": 1}
    assert [f.severity for f in verdict.findings] == [
        "critical",
        "critical",
        "high",
        "high",
        "medium",
        "medium",
        "low",
    ]
    assert [f.rule_id for f in verdict.blocking] == [
        "CVE-2024-2961",
        "aws-access-key-id",
        "AVD-DS-0002",
        "CVE-2018-18074",
    ]
    assert "top: CVE-2024-2961 (critical, trivy)" in verdict.summary


def test_medium_findings_do_not_block_a_high_threshold_but_block_a_medium_one() -> None:
    data = {
        "errors": [],
        "metrics": {},
        "results": [
            {
                "test_id": "B307",
                "issue_severity": "MEDIUM",
                "issue_confidence": "HIGH",
                "issue_text": "Use of possibly insecure function.",
                "filename": "app/calc.py",
                "line_number": 11,
            }
        ],
    }
    reports = clean() | {"bandit.json": json.dumps(data).encode()}

    assert evaluate(reports, threshold="high", scanners=ALL).passed
    at_medium = evaluate(reports, threshold="medium", scanners=ALL)
    assert not at_medium.passed
    assert at_medium.blocking[0].rule_id == "B307"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"bandit.json": None}, "bandit.json is missing: bandit did not write its report"),
        ({"pip-audit.json": b""}, "pip-audit.json is empty"),
        ({"trivy-fs.json": b'{"SchemaVersion": 2, "Results": [{"Vuln'}, "is not valid JSON"),
        (
            {"bandit.json": fixture("trivy-fs-clean.json")},
            "bandit.json should hold a bandit report but holds a Trivy (trivy) report",
        ),
    ],
)
def test_fails_closed_on_missing_empty_malformed_or_misplaced_reports(
    change: Mapping[str, bytes | None], problem: str
) -> None:
    reports = clean()
    for name, data in change.items():
        if data is None:
            reports.pop(name)
        else:
            reports[name] = data

    verdict = evaluate(reports, threshold="critical", scanners=ALL)

    assert not verdict.passed
    assert any(problem in p for p in verdict.problems), verdict.problems
    assert "report problem(s)" in verdict.summary


def test_a_knowingly_skipped_scanner_is_listed_not_required() -> None:
    reports = clean()
    reports.pop("trivy-fs.json")

    verdict = evaluate(reports, threshold="high", scanners=ALL, skipped=["trivy"])

    assert verdict.passed
    assert verdict.skipped == ("trivy",)
    assert "skipped: trivy" in verdict.summary
    assert "Skipped on purpose: trivy" in verdict.render_text()


def test_unverified_dependencies_fail_unless_allowed() -> None:
    pip_audit = {
        "dependencies": [
            {"name": "flask", "version": "3.0.3", "vulns": []},
            {
                "name": "payments-internal",
                "skip_reason": "Dependency not found on PyPI and could not be audited: "
                "payments-internal (1.4.0)",
            },
        ]
    }
    reports = clean() | {"pip-audit.json": json.dumps(pip_audit).encode()}

    refused = evaluate(reports, threshold="high", scanners=ALL)
    accepted = evaluate(reports, threshold="high", scanners=ALL, allow_unverified=True)

    assert not refused.passed
    assert refused.output_variables()["UNVERIFIED"] == "1"
    assert "payments-internal: not audited" in refused.render_text()
    assert "blocking; allow_unverified: false" in refused.render_text()
    assert accepted.passed
    assert "1 unverified" in accepted.summary


def test_bandit_may_deliver_sarif_and_extra_sarif_files_are_evaluated() -> None:
    bandit_sarif = {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "Bandit"}}, "results": []}],
    }
    reports = clean() | {
        "bandit.json": json.dumps(bandit_sarif).encode(),
        "semgrep.sarif": fixture("semgrep.sarif"),
    }

    verdict = evaluate(reports, threshold="critical", scanners=ALL)

    assert not verdict.passed
    assert verdict.blocking[0].location == "app/db.py:42"
    assert verdict.counts["critical"] == 1


def test_unknown_scanner_and_empty_scanner_list_fail_closed() -> None:
    assert (
        "unknown scanner 'grype'"
        in evaluate(clean(), threshold="high", scanners=["bandit", "grype"]).problems[0]
    )
    nothing = evaluate({}, threshold="high", scanners=[])
    assert not nothing.passed
    assert "no scanners are configured" in nothing.problems[0]


def test_rejects_an_unknown_threshold() -> None:
    with pytest.raises(ValueError, match="threshold must be one of"):
        evaluate(clean(), threshold="severe", scanners=ALL)


def test_summary_is_one_line_of_at_most_1000_characters() -> None:
    results = [
        {
            "test_id": f"B{600 + i}",
            "issue_severity": "HIGH",
            "issue_confidence": "HIGH",
            "issue_text": "line one\nline two " + "x" * 300,
            "filename": "app/" + "deep/" * 60 + "mod.py",
            "line_number": i,
        }
        for i in range(50)
    ]
    reports = clean() | {
        "bandit.json": json.dumps({"errors": [], "results": results, "metrics": {}}).encode()
    }
    missing = {k: v for k, v in reports.items() if k != "pip-audit.json"}

    verdict = evaluate(missing, threshold="high", scanners=ALL)

    assert len(verdict.summary) <= 1000
    assert "\n" not in verdict.summary
    text = verdict.render_text(top=3)
    assert "showing 3 of 50" in text
    assert text.count("\n  - B6") == 3


def test_verdict_serializes_to_json() -> None:
    verdict = evaluate(
        clean() | {"pip-audit.json": fixture("pip-audit.json")}, threshold="high", scanners=ALL
    )
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["passed"] is False
    assert data["findings"][0]["rule_id"] == "PYSEC-2018-28"
    assert data["unverified"][0].startswith("payments-internal")


def test_report_files_name_one_json_per_scanner_and_two_for_trivy() -> None:
    assert REPORT_FILES == {
        "bandit": ("bandit.json",),
        "pip-audit": ("pip-audit.json",),
        "trivy": ("trivy-fs.json", "trivy-image.json"),
    }


# ---------------------------------------------------------------------------------------------
# The handler, against moto
# ---------------------------------------------------------------------------------------------

TABLE = "payment-processor-deployments-shared"


def zipped(files: Mapping[str, bytes], prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(prefix + name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def aws(moto_url: str) -> Iterator[dict[str, Any]]:
    s3 = make_client("s3", moto_url)
    dynamodb = make_client("dynamodb", moto_url)
    bucket = f"artifacts-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    create_deployments_table(dynamodb, TABLE)
    yield {"s3": s3, "dynamodb": dynamodb, "bucket": bucket, "url": moto_url}


@pytest.fixture
def gate(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, CallLog]]:
    """The handler's clients: real moto clients through AWS_ENDPOINT_URL, Stubber CodePipeline."""
    codepipeline = make_client("codepipeline", "http://127.0.0.1:9")
    log = CallLog(codepipeline)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws["url"])
    monkeypatch.setenv("TABLE_NAME", TABLE)
    real_client = clients.client
    real_client.cache_clear()
    monkeypatch.setattr(
        clients,
        "client",
        lambda name: codepipeline if name == "codepipeline" else real_client(name),
    )
    with Stubber(codepipeline) as stub:
        yield stub, log
        stub.assert_no_pending_responses()
    real_client.cache_clear()


def job_event(
    aws: dict[str, Any], key: str, params: Any, execution_id: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "actionConfiguration": {
            "configuration": {
                "FunctionName": "payment-processor-security-gate-shared",
                "UserParameters": params if isinstance(params, str) else json.dumps(params),
            }
        },
        "inputArtifacts": [
            {
                "name": "ScanReports",
                "revision": None,
                "location": {
                    "type": "S3",
                    "s3Location": {"bucketName": aws["bucket"], "objectKey": key},
                },
            }
        ],
        "outputArtifacts": [],
        "artifactCredentials": {
            "accessKeyId": "ASIATESTING",
            "secretAccessKey": "testing",
            "sessionToken": "testing",
        },
    }
    if execution_id:
        data["pipelineContext"] = {
            "pipelineName": "payment-processor-pipeline-shared",
            "pipelineExecutionId": execution_id,
        }
    return {"CodePipeline.job": {"id": "job-42", "accountId": "123456789012", "data": data}}


def upload(aws: dict[str, Any], files: Mapping[str, bytes], prefix: str = "") -> str:
    key = f"payment-processor/ScanReport/{uuid.uuid4().hex[:7]}"
    aws["s3"].put_object(Bucket=aws["bucket"], Key=key, Body=zipped(files, prefix))
    return key


def stored(aws: dict[str, Any], execution_id: str) -> dict[str, Any] | None:
    return records.get_item(
        aws["dynamodb"], TABLE, records.record_key(execution_id, records.PIPELINE_SCOPE)
    )


PARAMS = {"threshold": "high", "scanners": ALL, "allow_unverified": False}


def test_handler_passes_with_output_variables_and_stores_the_summary(
    aws: dict[str, Any], gate: Any
) -> None:
    stub, log = gate
    stub.add_response(
        "put_job_success_result",
        {},
        {"jobId": "job-42", "executionDetails": ANY, "outputVariables": ANY},
    )
    execution_id = str(uuid.uuid4())
    key = upload(aws, clean() | {"pip-audit.json": fixture("pip-audit.json")})
    params = {**PARAMS, "threshold": "critical", "allow_unverified": True}

    result = security_gate.handler(job_event(aws, key, params, execution_id), None)

    assert result["passed"] is True
    variables = log.named("PutJobSuccessResult")[0]["outputVariables"]
    assert variables == {
        "SECURITY_SUMMARY": result["summary"],
        "CRITICAL": "0",
        "HIGH": "1",
        "MEDIUM": "0",
        "LOW": "0",
        "UNVERIFIED": "1",
    }
    assert variables["SECURITY_SUMMARY"].startswith(
        "PASSED (threshold critical): 0 critical, 1 high"
    )
    item = stored(aws, execution_id)
    assert item is not None
    assert item["security"]["passed"] is True
    assert item["security"]["counts"] == {"critical": 0, "high": 1, "medium": 0, "low": 0}
    assert item["security"]["unverified"] == 1
    assert item["pipeline"] == "payment-processor-pipeline-shared"


def test_handler_fails_the_job_naming_the_top_findings(aws: dict[str, Any], gate: Any) -> None:
    stub, log = gate
    stub.add_response("put_job_failure_result", {}, {"jobId": "job-42", "failureDetails": ANY})
    execution_id = str(uuid.uuid4())
    key = upload(
        aws,
        clean()
        | {"pip-audit.json": fixture("pip-audit.json"), "trivy-fs.json": fixture("trivy-fs.json")},
    )

    result = security_gate.handler(job_event(aws, key, PARAMS, execution_id), None)

    assert result["passed"] is False
    message = log.named("PutJobFailureResult")[0]["failureDetails"]["message"]
    assert message.startswith("Security gate FAILED at threshold high")
    for rule in ("aws-access-key-id", "AVD-DS-0002", "CVE-2018-18074", "PYSEC-2018-28"):
        assert rule in message
    assert "payments-internal: not audited" in message
    item = stored(aws, execution_id)
    assert item is not None and item["security"]["passed"] is False
    assert item["security"]["top_findings"][0].startswith("aws-access-key-id [critical, trivy]")


def test_execution_id_may_come_from_user_parameters_and_reports_may_sit_in_a_folder(
    aws: dict[str, Any], gate: Any
) -> None:
    stub, _ = gate
    stub.add_response(
        "put_job_success_result",
        {},
        {"jobId": "job-42", "executionDetails": ANY, "outputVariables": ANY},
    )
    execution_id = str(uuid.uuid4())
    key = upload(aws, clean(), prefix="security-reports/")

    result = security_gate.handler(
        job_event(aws, key, {**PARAMS, "execution_id": execution_id}, None), None
    )

    assert result["passed"] is True
    item = stored(aws, execution_id)
    assert item is not None and item["security"]["summary"].startswith("PASSED")


def test_an_artifact_that_is_not_a_zip_fails_closed(aws: dict[str, Any], gate: Any) -> None:
    stub, log = gate
    stub.add_response("put_job_failure_result", {}, {"jobId": "job-42", "failureDetails": ANY})
    key = f"broken/{uuid.uuid4().hex[:7]}"
    aws["s3"].put_object(Bucket=aws["bucket"], Key=key, Body=b"<html>not a zip</html>")

    security_gate.handler(job_event(aws, key, PARAMS, str(uuid.uuid4())), None)

    message = log.named("PutJobFailureResult")[0]["failureDetails"]["message"]
    assert "the scan artifact is not a zip file" in message


def test_a_missing_artifact_object_fails_the_job_instead_of_hanging(
    aws: dict[str, Any], gate: Any
) -> None:
    stub, log = gate
    stub.add_response("put_job_failure_result", {}, {"jobId": "job-42", "failureDetails": ANY})

    result = security_gate.handler(job_event(aws, "no/such/key", PARAMS, None), None)

    assert result["passed"] is False
    message = log.named("PutJobFailureResult")[0]["failureDetails"]["message"]
    assert "The security gate could not run" in message
    assert "fails closed" in message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            '{"threshold": "severe"}',
            "threshold must be one of ['critical', 'high', 'medium', 'low']",
        ),
        ('{"scanners": ["bandit", "grype"]}', "unknown: ['grype']"),
        ('{"allow_unverified": "yes"}', "allow_unverified must be true or false"),
        ("{threshold: high}", "UserParameters is not valid JSON"),
    ],
)
def test_malformed_user_parameters_fail_the_job(
    aws: dict[str, Any], gate: Any, params: str, expected: str
) -> None:
    stub, log = gate
    stub.add_response("put_job_failure_result", {}, {"jobId": "job-42", "failureDetails": ANY})

    security_gate.handler(job_event(aws, "unused", params, None), None)

    assert expected in log.named("PutJobFailureResult")[0]["failureDetails"]["message"]


def test_a_table_that_cannot_be_written_does_not_block_the_gate(
    aws: dict[str, Any], gate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub, _ = gate
    stub.add_response(
        "put_job_success_result",
        {},
        {"jobId": "job-42", "executionDetails": ANY, "outputVariables": ANY},
    )
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    key = upload(aws, clean())

    result = security_gate.handler(job_event(aws, key, PARAMS, str(uuid.uuid4())), None)

    assert result["passed"] is True
