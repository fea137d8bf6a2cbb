"""DL125: a pipeline's role may not read and write its artifact bucket, or use its key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployline.checks.iam import may_perform, role_id_of, statements_of
from deployline.checks.intrinsics import as_list, get_path, literal_str, ref_target, render
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Resource, Template

S3_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject")
KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
OBJECT_KEY = "deployline-artifact/key"


def bucket_object_arns(template: Template, location: Any) -> list[str] | None:
    """The ways a policy may write an object ARN of the artifact bucket, for matching Resource
    entries (rendered: `${Bucket.Arn}/k`, `arn:${AWS::Partition}:s3:::${Bucket}/k`, ...). None when
    the location is hidden behind an intrinsic the template does not resolve."""
    target = ref_target(location)
    names: list[str] = []
    arns: list[str] = []
    if target is not None:
        res = template.get(target)
        if res is not None:
            names = [f"${{{target}}}"]
            name = literal_str(res.prop("BucketName"))
            if name:
                names.append(name)
            arns.append(f"${{{target}.Arn}}/{OBJECT_KEY}")
        elif template.is_parameter(target):
            names = [f"${{{target}}}"]
            default = literal_str(template.parameter_default(target))
            if default:
                names.append(default)
        else:
            return None
    else:
        text = literal_str(location)
        if text is None:
            return None
        names = [text]
        for bucket in template.of_type("AWS::S3::Bucket"):
            if literal_str(bucket.prop("BucketName")) == text:
                names.append(f"${{{bucket.logical_id}}}")
                arns.append(f"${{{bucket.logical_id}.Arn}}/{OBJECT_KEY}")
    for name in names:
        for partition in ("aws", "${AWS::Partition}", "aws-cn", "aws-us-gov"):
            arns.append(f"arn:{partition}:s3:::{name}/{OBJECT_KEY}")
    return arns


def key_arns(template: Template, key_id: Any) -> tuple[list[str], Resource | None]:
    """Rendered ways a policy may name the store's key, and the key resource when in-template."""
    target = ref_target(key_id)
    key = template.get(target) if target else None
    if key is not None and key.type in {"AWS::KMS::Key", "AWS::KMS::Alias"}:
        if key.type == "AWS::KMS::Alias":
            aliased = template.get(ref_target(key.prop("TargetKeyId")))
            if aliased is not None:
                key = aliased
        lid = key.logical_id
        return [f"${{{lid}.Arn}}", f"${{{lid}}}", f"${{{target}}}", f"${{{target}.Arn}}"], key
    return [render(key_id)], None


def key_policy_grants(key: Resource, role_id: str, action: str) -> bool:
    """Does the key policy itself allow the role (named by reference or by its ARN) `action`?"""
    for st in statements_of(key.prop("KeyPolicy"), "Properties.KeyPolicy"):
        if not st.allows or not st.covers_action(action):
            continue
        principal = st.raw.get("Principal")
        named = as_list(get_path(principal, "AWS")) if isinstance(principal, dict) else []
        if any(ref_target(p) == role_id or f"${{{role_id}.Arn}}" in render(p) for p in named):
            return True
    return False


class PipelineRoleArtifacts(Rule):
    id = "DL125"
    severity = Severity.HIGH
    family = "Security"
    seed = "001 §7"
    title = "Pipeline role cannot read and write its artifacts or use their key"
    resource_types = ("AWS::CodePipeline::Pipeline", "AWS::IAM::Role")
    rationale = (
        "CodePipeline moves every artifact through its artifact bucket with the pipeline's role: "
        "without s3:GetObject, s3:GetObjectVersion and s3:PutObject there, or kms:Decrypt and "
        "kms:GenerateDataKey on the store's key, the first execution fails with AccessDenied."
    )
    remediation = (
        "Allow the pipeline role s3:GetObject, s3:GetObjectVersion and s3:PutObject on "
        "'<artifact bucket ARN>/*', and kms:Decrypt and kms:GenerateDataKey* on the artifact "
        "store's key (in the role's policy or the key policy)."
    )
    fix_example = """\
- Effect: Allow
  Action: [s3:GetObject, s3:GetObjectVersion, s3:PutObject]
  Resource: !Sub "${ArtifactBucket.Arn}/*"
- Effect: Allow
  Action: [kms:Decrypt, kms:GenerateDataKey*]
  Resource: !GetAtt ArtifactKey.Arn
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            role_value = pipeline.role_arn
            if role_value is None:
                continue
            role = role_id_of(template, role_value)
            if role is None:
                yield self.unknown(
                    pipeline.logical_id,
                    "Properties.RoleArn",
                    "the pipeline's role is not defined in this template; cannot check its "
                    "access to the artifact store",
                )
                continue
            for path, store in pipeline.artifact_stores:
                yield from self._store(template, pipeline.logical_id, role, path, store)

    def _store(
        self, template: Template, pipeline: str, role: str, path: str, store: dict[str, Any]
    ) -> Iterator[Hit]:
        arns = bucket_object_arns(template, store.get("Location"))
        if arns is None:
            yield self.unknown(
                role,
                "Properties",
                f"the artifact bucket of {pipeline} is computed; cannot check the role's access",
            )
        else:
            missing, hidden = self._answers(template, role, S3_ACTIONS, arns)
            if missing:
                yield self.hit(
                    role,
                    "Properties",
                    f"the role of {pipeline} may not {', '.join(missing)} on its artifact bucket",
                )
            elif hidden:
                yield self.unknown(
                    role,
                    "Properties",
                    f"a managed policy this template does not show decides {', '.join(hidden)} "
                    f"on the artifact bucket of {pipeline}",
                )
        key_id = get_path(store, "EncryptionKey", "Id")
        if key_id is None:
            return
        text = literal_str(key_id)
        if text is not None and text.startswith("alias/aws/"):
            return  # an AWS managed key: its key policy admits the account's principals via S3
        wanted, key = key_arns(template, key_id)
        missing, hidden = self._answers(template, role, KMS_ACTIONS, wanted)
        if key is not None:
            missing = [a for a in missing if not key_policy_grants(key, role, a)]
        elif missing:
            hidden = hidden + missing
            missing = []
        if missing:
            yield self.hit(
                role,
                "Properties",
                f"the role of {pipeline} may not {', '.join(missing)} with the artifact "
                f"store's key {render(key_id)}",
            )
        elif hidden:
            yield self.unknown(
                role,
                "Properties",
                f"the key {render(key_id)} or a managed policy is outside this template; cannot "
                f"tell whether the role may {', '.join(hidden)}",
            )

    @staticmethod
    def _answers(
        template: Template, role: str, actions: tuple[str, ...], resources: list[str]
    ) -> tuple[list[str], list[str]]:
        missing: list[str] = []
        hidden: list[str] = []
        for action in actions:
            answer = may_perform(template, role, action, resources)
            if answer is False:
                missing.append(action)
            elif answer is None:
                hidden.append(action)
        return missing, hidden
