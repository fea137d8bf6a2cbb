"""CodePipeline structure: stages, actions, their order, and what each action deploys.

Order follows the catalog: by stage, then by RunOrder (default 1) within a stage; two actions in the
same stage with the same RunOrder run in parallel, and neither is before the other. The order in
which actions are listed does not matter.

What deploys (`Action.deploy`):
- a Deploy-category action deploys, except a CloudFormation action that only prepares or deletes
  (`ActionMode` CHANGE_SET_REPLACE, DELETE_ONLY): CREATE_UPDATE, REPLACE_ON_FAILURE and
  CHANGE_SET_EXECUTE deploy, whatever the provider carrying them;
- a CodeBuild action whose project's inline buildspec runs a deploy command (`cdk deploy`,
  `aws cloudformation deploy`, `aws ecs update-service`, `kubectl apply`, `helm upgrade`, ...);
- a deploy whose target is the stack that holds the pipeline (CloudFormation `StackName` is
  `!Ref AWS::StackName` or the stack's own name from the cloud assembly manifest; `cdk deploy` of
  only that stack) updates the pipeline itself: `Deploy.SELF_UPDATE`, not an environment deploy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from deployline.checks.intrinsics import get_path, int_of, literal_str, ref_target

if TYPE_CHECKING:
    from deployline.checks.template import Lookup, Resource, Template

#: CloudFormation action modes that change no running stack; every other mode deploys
#: (CREATE_UPDATE, REPLACE_ON_FAILURE, CHANGE_SET_EXECUTE, and any mode AWS adds).
PREPARING_MODES = frozenset({"CHANGE_SET_REPLACE", "DELETE_ONLY"})
CLOUDFORMATION_PROVIDERS = frozenset({"CloudFormation", "CloudFormationStackSet",
                                      "CloudFormationStackInstances"})  # fmt: skip

# A deploy command at a command position (line start, after ; & | ( or a prefix word).
_CMD = r"(?:^|[;&|(`]|\b(?:sudo|then|do|else|exec|time|env)\b)\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*"
_DEPLOY_COMMANDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(_CMD + pattern, re.MULTILINE))
    for label, pattern in (
        (
            "cdk deploy",
            r"(?:npx\s+(?:--yes\s+|-y\s+)?)?(?:cdk|aws-cdk)(?:@\S+)?\b"
            r"[^\n;&|]*?\sdeploy\b",
        ),
        (
            "aws cloudformation",
            r"aws\s+cloudformation\s+(?:deploy|create-stack|update-stack|"
            r"execute-change-set|create-stack-instances|update-stack-set)\b",
        ),
        ("aws ecs update-service", r"aws\s+ecs\s+(?:update-service|create-service)\b"),
        ("aws deploy create-deployment", r"aws\s+deploy\s+create-deployment\b"),
        ("aws lambda update-function-code", r"aws\s+lambda\s+update-function-code\b"),
        (
            "kubectl",
            r"kubectl\s+(?:[^\n;&|]*?\s)?(?:apply|replace|create|set\s+image|"
            r"rollout\s+restart)\b",
        ),
        ("helm", r"helm\s+(?:[^\n;&|]*?\s)?(?:upgrade|install)\b"),
        ("sam deploy", r"sam\s+deploy\b"),
        ("serverless deploy", r"(?:serverless|sls)\s+deploy\b"),
        ("terraform apply", r"terraform\s+(?:-chdir=\S+\s+)?apply\b"),
        ("copilot deploy", r"copilot\s+(?:svc\s+|job\s+|env\s+)?deploy\b"),
        ("pulumi up", r"pulumi\s+up\b"),
    )
)
_CDK_DEPLOY_ARGS = re.compile(r"\sdeploy\b(?P<args>[^\n;&|]*)")


class Deploy(Enum):
    """What an action does to a running system."""

    NONE = "none"
    ENVIRONMENT = "environment"  # ships the application or its infrastructure somewhere
    SELF_UPDATE = "self-update"  # updates the stack that holds the pipeline


@dataclass
class Action:
    name: str
    stage: str
    stage_index: int
    index: int  # position in the stage's Actions list
    run_order: int
    category: str | None  # None when the template hides it behind an intrinsic
    owner: str | None
    provider: str | None
    version: str | None
    configuration: dict[str, Any]
    input_artifacts: list[str]
    output_artifacts: list[str]
    role_arn: Any
    namespace: str | None
    raw: dict[str, Any]
    deploy: Deploy = Deploy.NONE
    deploy_reason: str = ""  # what makes it a deploy (for messages)

    @property
    def path(self) -> str:
        return f"Properties.Stages[{self.stage_index}].Actions[{self.index}]"

    @property
    def label(self) -> str:
        return f"{self.stage}/{self.name}"

    @property
    def deploys(self) -> bool:
        """Does the action deploy to an environment (not the pipeline's own update)?"""
        return self.deploy is Deploy.ENVIRONMENT

    def config(self, key: str) -> Any:
        return self.configuration.get(key)

    @property
    def is_codebuild(self) -> bool:
        return self.provider == "CodeBuild"

    @property
    def is_lambda_invoke(self) -> bool:
        return self.category == "Invoke" and self.provider == "Lambda"

    @property
    def is_manual_approval(self) -> bool:
        return self.category == "Approval" and self.provider in (None, "Manual")

    @property
    def is_test(self) -> bool:
        """A Test-category action, or a Lambda Invoke (a smoke or integration test)."""
        return self.category == "Test" or self.is_lambda_invoke


@dataclass
class Stage:
    """A stage of a pipeline parsed from a template (the spec of a stage deployline builds is
    `deployline.stages.StageSpec`)."""

    name: str
    index: int
    actions: list[Action]
    raw: dict[str, Any]

    @property
    def path(self) -> str:
        return f"Properties.Stages[{self.index}]"


@dataclass
class Pipeline:
    resource: Resource
    stages: list[Stage] = field(default_factory=list)
    complete: bool = True  # False when stages or actions are hidden behind intrinsics

    @property
    def logical_id(self) -> str:
        return self.resource.logical_id

    @property
    def name(self) -> str:
        """The pipeline's literal Name, else its logical ID."""
        return literal_str(self.resource.prop("Name")) or self.logical_id

    @property
    def actions(self) -> list[Action]:
        return [a for s in self.stages for a in s.actions]

    @staticmethod
    def before(a: Action, b: Action) -> bool:
        """True when `a` finishes before `b` starts (earlier stage, or lower RunOrder)."""
        if a.stage_index != b.stage_index:
            return a.stage_index < b.stage_index
        return a.run_order < b.run_order

    def actions_before(self, b: Action) -> list[Action]:
        return [a for a in self.actions if self.before(a, b)]

    @property
    def deploy_actions(self) -> list[Action]:
        """Actions that deploy to an environment, in pipeline order."""
        return [a for a in self.actions if a.deploys]

    @property
    def deploy_stages(self) -> list[Stage]:
        """Stages that deploy to an environment (the pipeline's self-update is not one)."""
        return [s for s in self.stages if any(a.deploys for a in s.actions)]

    def producer_of(self, artifact: str) -> Action | None:
        for action in self.actions:
            if artifact in action.output_artifacts:
                return action
        return None

    @property
    def role_arn(self) -> Any:
        return self.resource.prop("RoleArn")

    @property
    def artifact_stores(self) -> list[tuple[str, dict[str, Any]]]:
        """(property path, ArtifactStore mapping) for ArtifactStore and each ArtifactStores item."""
        out: list[tuple[str, dict[str, Any]]] = []
        single = self.resource.prop("ArtifactStore")
        if isinstance(single, dict):
            out.append(("Properties.ArtifactStore", single))
        many = self.resource.prop("ArtifactStores")
        if isinstance(many, list):
            for i, item in enumerate(many):
                store = get_path(item, "ArtifactStore")
                if isinstance(store, dict):
                    out.append((f"Properties.ArtifactStores[{i}].ArtifactStore", store))
        return out


def _artifact_names(value: Any) -> list[str]:
    out = []
    if isinstance(value, list):
        for item in value:
            name = literal_str(get_path(item, "Name"))
            if name:
                out.append(name)
    return out


def _type_field(type_id: Any, key: str) -> str | None:
    return literal_str(get_path(type_id, key))


def _action(raw: dict[str, Any], stage: str, s_index: int, a_index: int) -> Action:
    type_id = raw.get("ActionTypeId")
    run_order = int_of(raw.get("RunOrder"))
    configuration = raw.get("Configuration")
    return Action(
        name=literal_str(raw.get("Name")) or f"action{a_index + 1}",
        stage=stage,
        stage_index=s_index,
        index=a_index,
        run_order=run_order if run_order is not None else 1,
        category=_type_field(type_id, "Category"),
        owner=_type_field(type_id, "Owner"),
        provider=_type_field(type_id, "Provider"),
        version=literal_str(get_path(type_id, "Version")),
        configuration=configuration if isinstance(configuration, dict) else {},
        input_artifacts=_artifact_names(raw.get("InputArtifacts")),
        output_artifacts=_artifact_names(raw.get("OutputArtifacts")),
        role_arn=raw.get("RoleArn"),
        namespace=literal_str(raw.get("Namespace")),
        raw=raw,
    )


def parse_pipeline(resource: Resource, template: Template | None = None) -> Pipeline:
    """The pipeline of `resource`; with `template`, each action's `deploy` is classified (a
    CodeBuild action's buildspec and the stack's own name come from the template)."""
    pipeline = Pipeline(resource=resource)
    stages = resource.prop("Stages")
    if not isinstance(stages, list):
        pipeline.complete = False
        return pipeline
    for s_index, stage in enumerate(stages):
        if not isinstance(stage, dict):
            pipeline.complete = False
            continue
        stage_name = literal_str(stage.get("Name")) or f"stage{s_index}"
        actions_raw = stage.get("Actions")
        if not isinstance(actions_raw, list):
            pipeline.complete = False
            actions_raw = []
        actions: list[Action] = []
        for a_index, raw in enumerate(actions_raw):
            if not isinstance(raw, dict):
                pipeline.complete = False
                continue
            action = _action(raw, stage_name, s_index, a_index)
            if action.category is None:
                pipeline.complete = False
            if template is not None:
                action.deploy, action.deploy_reason = classify_deploy(template, action)
            actions.append(action)
        pipeline.stages.append(Stage(name=stage_name, index=s_index, actions=actions, raw=stage))
    return pipeline


def parse_pipelines(template: Template) -> list[Pipeline]:
    return [parse_pipeline(r, template) for r in template.of_type("AWS::CodePipeline::Pipeline")]


# What deploys ---------------------------------------------------------------------------------


def classify_deploy(template: Template, action: Action) -> tuple[Deploy, str]:
    """(what the action deploys, why) — see the module docstring."""
    if action.category == "Deploy":
        return _deploy_action(template, action)
    if action.is_codebuild:
        return _codebuild_deploy(template, action)
    return Deploy.NONE, ""


def _deploy_action(template: Template, action: Action) -> tuple[Deploy, str]:
    if action.provider not in CLOUDFORMATION_PROVIDERS:
        return Deploy.ENVIRONMENT, f"a {action.provider or 'Deploy'} deploy action"
    mode = (literal_str(action.config("ActionMode")) or "").strip().upper()
    if mode in PREPARING_MODES:
        return Deploy.NONE, f"ActionMode {mode} changes no running stack"
    if _is_own_stack(template, action.config("StackName")):
        return Deploy.SELF_UPDATE, "it updates the stack that holds the pipeline"
    return Deploy.ENVIRONMENT, f"a CloudFormation {mode or 'deploy'} action"


def _is_own_stack(template: Template, value: Any) -> bool:
    if ref_target(value) == "AWS::StackName":
        return True
    text = literal_str(template.resolve(value))
    return text is not None and template.stack_name is not None and text == template.stack_name


def _codebuild_deploy(template: Template, action: Action) -> tuple[Deploy, str]:
    from deployline.checks.buildspec import project_buildspec

    project = project_of_action(template, action).resource
    if project is None:
        return Deploy.NONE, ""
    spec = project_buildspec(project)
    if not spec.inline:
        return Deploy.NONE, ""
    for command in spec.commands or [spec.text]:
        for label, pattern in _DEPLOY_COMMANDS:
            if pattern.search(command):
                stack = template.stack_name
                if label == "cdk deploy" and _cdk_deploys_only(command, stack):
                    return Deploy.SELF_UPDATE, f"its buildspec runs cdk deploy {stack}"
                return Deploy.ENVIRONMENT, f"its buildspec runs {label}"
    return Deploy.NONE, ""


def _cdk_deploys_only(command: str, stack: str | None) -> bool:
    """Does a `cdk deploy` command name exactly the stack `stack` (and no other)?"""
    if stack is None:
        return False
    m = _CDK_DEPLOY_ARGS.search(command)
    if m is None:
        return False
    names = [w.strip("'\"") for w in m.group("args").split() if not w.startswith("-")]
    return bool(names) and all(n == stack or n.endswith("/" + stack) for n in names)


# What an action runs -----------------------------------------------------------------------------

LAMBDA_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")


def project_of_action(template: Template, action: Action) -> Lookup:
    """The `AWS::CodeBuild::Project` a CodeBuild action runs (configuration ProjectName)."""
    return template.named(action.config("ProjectName"), ("AWS::CodeBuild::Project",), "Name")


def function_of_action(template: Template, action: Action) -> Lookup:
    """The Lambda function a Lambda Invoke action calls (configuration FunctionName)."""
    return template.named(action.config("FunctionName"), LAMBDA_TYPES, "FunctionName")
