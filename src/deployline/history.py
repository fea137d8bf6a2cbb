"""`deployline history`: the deployment records and the four DORA metrics, from the table the
recorder fills; `deployline history redrive`: the recorder's dead-letter queue replayed.

    deployline history [--env ENV] [--since 30d] [--format table|json] [--endpoint-url URL]
                       [--table NAME] [--region R] [--config deployline.yaml]
    deployline history redrive [--queue NAME] [--function NAME] [--dry-run] [--endpoint-url URL]
                               [--region R] [--config deployline.yaml]

The table, queue and function names default to the ones deployline gives them
(`{prefix-}{service}-deployments-{env}` and so on, env = naming.pipeline_environment) when
deployline.yaml is readable. Records are listed newest first; the metrics are about --env, or
else the production environment. Errors (no table, no credentials, an unreachable endpoint, a bad
--since) print one line and exit 2.

boto3 and rich are imported inside the functions that use them, so `deployline --help` stays fast.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deployline.history_names import HistoryNames
from deployline.runtime import dora, records
from deployline.runtime.records import PIPELINE_SCOPE, DeploymentRecord

if TYPE_CHECKING:
    from deployline.runtime.recorder import Recorder

#: Longest --since accepted. Default: 10 years.
MAX_SINCE = timedelta(days=3650)
_SINCE = re.compile(r"^\s*(\d{1,6})\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


class HistoryError(Exception):
    """A problem the user can fix; the message says which and how."""


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def parse_since(text: str) -> timedelta:
    """`12h`, `30d`, `2w` -> a timedelta. Raises HistoryError otherwise."""
    match = _SINCE.match(text or "")
    if not match:
        raise HistoryError(
            f"--since must be a whole number followed by h, d or w (like 12h, 30d or 2w), "
            f"got {text!r}"
        )
    amount = int(match.group(1))
    if amount <= 0:
        raise HistoryError(f"--since must be positive, got {text!r}")
    span = amount * _UNITS[match.group(2).lower()]
    if span > MAX_SINCE:
        raise HistoryError(f"--since may reach back at most {MAX_SINCE.days} days, got {text!r}")
    return span


@dataclass(frozen=True)
class Target:
    """Where the records are and what the configuration says about environments."""

    table: str
    environments: tuple[str, ...] = ()
    production: str | None = None


def _configured_names(config_path: Path, *, flag: str) -> tuple[Any, HistoryNames]:
    """The configuration at `config_path` and the history's names from it; HistoryError (naming
    `flag`, the option that makes the file unnecessary) when it is missing or invalid."""
    if not config_path.is_file():
        raise HistoryError(
            f"no {flag} given and {config_path} not found: pass {flag} or --config "
            f"path/to/deployline.yaml"
        )
    from deployline.config import ConfigError, load_config
    from deployline.naming import Namer

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else "invalid"
        raise HistoryError(f"{config_path} is invalid ({first}); fix it or pass {flag}") from None
    namer = Namer(config.service, config.naming.pipeline_environment, config.naming.prefix)
    return config, HistoryNames.of(namer)


def resolve_target(*, table: str | None, config_path: Path) -> Target:
    """The table (from --table, else from deployline.yaml) and the configured environments."""
    try:
        config, names = _configured_names(config_path, flag="--table NAME")
    except HistoryError:
        if table:
            return Target(table)
        raise
    production = next(
        (e.name for e in reversed(config.environments) if config.is_production(e)), None
    )
    return Target(table or names.table, tuple(e.name for e in config.environments), production)


@dataclass(frozen=True)
class History:
    """Records (newest first) and metrics for one window."""

    table: str
    since: datetime
    until: datetime
    environment: str | None
    metrics_environment: str | None
    records: tuple[DeploymentRecord, ...]
    metrics: dora.DoraMetrics
    pipeline_records: tuple[DeploymentRecord, ...] = field(default_factory=tuple)

    @property
    def cancelled_by_self_update(self) -> tuple[DeploymentRecord, ...]:
        """Executions a self-update of the pipeline cancelled (CodePipeline restarted them)."""
        return tuple(r for r in self.pipeline_records if r.canceled_by == "self-update")

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "since": records.iso(self.since),
            "until": records.iso(self.until),
            "environment": self.environment,
            "records": [r.to_dict() for r in self.records],
            "executions": [r.to_dict() for r in self.pipeline_records],
            "metrics": self.metrics.to_dict(),
        }


def _client(region: str | None, endpoint_url: str | None, service: str = "dynamodb") -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    try:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=20,
            ),
        )
    except NoRegionError:
        raise HistoryError(
            "no AWS region: pass --region or set AWS_REGION (or a region in your AWS profile)"
        ) from None
    except ValueError as exc:  # e.g. a malformed --endpoint-url
        raise HistoryError(f"cannot create a {service} client: {exc}") from None


def _translate(
    exc: Exception, *, table: str, region: str | None, endpoint: str | None
) -> HistoryError:
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    where = f" at {endpoint}" if endpoint else (f" in {region}" if region else "")
    if isinstance(exc, records.IncompleteReadError):
        return HistoryError(f"{exc}{where}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return HistoryError(
            "no AWS credentials found: set AWS_PROFILE, run `aws configure` or "
            "`aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, EndpointConnectionError):
        return HistoryError(
            f"cannot reach DynamoDB{where}: {exc}. Check --endpoint-url/--region and your network"
        )
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if code == "ResourceNotFoundException":
            return HistoryError(
                f"table {table!r} not found{where}: deploy the pipeline stack first, or pass "
                f"--table NAME / --region"
            )
        if code in (
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "ExpiredTokenException",
            "InvalidClientTokenId",
        ):
            return HistoryError(f"AWS rejected the credentials ({code}): {message}")
        if code in ("AccessDeniedException", "AccessDenied"):
            return HistoryError(
                f"not allowed to read table {table!r}{where}: {message}. You need dynamodb:Query "
                f"and dynamodb:Scan on the table and its by-environment index"
            )
        return HistoryError(f"DynamoDB {code or 'error'}{where}: {message}")
    from botocore.exceptions import BotoCoreError

    if isinstance(exc, BotoCoreError):
        return HistoryError(f"cannot read table {table!r}{where}: {exc}")
    raise exc


def load_history(
    *,
    table: str,
    since: timedelta,
    environment: str | None = None,
    environments: Sequence[str] = (),
    production: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    now: datetime | None = None,
    dynamodb: Any = None,
) -> History:
    """Read the records that started in the window and compute the metrics.

    With `environment`, one index query; with the configured `environments`, one per
    environment; otherwise a filtered scan (the table holds a few items per execution).
    Raises HistoryError with a message the user can act on.
    """
    until = now or datetime.now(UTC)
    start = until - since
    client = dynamodb or _client(region, endpoint_url)
    names: list[str] = [environment] if environment else list(environments)
    since_text, until_text = records.iso(start), records.iso(until)
    try:
        if names:
            items: list[dict[str, Any]] = []
            for env in names:
                items += records.query_environment(
                    client, table, env, since=since_text, until=until_text
                )
            items += records.query_environment(
                client, table, PIPELINE_SCOPE, since=since_text, until=until_text
            )
        else:
            items = records.scan_records(client, table, since=since_text, until=until_text)
        env_items = [i for i in items if i.get(records.GSI_PK) != PIPELINE_SCOPE]
        shared = records.get_pipeline_records(
            client, table, {str(i["execution_id"]) for i in env_items if i.get("execution_id")}
        )
        for item in items:
            if item.get(records.GSI_PK) == PIPELINE_SCOPE and item.get("execution_id"):
                shared.setdefault(str(item["execution_id"]), item)
    except HistoryError:
        raise
    except Exception as exc:
        raise _translate(exc, table=table, region=region, endpoint=endpoint_url) from None
    joined = records.join_records(env_items, shared)
    metrics_env = environment or production
    metrics = dora.compute(joined, since=start, until=until, environment=metrics_env)
    return History(
        table=table,
        since=start,
        until=until,
        environment=environment,
        metrics_environment=metrics.environment,
        records=tuple(joined),
        metrics=metrics,
        pipeline_records=tuple(
            sorted(
                (DeploymentRecord.from_item(i) for i in shared.values()),
                key=lambda r: (r.started_at or until, r.execution_id),
                reverse=True,
            )
        ),
    )


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """`95` -> `1m 35s`, `7260` -> `2h 1m`, `200000` -> `2d 7h`; None -> `-`."""
    if seconds is None:
        return "-"
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def metric_lines(metrics: dora.DoraMetrics) -> list[tuple[str, str]]:
    """(name, value) pairs for the four metrics, 'no data' where None."""
    freq = metrics.deployment_frequency_per_day
    cfr = metrics.change_failure_rate
    return [
        (
            "Deployment frequency",
            "no data" if freq is None else f"{freq:.2f} per day ({metrics.successful} successful)",
        ),
        (
            "Lead time for changes",
            "no data"
            if metrics.lead_time_seconds is None
            else f"{format_duration(metrics.lead_time_seconds)} median "
            f"({metrics.lead_time_samples} change(s))",
        ),
        (
            "Change failure rate",
            "no data"
            if cfr is None
            else f"{cfr * 100:.1f}% ({metrics.failed} of {metrics.deployments})",
        ),
        (
            "Time to restore service",
            "no data"
            if metrics.time_to_restore_seconds is None
            else f"{format_duration(metrics.time_to_restore_seconds)} median "
            f"({metrics.restores} restore(s))",
        ),
    ]


_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "started": "yellow",
    "resumed": "yellow",
    "stopping": "yellow",
}


def render(history: History, console: Any) -> None:
    """Print the records as a table and the metrics below it (rich Console)."""
    from rich.table import Table
    from rich.text import Text

    window = f"{records.iso(history.since)} to {records.iso(history.until)}"
    table = Table(
        title=f"Deployments in {history.table} ({window})", title_justify="left", expand=False
    )
    rows: list[list[Any]] = []
    for record in history.records:
        status = record.status or "?"
        label = Text(status, style=_STATUS_STYLE.get(status, ""))
        if record.rolled_back:
            label.append(" (rolled back)", style="red")
        elif record.ecs_failed and record.status != "failed":
            label.append(" (ECS deployment failed)", style="red")
        commit = record.commit_sha[:8] if record.commit_sha else "-"
        if record.commit_message:
            commit += " " + record.commit_message.splitlines()[0][:60]
        if record.outside_pipeline:
            commit = (
                "outside the pipeline (ECS deployment " + ", ".join(record.deployment_ids) + ")"
            )
        elif record.is_rollback_execution:
            commit += " (stage rollback)"
        security = "-"
        if record.security:
            security = str(record.security.get("summary") or "")[:80] or "-"
        approver = "-"
        if record.approver:
            approver = record.approver.rsplit("/", 1)[-1]
            if record.approval_status == "rejected":
                approver += " (rejected)"
        rows.append(
            [
                record.started_at.strftime("%Y-%m-%d %H:%M") if record.started_at else "-",
                record.environment,
                label,
                format_duration(record.duration_seconds),
                Text(commit),
                Text(record.image_tag or "-"),
                Text(approver),
                Text(security),
            ]
        )
    # The first four columns never shrink (an 80-column terminal must still show "succeeded");
    # the optional ones fold, and are left out when no record has a value for them.
    columns: list[tuple[str, dict[str, Any]]] = [
        ("started", {"no_wrap": True, "min_width": 16}),
        ("env", {"style": "bold", "no_wrap": True, "min_width": 10}),
        ("status", {"no_wrap": True, "min_width": 9}),
        ("duration", {"justify": "right", "no_wrap": True, "min_width": 8}),
        ("commit", {"overflow": "fold", "max_width": 40}),
        ("image", {"overflow": "fold", "max_width": 24}),
        ("approver", {"overflow": "fold", "max_width": 28}),
        ("security", {"overflow": "fold", "max_width": 30}),
    ]
    keep = [
        index
        for index in range(len(columns))
        if index < 4 or any(str(row[index]) != "-" for row in rows)
    ]
    for index in keep:
        name, options = columns[index]
        table.add_column(name, **options)
    for row in rows:
        table.add_row(*(row[index] for index in keep))
    if history.records:
        console.print(table)
    else:
        console.print(f"No deployments recorded in {history.table} from {window}.")
    cancelled = history.cancelled_by_self_update
    if cancelled:
        console.print(
            f"{len(cancelled)} execution(s) cancelled by a self-update of the pipeline "
            "(CodePipeline restarted them on the new structure): "
            + ", ".join(r.execution_id[:8] for r in cancelled)
        )
    about = history.metrics_environment or "production (no environment flagged)"
    metrics = Table(title=f"DORA metrics: {about}", title_justify="left", show_header=False)
    metrics.add_column("metric", style="bold")
    metrics.add_column("value")
    for name, value in metric_lines(history.metrics):
        metrics.add_row(name, value)
    console.print(metrics)


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


history_app = typer.Typer(
    help="Show recorded deployments and the four DORA metrics (frequency, lead time, change "
    "failure rate, time to restore); `redrive` replays the recorder's dead-letter queue.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EndpointOption = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="AWS endpoint (e.g. a local moto server)."),
]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="AWS region. Default: your AWS configuration.")
]
ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="Path to deployline.yaml.", dir_okay=False),
]


def _error(exc: HistoryError) -> typer.Exit:
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


@history_app.callback()
def history_command(
    ctx: typer.Context,
    env: Annotated[
        str | None,
        typer.Option("--env", "-e", help="Only this environment. Default: all of them."),
    ] = None,
    since: Annotated[
        str, typer.Option("--since", help="How far back: 12h, 30d, 2w. Default: 30d.")
    ] = "30d",
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", help="table (Default) or json.", case_sensitive=False),
    ] = OutputFormat.TABLE,
    endpoint_url: EndpointOption = None,
    table: Annotated[
        str | None,
        typer.Option("--table", help="Table name. Default: the one named from deployline.yaml."),
    ] = None,
    region: RegionOption = None,
    config: ConfigOption = Path("deployline.yaml"),
) -> None:
    """Show recorded deployments and the four DORA metrics (frequency, lead time, change failure
    rate, time to restore)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console

    try:
        window = parse_since(since)
        target = resolve_target(table=table, config_path=config)
        if env and target.environments and env not in target.environments:
            raise HistoryError(
                f"--env {env!r} is not an environment in {config}; choose one of "
                f"{list(target.environments)}"
            )
        history = load_history(
            table=target.table,
            since=window,
            environment=env,
            environments=target.environments,
            production=target.production,
            region=region,
            endpoint_url=endpoint_url,
        )
    except HistoryError as exc:
        raise _error(exc) from None
    if output_format is OutputFormat.JSON:
        data = history.to_dict()
        typer.echo(
            json.dumps(
                {k: data[k] for k in ("records", "executions", "metrics")},
                indent=2,
            )
        )
        return
    render(history, Console())


def _queue_url(sqs: Any, queue: str) -> str:
    if queue.startswith(("https://", "http://")):
        return queue
    return str(sqs.get_queue_url(QueueName=queue)["QueueUrl"])


def _deployed_recorder(function: str, *, region: str | None, endpoint_url: str | None) -> Recorder:
    """The recorder, configured as the deployed function is (its environment variables)."""
    from deployline.runtime.recorder import Recorder, RecorderSettings, SettingsError

    configuration = _client(region, endpoint_url, "lambda").get_function_configuration(
        FunctionName=function
    )
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    try:
        settings = RecorderSettings.from_env(variables)
    except SettingsError as exc:
        raise HistoryError(
            f"function {function} is not configured as a deployline recorder ({exc}); pass "
            "--function with the recorder's name"
        ) from None
    return Recorder(
        settings,
        dynamodb=_client(region, endpoint_url),
        cloudwatch=_client(region, endpoint_url, "cloudwatch"),
        codepipeline=_client(region, endpoint_url, "codepipeline"),
    )


@history_app.command("redrive")
def redrive_command(
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue", help="Dead-letter queue name or URL. Default: the recorder's, by name."
        ),
    ] = None,
    function: Annotated[
        str | None,
        typer.Option(
            "--function",
            help="The recorder function whose configuration the replay uses. Default: by name.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the messages; replay and delete none.")
    ] = False,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    config: ConfigOption = Path("deployline.yaml"),
) -> None:
    """Replay the recorder's dead-letter queue through the recorder.

    Messages whose events are recorded (or malformed) are deleted; the rest stay, and the
    command says why and exits 1."""
    from deployline import redrive

    try:
        if queue is None or function is None:
            _, names = _configured_names(config, flag="--queue and --function")
            queue, function = queue or names.dead_letter_queue, function or names.recorder
        sqs = _client(region, endpoint_url, "sqs")
        try:
            url = _queue_url(sqs, queue)
            recorder = (
                None
                if dry_run
                else _deployed_recorder(function, region=region, endpoint_url=endpoint_url)
            )
            report = redrive.redrive(
                sqs=sqs, queue_url=url, recorder=recorder, dry_run=dry_run, label=queue
            )
        except HistoryError:
            raise
        except Exception as exc:
            raise _translate_redrive(exc, queue=queue, function=function) from None
    except HistoryError as exc:
        raise _error(exc) from None
    for line in report.lines():
        typer.echo(line)
    if report.kept and not dry_run:
        raise typer.Exit(1)


def _translate_redrive(exc: Exception, *, queue: str, function: str) -> HistoryError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return HistoryError(
                f"queue {queue!r} not found: deploy the pipeline stack first, or pass --queue"
            )
        if code == "ResourceNotFoundException" and exc.operation_name == (
            "GetFunctionConfiguration"
        ):
            return HistoryError(f"function {function!r} not found: pass --function")
        message = exc.response.get("Error", {}).get("Message", str(exc))
        return HistoryError(f"{exc.operation_name} failed ({code}): {message}")
    return _translate(exc, table=queue, region=None, endpoint=None)
