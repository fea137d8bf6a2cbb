"""The security gate: a CodePipeline Lambda invoke action after the scan action.

UserParameters (a JSON object):

    {"threshold": "high",                          # critical | high | medium | low. Default: high
     "scanners": ["bandit", "pip-audit", "trivy"], # Default: all three
     "allow_unverified": false,                    # Default: false
     "skipped": [],                                # scanners knowingly skipped. Default: none
     "execution_id": "#{codepipeline.PipelineExecutionId}"}
                                                   # Default: the job's pipelineContext

The action's first input artifact is the scan action's output: a zip with each scanner's report at
its root (REPORT_FILES), plus any extra `*.sarif` files, which are evaluated too. The gate fails
closed: a missing, empty or malformed report fails it, as do findings at or above the threshold
and, unless `allow_unverified`, dependencies the scanners could not audit.

On pass it returns output variables (namespace the action, e.g. `SecurityGate`, and show
`#{SecurityGate.SECURITY_SUMMARY}` in the approval's CustomData): SECURITY_SUMMARY (one line of
at most 1000 characters), CRITICAL, HIGH, MEDIUM, LOW and UNVERIFIED (counts as strings). On fail
the job's failure message names the top findings. With TABLE_NAME set, the verdict is stored on
the pipeline execution's record, for approvers and `deployline history`.

`REPORT_FILES`, `parse_report` and `evaluate` are pure: `deployline run-local scan` uses them too.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .jobs import (
    JobEventError,
    ParameterError,
    Parameters,
    PipelineJob,
    put_failure,
    put_success,
    truncate,
)
from .reports import (
    SEVERITIES,
    SEVERITY_RANK,
    ReportError,
    ScanFinding,
    ScanReport,
    parse_report,
    severity_order,
)

__all__ = [
    "OPTIONAL_FILES",
    "REPORT_FILES",
    "SEVERITIES",
    "GateVerdict",
    "ReportError",
    "ScanFinding",
    "ScanReport",
    "evaluate",
    "handler",
    "parse_report",
    "read_artifact",
]

#: The file each scanner writes at the root of the scan artifact (and the local report directory).
REPORT_FILES: dict[str, tuple[str, ...]] = {
    "bandit": ("bandit.json",),
    "pip-audit": ("pip-audit.json",),
    "trivy": ("trivy-fs.json", "trivy-image.json"),
}
#: Files that may be absent: the image scan is skipped when no image was built (no Docker).
OPTIONAL_FILES = frozenset({"trivy-image.json"})
#: Longest SECURITY_SUMMARY output variable.
MAX_SUMMARY = 1000
#: Largest artifact zip the gate reads (bytes). Default: 64 MiB.
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
#: Largest single report inside it, uncompressed (bytes). Default: 32 MiB.
MAX_REPORT_BYTES = 32 * 1024 * 1024

ACTION = "deployline security gate"
_EXAMPLE = '{"threshold": "high", "scanners": ["bandit", "pip-audit", "trivy"]}'
_KEYS = ("threshold", "scanners", "allow_unverified", "skipped", "execution_id")
# The SARIF driver names under which a configured scanner may deliver its report in SARIF.
_SARIF_DRIVERS = {"bandit": {"bandit"}, "pip-audit": {"pip-audit"}, "trivy": {"trivy"}}


@dataclass(frozen=True)
class GateVerdict:
    """The gate's decision and everything an approver needs to see.

    Attributes:
        passed: no problems, nothing at or above `threshold`, and no unverified dependency
            (unless allowed).
        threshold: the lowest severity that blocks.
        counts: findings per severity (critical, high, medium, low), blocking or not.
        findings: every finding, most severe first.
        unverified: what the scanners could not check (skipped dependencies, unparsable files).
        problems: why the reports themselves could not be trusted (missing, empty, malformed).
        skipped: scanners the user knowingly skipped.
        notes: informational remarks (e.g. the image scan did not run).
        allow_unverified: whether unverified items were accepted.
        summary: one line, for the approval and the pipeline console.
    """

    passed: bool
    threshold: str
    counts: dict[str, int]
    findings: tuple[ScanFinding, ...]
    unverified: tuple[str, ...]
    problems: tuple[str, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...] = ()
    allow_unverified: bool = False
    summary: str = field(default="")

    @property
    def blocking(self) -> tuple[ScanFinding, ...]:
        """Findings at or above the threshold."""
        limit = SEVERITY_RANK[self.threshold]
        return tuple(f for f in self.findings if severity_order(f.severity) <= limit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "threshold": self.threshold,
            "counts": dict(self.counts),
            "findings": [f.to_dict() for f in self.findings],
            "unverified": list(self.unverified),
            "problems": list(self.problems),
            "skipped": list(self.skipped),
            "notes": list(self.notes),
            "allow_unverified": self.allow_unverified,
            "summary": self.summary,
        }

    def output_variables(self) -> dict[str, str]:
        """The CodePipeline output variables of a passing gate."""
        return {
            "SECURITY_SUMMARY": self.summary,
            **{name.upper(): str(self.counts.get(name, 0)) for name in SEVERITIES},
            "UNVERIFIED": str(len(self.unverified)),
        }

    def render_text(self, top: int = 10) -> str:
        """A few lines for a terminal or a pipeline failure message."""
        lines = [
            f"Security gate {'PASSED' if self.passed else 'FAILED'} at threshold {self.threshold}",
            "  "
            + ", ".join(f"{self.counts.get(s, 0)} {s}" for s in SEVERITIES)
            + f", {len(self.unverified)} unverified",
        ]
        if self.problems:
            lines.append("Reports that could not be used (the gate fails closed):")
            lines.extend(f"  - {p}" for p in self.problems)
        blocking = self.blocking
        if blocking:
            shown = blocking[: max(top, 0)]
            lines.append(
                f"Findings at or above {self.threshold} (showing {len(shown)} of {len(blocking)}):"
            )
            lines.extend(f"  - {f.one_line()}" for f in shown)
        below = len(self.findings) - len(blocking)
        if below:
            lines.append(f"{below} finding(s) below the threshold (not blocking).")
        if self.unverified:
            verdict = "accepted" if self.allow_unverified else "blocking; allow_unverified: false"
            lines.append(f"Not verified ({verdict}):")
            lines.extend(f"  - {u}" for u in self.unverified[: max(top, 0)])
            if len(self.unverified) > top:
                lines.append(f"  ... and {len(self.unverified) - top} more")
        if self.skipped:
            lines.append(f"Skipped on purpose: {', '.join(self.skipped)}")
        lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)


def _summary_line(
    passed: bool,
    threshold: str,
    counts: Mapping[str, int],
    findings: Sequence[ScanFinding],
    unverified: Sequence[str],
    problems: Sequence[str],
    skipped: Sequence[str],
) -> str:
    parts = [
        f"{'PASSED' if passed else 'FAILED'} (threshold {threshold}): "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in SEVERITIES)
        + f", {len(unverified)} unverified"
    ]
    if problems:
        parts.append(f"{len(problems)} report problem(s): {problems[0]}")
    if skipped:
        parts.append(f"skipped: {', '.join(skipped)}")
    if findings:
        worst = findings[0]
        parts.append(f"top: {worst.rule_id} ({worst.severity}, {worst.scanner}) {worst.location}")
    line = "; ".join(parts)
    return truncate(" ".join(line.split()), MAX_SUMMARY)


def _is_sarif_name(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".sarif") or lower.endswith(".sarif.json")


def evaluate(
    reports: Mapping[str, bytes],
    *,
    threshold: str,
    scanners: Sequence[str],
    allow_unverified: bool = False,
    skipped: Sequence[str] = (),
) -> GateVerdict:
    """Decide on the scan reports (file name -> content, names as in REPORT_FILES).

    Fails closed: every configured scanner that is not in `skipped` must have left each of its
    files (trivy-image.json excepted), non-empty and well-formed, in its own format (or SARIF
    from that tool). Extra `*.sarif` files are evaluated too. Findings at or above `threshold`
    fail the gate; so do unverified dependencies unless `allow_unverified`.
    Raises ValueError for a threshold that is not critical, high, medium or low.
    """
    threshold = threshold.lower()
    if threshold not in SEVERITY_RANK:
        raise ValueError(f"threshold must be one of {list(SEVERITIES)}, got {threshold!r}")
    problems: list[str] = []
    notes: list[str] = []
    parsed: list[ScanReport] = []
    used: set[str] = set()
    skipped_list = list(dict.fromkeys(skipped))
    if not scanners:
        problems.append(
            "no scanners are configured: list at least one of " + str(list(REPORT_FILES))
        )
    for scanner in dict.fromkeys(scanners):
        files = REPORT_FILES.get(scanner)
        if files is None:
            problems.append(f"unknown scanner {scanner!r}; deployline knows {list(REPORT_FILES)}")
            continue
        if scanner in skipped_list:
            continue
        for name in files:
            used.add(name)
            data = reports.get(name)
            if data is None:
                if name in OPTIONAL_FILES:
                    notes.append(f"{name} is absent: the container image was not scanned")
                else:
                    problems.append(
                        f"{name} is missing: {scanner} did not write its report (see the scan "
                        f"action's log)"
                    )
                continue
            try:
                report = parse_report(name, data)
            except ReportError as exc:
                problems.append(str(exc))
                continue
            tools = {t.strip().lower() for t in report.tool.split(",")}
            if report.format != scanner and not (
                report.format == "sarif" and tools & _SARIF_DRIVERS[scanner]
            ):
                problems.append(
                    f"{name} should hold a {scanner} report but holds a {report.tool} "
                    f"({report.format}) report"
                )
                continue
            parsed.append(report)
    for name in sorted(reports):
        if name in used or not _is_sarif_name(name):
            continue
        try:
            parsed.append(parse_report(name, reports[name]))
        except ReportError as exc:
            problems.append(str(exc))
    findings = tuple(
        sorted(
            (f for r in parsed for f in r.findings),
            key=lambda f: (severity_order(f.severity), f.scanner, f.rule_id, f.location),
        )
    )
    unverified = tuple(u for r in parsed for u in r.unverified)
    notes.extend(n for r in parsed for n in r.notes)
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    limit = SEVERITY_RANK[threshold]
    blocking = [f for f in findings if severity_order(f.severity) <= limit]
    active = [s for s in scanners if s not in skipped_list]
    if scanners and not active:
        notes.append("every configured scanner was skipped: nothing was scanned")
    passed = not problems and not blocking and (allow_unverified or not unverified)
    summary = _summary_line(passed, threshold, counts, findings, unverified, problems, skipped_list)
    return GateVerdict(
        passed=passed,
        threshold=threshold,
        counts=counts,
        findings=findings,
        unverified=unverified,
        problems=tuple(problems),
        skipped=tuple(skipped_list),
        notes=tuple(notes),
        allow_unverified=allow_unverified,
        summary=summary,
    )


# ---------------------------------------------------------------------------------------------
# The artifact
# ---------------------------------------------------------------------------------------------


def read_artifact(zip_bytes: bytes, *, wanted: Sequence[str]) -> dict[str, bytes]:
    """The report files in a scan artifact zip: the `wanted` names and any `*.sarif`.

    Files are taken from the zip's root; a file found only in one subdirectory is accepted too.
    Raises ReportError when the zip is unreadable or a report is implausibly large.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except zipfile.BadZipFile as exc:
        raise ReportError(f"the scan artifact is not a zip file ({exc})") from None
    chosen: dict[str, zipfile.ZipInfo] = {}
    wanted_set = set(wanted)
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        # Root entries first, so they win over same-named files deeper down.
        for info in sorted(infos, key=lambda i: (i.filename.count("/"), i.filename)):
            base = info.filename.rsplit("/", 1)[-1]
            if (base in wanted_set or _is_sarif_name(base)) and base not in chosen:
                chosen[base] = info
        out: dict[str, bytes] = {}
        for base, info in chosen.items():
            if info.file_size > MAX_REPORT_BYTES:
                raise ReportError(
                    f"{info.filename} is {info.file_size} bytes uncompressed; the gate reads "
                    f"reports up to {MAX_REPORT_BYTES} bytes"
                )
            with archive.open(info) as handle:
                data = handle.read(MAX_REPORT_BYTES + 1)
            if len(data) > MAX_REPORT_BYTES:
                raise ReportError(f"{info.filename} is larger than {MAX_REPORT_BYTES} bytes")
            out[base] = data
    return out


def _fetch_artifact(job: PipelineJob) -> bytes:
    import boto3

    from . import clients

    if not job.input_artifacts:
        raise ReportError(
            "the gate action has no input artifact: give it the scan action's output artifact"
        )
    location = job.input_artifacts[0].get("location") or {}
    s3_location = location.get("s3Location") or {}
    bucket, key = s3_location.get("bucketName"), s3_location.get("objectKey")
    if not bucket or not key:
        raise ReportError("the input artifact has no S3 location (bucketName/objectKey)")
    credentials = job.artifact_credentials or {}
    session = boto3.session.Session(
        aws_access_key_id=credentials.get("accessKeyId"),
        aws_secret_access_key=credentials.get("secretAccessKey"),
        aws_session_token=credentials.get("sessionToken"),
    )
    s3 = session.client("s3", config=clients.config())
    head = s3.head_object(Bucket=bucket, Key=key)
    if int(head.get("ContentLength", 0)) > MAX_ARTIFACT_BYTES:
        raise ReportError(
            f"the scan artifact s3://{bucket}/{key} is {head['ContentLength']} bytes; the gate "
            f"reads up to {MAX_ARTIFACT_BYTES}"
        )
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


@dataclass(frozen=True)
class GateParams:
    threshold: str
    scanners: tuple[str, ...]
    allow_unverified: bool
    skipped: tuple[str, ...]
    execution_id: str | None

    @classmethod
    def parse(cls, raw: str | None) -> GateParams:
        params = Parameters(raw, action=ACTION, example=_EXAMPLE, known=_KEYS)
        scanners = params.string_list("scanners", list(REPORT_FILES), list(REPORT_FILES))
        if not scanners:
            raise ParameterError(f"{ACTION}: UserParameters.scanners must not be empty")
        execution_id = params.string("execution_id", None, nullable=True)
        if execution_id and execution_id.startswith("#{"):
            execution_id = None  # an unresolved variable reference
        return cls(
            threshold=params.choice("threshold", "high", SEVERITIES),
            scanners=tuple(scanners),
            allow_unverified=params.boolean("allow_unverified", False),
            skipped=tuple(params.string_list("skipped", [], list(REPORT_FILES))),
            execution_id=execution_id,
        )


def _stored_summary(verdict: GateVerdict) -> dict[str, Any]:
    return {
        "passed": verdict.passed,
        "threshold": verdict.threshold,
        "summary": verdict.summary,
        "counts": dict(verdict.counts),
        "unverified": len(verdict.unverified),
        "problems": list(verdict.problems[:5]),
        "skipped": list(verdict.skipped),
        "top_findings": [f.one_line()[:300] for f in verdict.blocking[:5]],
    }


def run(
    job: PipelineJob,
    *,
    codepipeline: Any,
    dynamodb: Any | None,
    table_name: str | None,
    fetch: Any = _fetch_artifact,
) -> GateVerdict | None:
    """Evaluate the job's artifact and report; returns the verdict (None on bad parameters)."""
    from . import clients, records

    log = clients.logger("security_gate")
    try:
        params = GateParams.parse(job.user_parameters)
    except ParameterError as exc:
        put_failure(codepipeline, job.id, str(exc))
        return None
    wanted = [name for files in REPORT_FILES.values() for name in files]
    try:
        reports = read_artifact(fetch(job), wanted=wanted)
    except ReportError as exc:
        reports = {}
        artifact_problem: str | None = str(exc)
    else:
        artifact_problem = None
    verdict = evaluate(
        reports,
        threshold=params.threshold,
        scanners=params.scanners,
        allow_unverified=params.allow_unverified,
        skipped=params.skipped,
    )
    if artifact_problem:
        verdict = GateVerdict(
            passed=False,
            threshold=verdict.threshold,
            counts=verdict.counts,
            findings=verdict.findings,
            unverified=verdict.unverified,
            problems=(artifact_problem, *verdict.problems),
            skipped=verdict.skipped,
            notes=verdict.notes,
            allow_unverified=verdict.allow_unverified,
            summary=truncate(f"FAILED: {artifact_problem}", MAX_SUMMARY),
        )
    execution_id = job.pipeline_execution_id or params.execution_id
    if table_name and dynamodb is not None and execution_id:
        try:
            records.store_security_summary(
                dynamodb,
                table_name,
                execution_id=execution_id,
                pipeline=job.pipeline_name,
                summary=_stored_summary(verdict),
            )
        except Exception as exc:
            # The verdict must still reach the pipeline, so the write cannot block it. The fact
            # survives: the recorder reads a passing gate's summary from its output variables,
            # and a failing gate's from its failure message (ListActionExecutions).
            clients.log_json(
                log,
                logging.ERROR,
                "could not store the summary in the deployment history; the recorder takes it "
                "from this action's result instead",
                table=table_name,
                execution_id=execution_id,
                error=repr(exc),
            )
    elif table_name:
        clients.log_json(
            log,
            logging.WARNING,
            "no pipeline execution ID: pass execution_id: #{codepipeline.PipelineExecutionId}",
        )
    clients.log_json(log, logging.INFO, "verdict", job_id=job.id, summary=verdict.summary)
    if verdict.passed:
        put_success(
            codepipeline,
            job.id,
            summary=verdict.summary,
            output_variables=verdict.output_variables(),
        )
    else:
        put_failure(codepipeline, job.id, verdict.render_text(top=10))
    return verdict


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (CodePipeline invoke action)."""
    from . import clients

    log = clients.logger("security_gate")
    try:
        job = PipelineJob.from_event(event)
    except JobEventError as exc:
        clients.log_json(log, logging.ERROR, "not a CodePipeline job; ignored", error=str(exc))
        return {"passed": False, "message": str(exc)}
    codepipeline = clients.client("codepipeline")
    table_name = os.environ.get("TABLE_NAME") or None
    try:
        verdict = run(
            job,
            codepipeline=codepipeline,
            dynamodb=clients.client("dynamodb") if table_name else None,
            table_name=table_name,
        )
    except Exception as exc:  # the job must end in a result, whatever went wrong
        message = (
            f"The security gate could not run: {type(exc).__name__}: {exc}. It fails closed; "
            f"see the function's log in CloudWatch Logs."
        )
        clients.log_json(log, logging.ERROR, "gate crashed", job_id=job.id, error=repr(exc))
        put_failure(codepipeline, job.id, message)
        return {"passed": False, "message": message}
    if verdict is None:
        return {"passed": False, "message": "malformed UserParameters"}
    return {"passed": verdict.passed, "summary": verdict.summary}
