"""DL506: a deploying pipeline whose deployments nobody records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployline.checks.deployments import pipelines_with_deploy
from deployline.checks.events import (
    event_pattern,
    load_json_value,
    matches_value,
    pattern_values,
    rule_target_ids,
)
from deployline.checks.iam import Statement, role_id_of, role_permissions, statements_of
from deployline.checks.intrinsics import as_list, get_path, ref_like, referenced_names
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.pipeline import LAMBDA_TYPES
from deployline.checks.template import Resource, Template

WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem")
SAM_WRITE_POLICIES = ("DynamoDBCrudPolicy", "DynamoDBWritePolicy")
SAM_EVENT_TYPES = ("EventBridgeRule", "CloudWatchEvent")


def is_deployment_pattern(pattern: dict[str, Any] | None) -> bool:
    """Does an event pattern match pipeline or deployment state changes?"""
    if pattern is None:
        return False
    sources = pattern_values(pattern, "source")
    if sources is None:
        return False
    if matches_value(sources, "aws.codepipeline") or matches_value(sources, "aws.codedeploy"):
        return True
    if matches_value(sources, "aws.ecs"):
        types = pattern_values(pattern, "detail-type")
        return types is not None and matches_value(types, "ECS Deployment State Change")
    return False


def recorder_functions(template: Template) -> set[str]:
    """Functions invoked by an EventBridge rule on pipeline or deployment state changes."""
    functions = {f.logical_id for f in template.of_type(*LAMBDA_TYPES)}
    out: set[str] = set()
    for rule in template.of_type("AWS::Events::Rule"):
        if is_deployment_pattern(event_pattern(rule)):
            out |= rule_target_ids(template, rule) & functions
    for fn in template.of_type("AWS::Serverless::Function"):
        events = fn.prop("Events")
        for event in events.values() if isinstance(events, dict) else []:
            if get_path(event, "Type") in SAM_EVENT_TYPES:
                pattern = load_json_value(get_path(event, "Properties", "Pattern"))
                if is_deployment_pattern(pattern if isinstance(pattern, dict) else None):
                    out.add(fn.logical_id)
    return out


def _covers_table(statement: Statement, table: str, fn_references_table: bool) -> bool:
    for resource in statement.resources:
        if resource == "*":
            if fn_references_table:
                return True
        elif table in referenced_names(resource):
            return True
    return False


def writes_table(template: Template, fn: Resource, table: str) -> bool | None:
    """True when the function may write items to `table`; None when its role is elsewhere."""
    references = table in template.references.get(fn.logical_id, set())
    statements: list[Statement] = []
    role_value = fn.prop("Role")
    if fn.type == "AWS::Serverless::Function" and role_value is None:
        for policy in as_list(fn.prop("Policies")):
            if not isinstance(policy, dict):
                continue
            for name in SAM_WRITE_POLICIES:
                if name in policy and ref_like(get_path(policy, name, "TableName")) == table:
                    return True
            statements += statements_of(policy, "Properties.Policies")
    else:
        role = role_id_of(template, role_value)
        if role is None:
            return None
        statements = role_permissions(template, role).statements
    for action in WRITE_ACTIONS:
        for st in statements:
            if st.allows and st.covers_action(action) and _covers_table(st, table, references):
                return True
    return False


class DeploymentRecord(Rule):
    """Template-level, reported on each pipeline that has a Deploy action: some
    `AWS::DynamoDB::Table` must be written (PutItem/UpdateItem/BatchWriteItem allowed on it,
    or on `*` by a function that references the table) by a Lambda function that an
    EventBridge rule on aws.codepipeline / aws.codedeploy events (or ECS Deployment State
    Change) invokes; SAM EventBridgeRule events and DynamoDB write policy templates count.
    A recorder whose role is outside the template is UNKNOWN."""

    id = "DL506"
    severity = Severity.LOW
    family = "Monitoring and audit"
    seed = "000 §5"
    title = "No deployment record"
    resource_types = (
        "AWS::CodePipeline::Pipeline",
        "AWS::DynamoDB::Table",
        "AWS::Lambda::Function",
        "AWS::Events::Rule",
    )
    rationale = (
        "Without a record of what was deployed where and when, incidents start with "
        "archaeology, and deployment frequency, lead time and failure rate cannot be measured."
    )
    remediation = (
        "Record deployments: an EventBridge rule on pipeline/deployment state changes invoking "
        "a function that writes each event to a DynamoDB table."
    )
    fix_example = """\
DeploymentEvents:
  Type: AWS::Events::Rule
  Properties:
    EventPattern:
      source: [aws.codepipeline]
      detail-type: [CodePipeline Pipeline Execution State Change]
    Targets: [{Id: recorder, Arn: !GetAtt Recorder.Arn}]
# Recorder: a Lambda function whose role allows dynamodb:PutItem on !GetAtt DeploymentsTable.Arn
"""

    def check(self, template: Template) -> Iterator[Hit]:
        pipelines = pipelines_with_deploy(template)
        if not pipelines:
            return
        tables = [t.logical_id for t in template.of_type("AWS::DynamoDB::Table")]
        unknown = False
        if tables:
            for fn_id in sorted(recorder_functions(template)):
                fn = template.get(fn_id)
                assert fn is not None
                for table in tables:
                    state = writes_table(template, fn, table)
                    if state is True:
                        return
                    unknown = unknown or state is None
        for pipeline in pipelines:
            if unknown:
                yield self.unknown(
                    pipeline.logical_id,
                    "",
                    "a function invoked on deployment events has a role outside this template; "
                    "cannot tell whether it records deployments",
                )
            else:
                yield self.hit(
                    pipeline.logical_id,
                    "",
                    "no DynamoDB table is written by a function that an EventBridge rule on "
                    "pipeline or deployment state changes invokes: deployments are not recorded",
                )
