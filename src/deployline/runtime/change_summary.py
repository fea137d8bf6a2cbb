"""What a change set will do, for the person who approves it: a CodePipeline Lambda invoke action.

It runs between the Plan action (CloudFormation CHANGE_SET_REPLACE) and the manual approval of an
environment. UserParameters (a JSON object):

    {"stack_name": "payment-processor-service-production",   # required
     "change_set_name": "deployline-pipeline",                # required
     "region": "eu-west-1",                                   # Default: the function's own
     "role_arn": "arn:aws:iam::333333333333:role/cdk-hnb659fds-lookup-role-333333333333-eu-west-1"}
                                                              # Default: none (own account)

It describes the change set (through the environment account's read-only lookup role) and
reports, as output variables the approval shows:

    SUMMARY     one line: resources added, modified (and which are replaced), removed; IAM and
                other access-policy changes by name; the image tag before and after
    ADDED, MODIFIED, REPLACED, REMOVED, IAM   counts
    IMAGE_TAG   the image tag the change deploys

and the full list of changes in the action's execution details. An empty change set ("no
changes") is a success with SUMMARY "no changes". A change set still being created is waited for
with a continuation token; a failed one, or one that cannot be read, fails the job with the reason.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import accounts, clients, contract
from .jobs import (
    MAX_SUMMARY,
    JobEventError,
    ParameterError,
    Parameters,
    PipelineJob,
    put_failure,
    put_success,
    truncate,
)

ACTION = "deployline change summary"
#: The stack parameter that carries the image tag.
IMAGE_TAG_PARAMETER = contract.IMAGE_TAG_PARAMETER
#: The SUMMARY variable's length: the approval's custom data is limited to 500 characters.
MAX_SUMMARY_VARIABLE = 300
#: Change set statuses that mean "not created yet".
PENDING = {"CREATE_PENDING", "CREATE_IN_PROGRESS"}
#: How CloudFormation says a change set holds nothing.
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
#: Resource types that grant access; a change to one is an access change.
_ACCESS_TYPES = {
    "AWS::Lambda::Permission",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Events::EventBusPolicy",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
}
#: Properties that hold a policy; a change to one is an access change.
_POLICY_PROPERTIES = {
    "AssumeRolePolicyDocument",
    "Policies",
    "PolicyDocument",
    "KeyPolicy",
    "RepositoryPolicyText",
    "ManagedPolicyArns",
    "SecurityGroupIngress",
    "SecurityGroupEgress",
}
_EXAMPLE = (
    '{"stack_name": "svc-service-production", "change_set_name": "deployline-pipeline", '
    '"region": "eu-west-1", "role_arn": "arn:aws:iam::<account>:role/cdk-hnb659fds-lookup-role-'
    '<account>-eu-west-1"}'
)
_KEYS = ("stack_name", "change_set_name", "region", "role_arn")

_log = clients.logger("change_summary")


@dataclass(frozen=True)
class SummaryParams:
    stack_name: str
    change_set_name: str
    region: str | None = None
    role_arn: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> SummaryParams:
        params = Parameters(raw, action=ACTION, example=_EXAMPLE, known=_KEYS)
        region, role_arn = accounts.placement_parameters(params)
        return cls(
            stack_name=params.string("stack_name"),
            change_set_name=params.string("change_set_name"),
            region=region,
            role_arn=role_arn,
        )


@dataclass(frozen=True)
class Change:
    """One resource change, as the approver needs it."""

    action: str  # Add, Modify, Remove, Import, Dynamic
    logical_id: str
    resource_type: str
    replacement: str = "False"  # True, False, Conditional
    access: bool = False

    @classmethod
    def from_api(cls, entry: Mapping[str, Any]) -> Change | None:
        change = entry.get("ResourceChange") if entry.get("Type") == "Resource" else None
        if not isinstance(change, Mapping):
            return None
        resource_type = str(change.get("ResourceType", ""))
        targets = [
            d.get("Target", {}).get("Name")
            for d in change.get("Details") or ()
            if isinstance(d, Mapping)
        ]
        access = (
            resource_type.startswith("AWS::IAM::")
            or resource_type in _ACCESS_TYPES
            or any(t in _POLICY_PROPERTIES for t in targets)
        )
        return cls(
            action=str(change.get("Action", "?")),
            logical_id=str(change.get("LogicalResourceId", "?")),
            resource_type=resource_type,
            replacement=str(change.get("Replacement", "False")),
            access=access,
        )

    def describe(self) -> str:
        replaced = {"True": ", replaced", "Conditional": ", may be replaced"}.get(
            self.replacement, ""
        )
        access = ", access" if self.access else ""
        return f"{self.action} {self.logical_id} ({self.resource_type}{replaced}{access})"


@dataclass
class Summary:
    """The change set, counted and described."""

    changes: list[Change] = field(default_factory=list)
    image_before: str | None = None
    image_after: str | None = None

    def of(self, action: str) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    @property
    def replaced(self) -> list[Change]:
        return [c for c in self.changes if c.action == "Modify" and c.replacement != "False"]

    @property
    def access(self) -> list[Change]:
        return [c for c in self.changes if c.access]

    def line(self, limit: int = MAX_SUMMARY_VARIABLE) -> str:
        """One line for the approval: counts, then names where there is room."""
        if not self.changes:
            return "no changes"
        parts = [
            f"{len(self.of('Add'))} added",
            f"{len(self.of('Modify'))} modified",
            f"{len(self.of('Remove'))} removed",
        ]
        text = ", ".join(parts)
        if self.replaced:
            text += f"; replaced: {_names(self.replaced)}"
        if self.access:
            text += f"; IAM/access: {_names(self.access)}"
        if self.image_after is not None and self.image_after != self.image_before:
            text += f"; image {self.image_before or '(placeholder)'} -> {self.image_after}"
        return truncate(text, limit)

    def details(self) -> str:
        lines = [self.line(limit=MAX_SUMMARY)]
        lines.extend(c.describe() for c in self.changes)
        return truncate("\n".join(lines), MAX_SUMMARY)

    def variables(self) -> dict[str, str]:
        return {
            "SUMMARY": self.line(),
            "ADDED": str(len(self.of("Add"))),
            "MODIFIED": str(len(self.of("Modify"))),
            "REPLACED": str(len(self.replaced)),
            "REMOVED": str(len(self.of("Remove"))),
            "IAM": str(len(self.access)),
            "IMAGE_TAG": self.image_after or "",
        }


def _names(changes: Sequence[Change], most: int = 4) -> str:
    names = [c.logical_id for c in changes[:most]]
    more = len(changes) - most
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


class ChangeSetPending(Exception):
    """The change set is still being created."""


def describe(cloudformation: Any, params: SummaryParams) -> Summary:
    """DescribeChangeSet (every page) and the stack's current image tag.

    Raises ChangeSetPending while it is created, RuntimeError when it failed for a reason other
    than "no changes", and botocore's ClientError when it cannot be read.
    """
    pages: list[Mapping[str, Any]] = []
    token: str | None = None
    while True:
        kwargs = {"StackName": params.stack_name, "ChangeSetName": params.change_set_name}
        if token:
            kwargs["NextToken"] = token
        page = cloudformation.describe_change_set(**kwargs)
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
    first = pages[0]
    status = first.get("Status")
    if status in PENDING:
        raise ChangeSetPending(f"change set {params.change_set_name} is {status}")
    if status == "FAILED":
        reason = str(first.get("StatusReason", ""))
        if any(marker in reason for marker in _NO_CHANGES):
            return Summary()
        raise RuntimeError(
            f"change set {params.change_set_name} of stack {params.stack_name} FAILED: "
            f"{reason or 'no reason given'}. Look at the Plan action's details and the stack's "
            "events in the CloudFormation console."
        )
    changes = [c for page in pages for e in page.get("Changes") or () if (c := Change.from_api(e))]
    after = _parameter(first.get("Parameters"), IMAGE_TAG_PARAMETER)
    before = _current_parameter(cloudformation, params.stack_name, IMAGE_TAG_PARAMETER)
    return Summary(changes=changes, image_before=before or None, image_after=after)


def _parameter(parameters: Any, key: str) -> str | None:
    for parameter in parameters or ():
        if isinstance(parameter, Mapping) and parameter.get("ParameterKey") == key:
            value = parameter.get("ParameterValue")
            return str(value) if value is not None else None
    return None


def _current_parameter(cloudformation: Any, stack_name: str, key: str) -> str | None:
    """The parameter's value in the stack as deployed; None for a stack not created yet."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name).get("Stacks") or []
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    if not stacks or stacks[0].get("StackStatus") == "REVIEW_IN_PROGRESS":
        return None  # a change set for a new stack: nothing is deployed yet
    return _parameter(stacks[0].get("Parameters"), key)


@dataclass(frozen=True)
class Outcome:
    result: str  # succeeded, failed, continued
    message: str
    variables: dict[str, str] = field(default_factory=dict)


def run(
    job: PipelineJob,
    *,
    codepipeline: Any,
    cloudformation_for: Callable[[SummaryParams], Any],
    attempts: int = 6,
    wait: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Summarize the change set and report the job's result."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        params = SummaryParams.parse(job.user_parameters)
    except ParameterError as exc:
        put_failure(codepipeline, job.id, str(exc))
        return Outcome("failed", str(exc))
    try:
        cloudformation = cloudformation_for(params)
        for attempt in range(attempts):
            try:
                summary = describe(cloudformation, params)
                break
            except ChangeSetPending:
                if attempt == attempts - 1:
                    raise
                sleep(wait)
    except ChangeSetPending as exc:
        put_success(
            codepipeline,
            job.id,
            continuation_token=json.dumps({"v": 1, "waiting": str(exc)}),
            summary=str(exc),
        )
        return Outcome("continued", str(exc))
    except (ClientError, BotoCoreError, RuntimeError) as exc:
        where = f"stack {params.stack_name} in {params.region or 'this region'}"
        via = f" through {params.role_arn}" if params.role_arn else ""
        message = (
            f"Cannot summarize change set {params.change_set_name} of {where}{via}: {exc}. "
            "When the role cannot be assumed, bootstrap the account with `cdk bootstrap --trust "
            "<pipeline account>`."
        )
        if isinstance(exc, RuntimeError):
            message = str(exc)
        put_failure(codepipeline, job.id, message)
        return Outcome("failed", message)
    variables = summary.variables()
    put_success(codepipeline, job.id, summary=summary.details(), output_variables=variables)
    return Outcome("succeeded", variables["SUMMARY"], variables)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (CodePipeline invoke action)."""
    try:
        job = PipelineJob.from_event(event)
    except JobEventError as exc:
        clients.log_json(_log, logging.ERROR, "not a CodePipeline job; ignored", error=str(exc))
        return {"result": "ignored", "message": str(exc)}
    codepipeline = clients.client("codepipeline")

    def cloudformation_for(params: SummaryParams) -> Any:
        factory = accounts.client_factory(
            role_arn=params.role_arn,
            region=params.region,
            session_name=f"deployline-change-summary-{job.id[:20]}",
        )
        return factory("cloudformation")

    try:
        outcome = run(job, codepipeline=codepipeline, cloudformation_for=cloudformation_for)
    except Exception as exc:  # the job must end in a result, whatever went wrong
        message = f"The change summary could not run: {type(exc).__name__}: {exc}"
        clients.log_json(_log, logging.ERROR, "change summary crashed", error=repr(exc))
        put_failure(codepipeline, job.id, message)
        return {"result": "failed", "message": message}
    clients.log_json(_log, logging.INFO, "change summary", job_id=job.id, result=outcome.result)
    return {"result": outcome.result, "message": outcome.message, **outcome.variables}
