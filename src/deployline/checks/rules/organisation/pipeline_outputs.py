"""DL704: a template with a pipeline that does not output what its users need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployline.checks.events import pipeline_notification_topics
from deployline.checks.intrinsics import get_path, referenced_names, render, sub_variables
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


def _getatt(value: Any) -> tuple[str, str] | None:
    if isinstance(value, dict) and len(value) == 1 and "Fn::GetAtt" in value:
        arg = value["Fn::GetAtt"]
        if isinstance(arg, str) and "." in arg:
            logical, attr = arg.split(".", 1)
            return logical, attr
        if isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg):
            return arg[0], arg[1]
    return None


def _plain_refs(value: Any) -> set[str]:
    """Names that `value` uses by their Ref value: `Ref X`, or `${X}` (no attribute) in a Sub,
    at any depth (a Join or a Sub that builds a console URL around the name counts)."""
    out: set[str] = set()
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if len(item) == 1 and isinstance(item.get("Ref"), str):
                out.add(item["Ref"])
                continue
            if len(item) == 1 and "Fn::Sub" in item:
                arg = item["Fn::Sub"]
                text = arg if isinstance(arg, str) else arg[0] if isinstance(arg, list) else None
                local = arg[1] if isinstance(arg, list) and len(arg) > 1 else {}
                if isinstance(text, str):
                    out |= {n for n in sub_variables(text) if "." not in n and n not in local}
                if isinstance(local, dict):
                    stack.extend(local.values())
                continue
            if len(item) == 1 and "Fn::GetAtt" in item:
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


def outputs_name_of(value: Any, logical_id: str) -> bool:
    """An output value that is (or contains) the pipeline name: Ref or ${Pipeline}. A GetAtt
    (Pipeline.Version) is not the name."""
    return logical_id in _plain_refs(value)


def outputs_repository_uri(value: Any, logical_id: str) -> bool:
    """GetAtt Repo.RepositoryUri, or a Sub/Join building <account>.dkr.ecr.<region>...<repo>."""
    if _getatt(value) == (logical_id, "RepositoryUri"):
        return True
    text = render(value)
    return ".dkr.ecr." in text and logical_id in referenced_names(value)


def outputs_topic_arn(value: Any, logical_id: str) -> bool:
    """Ref Topic (its ARN), GetAtt Topic.TopicArn, or a Sub that is exactly `${Topic}` or
    `${Topic.TopicArn}`."""
    if isinstance(value, dict) and value.get("Ref") == logical_id:
        return True
    if _getatt(value) == (logical_id, "TopicArn"):
        return True
    if isinstance(value, dict) and len(value) == 1 and "Fn::Sub" in value:
        arg = value["Fn::Sub"]
        text = arg if isinstance(arg, str) else arg[0] if isinstance(arg, list) and arg else None
        if isinstance(text, str):
            return text.strip() in ("${" + logical_id + "}", "${" + logical_id + ".TopicArn}")
    return False


class PipelineOutputs(Rule):
    """Template-level, reported on each pipeline: Outputs must include the pipeline's name
    (Ref, a Sub using it, or the same expression as the pipeline's `Name`), the URI of every
    ECR repository in the template (GetAtt RepositoryUri, or a Sub building the registry URI;
    a bare Ref is only the name), and the ARN of the notification topic (topics that receive
    pipeline notifications; when none is wired, every topic) as Ref or GetAtt TopicArn."""

    id = "DL704"
    severity = Severity.LOW
    family = "Organisation"
    seed = "000 §9"
    title = "Pipeline template without outputs for its name, repository URI and topic ARN"
    resource_types = (
        "AWS::CodePipeline::Pipeline",
        "AWS::ECR::Repository",
        "AWS::SNS::Topic",
    )
    rationale = (
        "Scripts, other stacks and people need the pipeline name, the image repository URI and "
        "the topic ARN; without outputs they copy them from the console or guess."
    )
    remediation = (
        "Add Outputs: the pipeline (Ref), the repository (GetAtt RepositoryUri) and the "
        "notification topic (Ref), with Export names if other stacks use them."
    )
    fix_example = """\
Outputs:
  PipelineName: {Value: !Ref Pipeline}
  RepositoryUri: {Value: !GetAtt Repository.RepositoryUri}
  NotificationTopicArn: {Value: !Ref AlertTopic}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        pipelines = template.pipelines
        if not pipelines:
            return
        values = [get_path(o, "Value") for o in template.outputs.values() if isinstance(o, dict)]
        missing: list[str] = []
        for repo in template.of_type("AWS::ECR::Repository"):
            if not any(outputs_repository_uri(v, repo.logical_id) for v in values):
                missing.append(f"the URI of repository {repo.logical_id}")
        topics = sorted(pipeline_notification_topics(template)) or [
            t.logical_id for t in template.of_type("AWS::SNS::Topic")
        ]
        for topic in topics:
            if not any(outputs_topic_arn(v, topic) for v in values):
                missing.append(f"the ARN of topic {topic}")
        for pipeline in pipelines:
            gaps = list(missing)
            name = pipeline.resource.prop("Name")
            resolved = {repr(template.resolve(v)) for v in values}
            same_as_name = name is not None and repr(template.resolve(name)) in resolved
            if not same_as_name and not any(
                outputs_name_of(v, pipeline.logical_id) for v in values
            ):
                gaps.insert(0, "the pipeline name")
            if gaps:
                yield self.hit(
                    pipeline.logical_id,
                    "Outputs",
                    "the template does not output " + "; ".join(gaps),
                )
