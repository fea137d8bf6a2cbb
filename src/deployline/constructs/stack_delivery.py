"""The stages that take one environment's stack through CloudFormation, then validate it.

Without approval:

    Deploy-<env>    Deploy (CloudFormation CREATE_UPDATE with the image tag), Validate
                    (the stage rolls back on failure: CodePipeline redeploys the last successful
                    execution's template and image)

With approval:

    Approve-<env>   Plan (CHANGE_SET_REPLACE), ChangeSummary (what the change set adds, changes,
                    replaces, and its IAM changes, as output variables), Approve (manual, with
                    that summary beside the test and scan summary)
    Deploy-<env>    Deploy (CHANGE_SET_EXECUTE of exactly the approved change set), Validate

The executed stage has no stage rollback: a CodePipeline rollback would re-run the execute
action on a change set that no longer exists. A failed update is rolled back by CloudFormation
itself, a failed or alarming ECS deployment by ECS; `deployline rollback` redeploys an earlier
image on purpose.

The CloudFormation actions run as the target's `cdk bootstrap` deploy role and deploy with its
cfn-exec role; validation and the change summary read the target account through its lookup role.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, CfnCapabilities
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from deployline import contract
from deployline.constructs.pipeline_roles import ActionRole
from deployline.constructs.pipeline_settings import StackTarget
from deployline.naming import Kind, Namer

#: The change set the Plan action creates and the Deploy action executes.
CHANGE_SET_NAME = "deployline-pipeline"
#: CodePipeline limits an approval's custom data to 500 characters.
CUSTOM_DATA_LIMIT = 500
#: Capabilities every environment stack needs (named IAM roles; no macros, but nested
#: templates in a later version need AUTO_EXPAND).
CAPABILITIES = [CfnCapabilities.NAMED_IAM, CfnCapabilities.AUTO_EXPAND]


def changes_namespace(target_name: str) -> str:
    """The ChangeSummary action's variable namespace, `Changes-<env>`."""
    return f"Changes-{target_name}"


class StackDelivery(Construct):
    """Adds the approval (when asked) and deploy stages of one `StackTarget` to a pipeline.

    Attributes:
        target: the target.
        deploy_role: the target's bootstrap deploy role (imported, immutable).
        execution_role: the target's bootstrap cfn-exec role (imported, immutable).
        stage_names: the stages added, in order.
        action_roles: the roles of the actions deployline owns here, by "<stage>/<action>".
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline: codepipeline.Pipeline,
        pipeline_role: iam.IRole,
        pipeline_name: str,
        namer: Namer,
        target: StackTarget,
        synth_output: codepipeline.Artifact,
        image_tag: str,
        image_uri: str,
        validation: lambda_.IFunction,
        change_summary: lambda_.IFunction | None,
        approval_topic: sns.ITopic | None,
        approval_message: str,
        same_region: bool,
    ) -> None:
        """
        Args:
            pipeline: the pipeline the stages are added to.
            pipeline_role: its service role (the only principal that may assume action roles).
            pipeline_name: its physical name (for links and the approval role's fallback).
            namer: names the action roles.
            target: the environment.
            synth_output: the cloud assembly artifact.
            image_tag: the build's IMAGE_TAG variable.
            image_uri: the build's IMAGE_URI variable (validation expects it).
            validation: the function the Validate action invokes.
            change_summary: the function the ChangeSummary action invokes (approval targets).
            approval_topic: where approvals are announced. Default: none.
            approval_message: the start of the approval's custom data (commit, tests, scans).
            same_region: the target is in the pipeline's region (the actions name no region).
        """
        super().__init__(scope, id)
        if target.approval and change_summary is None:
            raise ValueError(
                f"target {target.name} waits for approval: pass the change_summary function"
            )
        self.target = target
        self._pipeline = pipeline
        self._pipeline_role = pipeline_role
        self._pipeline_name = pipeline_name
        self._namer = namer
        self._region = None if same_region else target.environment.region
        self.deploy_role = target.environment.role(self, "DeployRole", "deploy")
        self.execution_role = target.environment.role(self, "ExecutionRole", "cfn-exec")
        self.stage_names: list[str] = []
        self.action_roles: dict[str, ActionRole] = {}
        overrides = {target.image_parameter: image_tag} if target.image_parameter else None
        template = synth_output.at_path(target.template_file)
        deploy: codepipeline.IAction
        if target.approval:
            assert change_summary is not None
            self._add_approval_stage(
                template, overrides, change_summary, approval_topic, approval_message
            )
            deploy = actions.CloudFormationExecuteChangeSetAction(
                action_name=contract.DEPLOY_ACTION,
                stack_name=target.stack_name,
                change_set_name=CHANGE_SET_NAME,
                role=self.deploy_role,
                region=self._region,
                run_order=1,
            )
        else:
            deploy = actions.CloudFormationCreateUpdateStackAction(
                action_name=contract.DEPLOY_ACTION, **self._template_action(template, overrides)
            )
        self._add_deploy_stage(deploy, validation, image_uri)

    def _template_action(
        self, template: codepipeline.ArtifactPath, overrides: dict[str, str] | None
    ) -> dict[str, Any]:
        """What a CloudFormation action that takes the template (deploy, or plan a change set)
        is given: the stack, the template and its parameters, the roles, the region."""
        return {
            "stack_name": self.target.stack_name,
            "template_path": template,
            "parameter_overrides": overrides,
            "admin_permissions": False,
            "role": self.deploy_role,
            "deployment_role": self.execution_role,
            "cfn_capabilities": CAPABILITIES,
            "region": self._region,
            "run_order": 1,
        }

    # ---- approval ------------------------------------------------------------------------

    def _add_approval_stage(
        self,
        template: codepipeline.ArtifactPath,
        overrides: dict[str, str] | None,
        change_summary: lambda_.IFunction,
        topic: sns.ITopic | None,
        message: str,
    ) -> None:
        target = self.target
        stage = contract.approve_stage_name(target.name)
        plan = actions.CloudFormationCreateReplaceChangeSetAction(
            action_name=contract.PLAN_ACTION,
            change_set_name=CHANGE_SET_NAME,
            **self._template_action(template, overrides),
        )
        namespace = changes_namespace(target.name)
        summary = actions.LambdaInvokeAction(
            action_name=contract.CHANGE_SUMMARY_ACTION,
            lambda_=change_summary,
            user_parameters={
                "stack_name": target.stack_name,
                "change_set_name": CHANGE_SET_NAME,
                "region": target.environment.region_or_pseudo,
                "role_arn": target.environment.role_arn("lookup"),
            },
            variables_namespace=namespace,
            run_order=2,
            role=self._action_role(
                stage,
                contract.CHANGE_SUMMARY_ACTION,
                f"changes-{target.name}-action",
                [invoke_statement(change_summary)],
            ),
        )
        custom_data = f"{message} Changes: #{{{namespace}.SUMMARY}}"
        if len(custom_data) > CUSTOM_DATA_LIMIT:
            raise ValueError(
                f"the approval message for {target.name} is {len(custom_data)} characters; "
                f"CodePipeline allows {CUSTOM_DATA_LIMIT}. Use a shorter service name"
            )
        approve = actions.ManualApprovalAction(
            action_name=contract.APPROVE_ACTION,
            notification_topic=topic,
            additional_information=custom_data,
            external_entity_link=(
                f"https://{Aws.REGION}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
                f"{self._pipeline_name}/executions/#{{codepipeline.PipelineExecutionId}}/timeline"
                f"?region={Aws.REGION}"
            ),
            run_order=3,
            role=self._action_role(
                stage,
                contract.APPROVE_ACTION,
                f"approve-{target.name}-action",
                self._announce_statements(topic),
            ),
        )
        self._pipeline.add_stage(stage_name=stage, actions=[plan, summary, approve])
        self.stage_names.append(stage)

    def _announce_statements(self, topic: sns.ITopic | None) -> list[iam.PolicyStatement]:
        if topic is None:
            # Without a topic the action publishes nothing, and the role must still allow
            # something: reading its own pipeline's state, by name (not by a reference to the
            # pipeline, which would make the pipeline and this role depend on each other).
            return [
                iam.PolicyStatement(
                    sid="ReadOwnPipeline",
                    actions=["codepipeline:GetPipelineState"],
                    resources=[
                        f"arn:{Aws.PARTITION}:codepipeline:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                        f"{self._pipeline_name}"
                    ],
                )
            ]
        statements = [
            iam.PolicyStatement(
                sid="AnnounceApproval", actions=["sns:Publish"], resources=[topic.topic_arn]
            )
        ]
        if topic.master_key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="EncryptAnnouncement",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[topic.master_key.key_arn],
                )
            )
        return statements

    # ---- deploy and validate -------------------------------------------------------------

    def _add_deploy_stage(
        self, deploy: codepipeline.IAction, validation: lambda_.IFunction, image_uri: str
    ) -> None:
        target = self.target
        stage = contract.deploy_stage_name(target.name)
        validate = actions.LambdaInvokeAction(
            action_name=contract.VALIDATE_ACTION,
            lambda_=validation,
            user_parameters={
                "stack_name": target.stack_name,
                "region": target.environment.region_or_pseudo,
                "role_arn": target.environment.role_arn("lookup"),
                "health_path": target.health_path,
                "expected_image": image_uri if target.image_parameter else None,
                "timeout_seconds": int(target.validation_timeout.to_seconds()),
                "expected_status": target.expected_status,
            },
            run_order=2,
            role=self._action_role(
                stage,
                contract.VALIDATE_ACTION,
                f"validate-{target.name}-action",
                [invoke_statement(validation)],
            ),
        )
        self._pipeline.add_stage(
            stage_name=stage,
            actions=[deploy, validate],
            on_failure=(
                None
                if target.approval
                else codepipeline.FailureConditions(result=codepipeline.Result.ROLLBACK)
            ),
        )
        self.stage_names.append(stage)

    def _action_role(
        self, stage: str, action: str, type_: str, statements: Sequence[iam.PolicyStatement]
    ) -> iam.IRole:
        role = ActionRole(
            self,
            f"{action}Role",
            role_name=self._namer.name(type_, Kind.IAM_ROLE),
            pipeline_role=self._pipeline_role,
            statements=statements,
            description=f"deployline: the {action} action of stage {stage}",
        )
        self.action_roles[f"{stage}/{action}"] = role
        return role.for_action


def invoke_statement(function: lambda_.IFunction) -> iam.PolicyStatement:
    """lambda:InvokeFunction on exactly `function`."""
    return iam.PolicyStatement(
        sid="InvokeFunction",
        actions=["lambda:InvokeFunction"],
        resources=[function.function_arn],
    )
