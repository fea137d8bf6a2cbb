"""CodePipeline structure: stages, actions, their order, and which action produced an artifact.

Order follows the catalog: by stage, then by RunOrder (default 1) within a stage; two actions in the
same stage with the same RunOrder run in parallel, and neither is before the other. The order in
which actions are listed does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployline.checks.intrinsics import get_path, int_of, literal_str

if TYPE_CHECKING:
    from deployline.checks.template import Resource, Template


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

    @property
    def path(self) -> str:
        return f"Properties.Stages[{self.stage_index}].Actions[{self.index}]"

    @property
    def label(self) -> str:
        return f"{self.stage}/{self.name}"

    def config(self, key: str) -> Any:
        return self.configuration.get(key)


@dataclass
class Stage:
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

    def actions_after(self, a: Action) -> list[Action]:
        return [b for b in self.actions if self.before(a, b)]

    def of_category(self, category: str) -> list[Action]:
        return [a for a in self.actions if a.category == category]

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

    @property
    def deploy_stages(self) -> list[Stage]:
        return [s for s in self.stages if any(a.category == "Deploy" for a in s.actions)]


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


def parse_pipeline(resource: Resource) -> Pipeline:
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
        actions: list[Action] = []
        if not isinstance(actions_raw, list):
            pipeline.complete = False
            actions_raw = []
        for a_index, action in enumerate(actions_raw):
            if not isinstance(action, dict):
                pipeline.complete = False
                continue
            type_id = action.get("ActionTypeId")
            category = _type_field(type_id, "Category")
            if category is None:
                pipeline.complete = False
            run_order = int_of(action.get("RunOrder"))
            configuration = action.get("Configuration")
            actions.append(
                Action(
                    name=literal_str(action.get("Name")) or f"action{a_index}",
                    stage=stage_name,
                    stage_index=s_index,
                    index=a_index,
                    run_order=run_order if run_order is not None else 1,
                    category=category,
                    owner=_type_field(type_id, "Owner"),
                    provider=_type_field(type_id, "Provider"),
                    version=literal_str(get_path(type_id, "Version")),
                    configuration=configuration if isinstance(configuration, dict) else {},
                    input_artifacts=_artifact_names(action.get("InputArtifacts")),
                    output_artifacts=_artifact_names(action.get("OutputArtifacts")),
                    role_arn=action.get("RoleArn"),
                    namespace=literal_str(action.get("Namespace")),
                    raw=action,
                )
            )
        pipeline.stages.append(Stage(name=stage_name, index=s_index, actions=actions, raw=stage))
    return pipeline


def parse_pipelines(template: Template) -> list[Pipeline]:
    return [parse_pipeline(r) for r in template.of_type("AWS::CodePipeline::Pipeline")]
