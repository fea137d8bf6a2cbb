"""IAM for pipeline actions: one role per action, trusted by the pipeline's role only.

CDK's stock actions add statements with `Resource: "*"` to whatever role they are given (the ECS
deploy action allows `ecs:UpdateService` and `iam:PassRole` on everything, the Lambda invoke action
`lambda:ListFunctions`). deployline gives each action its own role whose only policy is inline and
written here, scoped to ARNs, and hands the action an immutable view of it, so CDK cannot widen it.
An inline policy also means no separate `AWS::IAM::Policy` that the pipeline could race (DL706).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Acknowledgment, Aws, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deployline import defaults
from deployline.constructs import compliance


class ActionRole(Construct):
    """The role one pipeline action runs with.

    Attributes:
        role: the role (trusts `pipeline_role` only; policy inline).
        for_action: an immutable view of `role` to pass as an action's `role=`; grants that CDK
            actions try to add to it are dropped.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role_name: str,
        pipeline_role: iam.IRole,
        statements: Sequence[iam.PolicyStatement],
        description: str,
    ) -> None:
        """
        Args:
            role_name: the physical name.
            pipeline_role: the pipeline's service role, the only principal that may assume it.
            statements: everything the action may do, scoped to ARNs.
            description: what the role is for.
        """
        super().__init__(scope, id)
        if not statements:
            raise ValueError(f"action role {role_name} needs at least one policy statement")
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ArnPrincipal(pipeline_role.role_arn),
            description=description,
            inline_policies={"Action": iam.PolicyDocument(statements=list(statements))},
        )
        self.for_action: iam.IRole = self.role.without_policy_updates()
        artifacts = {
            f"Resource::{nag_resource(self, arn)}": f"{role_name} reads or writes the "
            "artifacts CodePipeline names per execution, only in the pipeline's artifact bucket "
            "and with the pipeline key"
            for st in statements
            if st.sid in _ARTIFACT_SIDS
            for arn in st.resources
        }
        if artifacts:
            acknowledge_iam5(self.role, artifacts)


_ARTIFACT_SIDS = ("ReadArtifacts", "WriteArtifacts")


class EventsRole(Construct):
    """The role an EventBridge rule uses to start the pipeline (inline, one statement).

    Attributes:
        role: the role (trusts events.amazonaws.com only).
        for_target: an immutable view for `targets.CodePipeline(event_role=...)`.
    """

    def __init__(self, scope: Construct, id: str, *, role_name: str, pipeline_arn: str) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            # Only this account's EventBridge rules may use it.
            assumed_by=defaults.guarded_service_principal(
                "events.amazonaws.com", source_arn=defaults.own_arn("events", "rule/*")
            ),
            description="deployline: lets EventBridge start the pipeline on a source change",
            inline_policies={
                "StartPipeline": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["codepipeline:StartPipelineExecution"],
                            resources=[pipeline_arn],
                        )
                    ]
                )
            },
        )
        self.for_target: iam.IRole = self.role.without_policy_updates()


def read_artifacts(bucket: s3.IBucket, key: kms.IKey) -> list[iam.PolicyStatement]:
    """Read pipeline artifacts: objects in the artifact bucket, decrypted with the pipeline CMK."""
    return [
        iam.PolicyStatement(
            sid="ReadArtifacts",
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[bucket.arn_for_objects("*")],
        ),
        iam.PolicyStatement(
            sid="DecryptArtifacts",
            actions=["kms:Decrypt", "kms:DescribeKey"],
            resources=[key.key_arn],
        ),
    ]


def write_artifacts(
    bucket: s3.IBucket, key: kms.IKey, *, put_acl: bool = False
) -> list[iam.PolicyStatement]:
    """Write pipeline artifacts (SSE-KMS with the pipeline CMK; multipart uploads need Decrypt)."""
    actions = ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"]
    if put_acl:
        actions.append("s3:PutObjectAcl")
    return [
        iam.PolicyStatement(
            sid="WriteArtifacts", actions=actions, resources=[bucket.arn_for_objects("*")]
        ),
        iam.PolicyStatement(
            sid="EncryptArtifacts",
            actions=["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"],
            resources=[key.key_arn],
        ),
    ]


def pass_roles(roles: Sequence[iam.IRole]) -> iam.PolicyStatement:
    """iam:PassRole on exactly `roles`, and only to ECS tasks."""
    return iam.PolicyStatement(
        sid="PassTaskRoles",
        actions=["iam:PassRole"],
        resources=[role.role_arn for role in roles],
        conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
    )


def ecs_arn(resource: str) -> str:
    """An ECS ARN in this account and region (pseudo parameters, no literal account)."""
    return f"arn:{Aws.PARTITION}:ecs:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


def nag_resource(scope: Construct, value: str) -> str:
    """`value` (an ARN, usually with tokens) as cdk-nag spells it in a finding ID.

    Mirrors cdk-nag's flattenCfnReference: `Fn::GetAtt` becomes `<LogicalId.Attr>`, `Ref`
    becomes `<Name>`, `Fn::Join` is joined, anything else is its JSON. Tokens must resolve in
    `scope`'s stack (cross-stack references resolve only at synth time).
    """

    def visit(node: Any) -> str:
        if node is None:
            return ""
        if isinstance(node, str):
            return node.replace("${", "<").replace("}", ">")
        if isinstance(node, dict):
            if "Fn::Join" in node:
                delimiter, items = node["Fn::Join"]
                return str(delimiter).join(visit(item) for item in items)
            if "Fn::Sub" in node:
                return visit(node["Fn::Sub"])
            if "Fn::GetAtt" in node:
                resource, attribute = node["Fn::GetAtt"]
                return f"<{visit(resource)}.{visit(attribute)}>"
            if "Fn::ImportValue" in node:
                return visit(node["Fn::ImportValue"])
            if "Ref" in node:
                return f"<{visit(node['Ref'])}>"
        return json.dumps(node, separators=(",", ":"))

    return visit(Stack.of(scope).resolve(value))


def acknowledge_iam5(construct: Construct, findings: Mapping[str, str]) -> None:
    """Acknowledge cdk-nag AwsSolutions-IAM5 findings on `construct`, each with its reason.

    `findings` maps the finding's detail (`"Resource::*"`, `"Action::s3:GetObject*"`,
    `"Resource::<Bucket.Arn>/*"`) to a reason that names the resource and why the wildcard is
    the narrowest grant AWS allows. A reason must not be empty. When `construct` is a role whose
    name the reason does not mention, the reason is said of that role.
    """
    label = compliance.role_label(construct) if isinstance(construct, iam.Role) else None
    rules = []
    for detail, reason in findings.items():
        if not reason.strip():
            raise ValueError(f"the acknowledgement of IAM5[{detail}] needs a reason, got ''")
        if label is not None and label.removeprefix("role ") not in reason:
            reason = f"{label}: {reason}"
        rules.append(Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[{detail}]", reason=reason))
    Validations.of(construct).acknowledge(*rules)
