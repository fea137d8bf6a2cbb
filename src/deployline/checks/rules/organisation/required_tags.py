"""DL701: a taggable resource without the required tags."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, ClassVar

from deployline.checks import data
from deployline.checks.intrinsics import get_path, is_intrinsic
from deployline.checks.model import Hit, Option, Rule, Severity
from deployline.checks.template import Resource, Template

DEFAULT_REQUIRED = ("Environment", "Project", "ManagedBy")
_SAM_GLOBALS = {
    "AWS::Serverless::Function": "Function",
    "AWS::Serverless::Api": "Api",
    "AWS::Serverless::HttpApi": "HttpApi",
    "AWS::Serverless::StateMachine": "StateMachine",
    "AWS::Serverless::SimpleTable": "SimpleTable",
}


@lru_cache(maxsize=1)
def taggable_types() -> frozenset[str]:
    return frozenset(str(t) for t in data.items("taggable_resource_types"))


def _tag_keys(raw: Any) -> set[str] | None:
    """Tag keys of a Tags value (list of {Key, Value} or a map); None when an intrinsic hides
    the list itself."""
    if raw is None:
        return set()
    if is_intrinsic(raw):
        return None
    if isinstance(raw, dict):
        return {str(k) for k in raw}
    keys: set[str] = set()
    if isinstance(raw, list):
        for item in raw:
            if is_intrinsic(item):
                return None
            key = get_path(item, "Key")
            if isinstance(key, str):
                keys.add(key)
            elif key is not None:
                return None
    return keys


class RequiredTags(Rule):
    """Taggable = the resource types whose CloudFormation schema has a Tags property (a data
    file of the CI/CD and container-service types, SAM included; SAM Globals tags are
    inherited). Tag keys are case-sensitive, as in AWS. Tags that a CDK Aspect adds are in the
    synthesized template and count; stack-level tags applied at deploy time are not in the
    template and do not. A Tags list computed by an intrinsic is UNKNOWN. The required keys are
    configurable: option `required_tags`."""

    id = "DL701"
    severity = Severity.MEDIUM
    family = "Organisation"
    seed = "000 §8, 001 §10"
    title = "Taggable resource without the required tags"
    resource_types = tuple(sorted(taggable_types()))
    options_definition: ClassVar[Mapping[str, Option]] = {
        "required_tags": Option("list", DEFAULT_REQUIRED, "the tag keys every resource carries")
    }
    rationale = (
        "Untagged resources cannot be attributed to a project, an environment or an owner: "
        "cost reports, clean-up and access policies based on tags all miss them."
    )
    remediation = (
        "Tag every taggable resource with Environment, Project and ManagedBy (a CDK "
        "`Tags.of(app).add(...)` does it for a whole app)."
    )
    fix_example = """\
ArtifactBucket:
  Type: AWS::S3::Bucket
  Properties:
    Tags:
      - {Key: Environment, Value: !Ref Environment}
      - {Key: Project, Value: shop}
      - {Key: ManagedBy, Value: deployline}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        required: tuple[str, ...] = self.options["required_tags"]
        taggable = taggable_types()
        sam_globals = template.data.get("Globals")
        for res in template.resources.values():
            if res.type not in taggable:
                continue
            keys = self._keys(res, sam_globals)
            if keys is None:
                yield self.unknown(
                    res.logical_id, "Properties.Tags", "the tags are computed by an intrinsic"
                )
                continue
            missing = [t for t in required if t not in keys]
            if missing:
                yield self.hit(
                    res.logical_id,
                    "Properties.Tags",
                    f"missing required tag{'s' if len(missing) > 1 else ''}: " + ", ".join(missing),
                )

    @staticmethod
    def _keys(res: Resource, sam_globals: Any) -> set[str] | None:
        raw = res.properties.get("Tags", res.properties.get("tags"))
        keys = _tag_keys(raw)
        section = _SAM_GLOBALS.get(res.type)
        if section is not None and keys is not None:
            inherited = _tag_keys(get_path(sam_globals, section, "Tags"))
            if inherited is None:
                return None
            keys |= inherited
        return keys
