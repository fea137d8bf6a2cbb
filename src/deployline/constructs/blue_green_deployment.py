"""CodeDeploy blue/green for an ECS service: application, deployment group, alarms, hook.

CodeDeploy starts the replacement (green) task set, routes the test listener to it, invokes the
AfterAllowTestTraffic hook (which tests the green tasks through the test listener and reports back),
shifts production traffic with a canary or linear configuration, watches the alarms, and rolls
back automatically when the deployment fails, is stopped, or an alarm fires.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, CfnElement, Duration, Stack, Token, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from deployline.constructs.fargate_service import depend_on_grants
from deployline.naming import Kind, Namer

#: CodeDeploy accepts at most this many alarms per deployment group.
MAX_ALARMS = 10
#: CodeDeploy keeps the original tasks at most this long after a successful deployment.
MAX_TERMINATION_WAIT = Duration.minutes(2880)
#: How long the original tasks stay after a successful deployment. Default: 5 minutes.
DEFAULT_TERMINATION_WAIT = Duration.minutes(5)


class BlueGreenDeployment(Construct):
    """A CodeDeploy ECS application and deployment group for one service.

    Attributes:
        application: the CodeDeploy ECS application.
        deployment_group: the deployment group (pass it to the pipeline's CodeDeployToECS action).
        role: CodeDeploy's service role.
        hook_function: the AfterAllowTestTraffic function CodeDeploy may invoke, else None.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        service: ecs.IBaseService,
        listener: elbv2.IApplicationListener,
        test_listener: elbv2.IApplicationListener,
        blue_target_group: elbv2.IApplicationTargetGroup,
        green_target_group: elbv2.IApplicationTargetGroup,
        alarms: Sequence[cloudwatch.IAlarm],
        deployment_config_name: str = "CodeDeployDefault.ECSAllAtOnce",
        termination_wait: Duration = DEFAULT_TERMINATION_WAIT,
        hook_function: lambda_.IFunction | None = None,
    ) -> None:
        """
        Args:
            namer: names the application, group and role.
            service: the ECS service (CODE_DEPLOY controller).
            listener: the production listener.
            test_listener: the listener CodeDeploy routes to the green tasks first.
            blue_target_group: the target group the service starts on.
            green_target_group: the replacement target group.
            alarms: roll back when any of them fires (1 to 10).
            deployment_config_name: how traffic shifts, e.g.
                CodeDeployDefault.ECSCanary10Percent5Minutes. Default: all at once.
            termination_wait: how long the original tasks stay up after a successful
                deployment (a rollback is instant meanwhile). Default: 5 minutes.
            hook_function: the AfterAllowTestTraffic hook; CodeDeploy's role may invoke it
                (and only it). Default: none.
        """
        super().__init__(scope, id)
        if not alarms:
            raise ValueError(
                "a blue/green deployment needs at least one alarm to roll back on, got none"
            )
        if len(alarms) > MAX_ALARMS:
            raise ValueError(f"CodeDeploy allows at most {MAX_ALARMS} alarms, got {len(alarms)}")
        if not Token.is_unresolved(deployment_config_name) and not deployment_config_name.strip():
            raise ValueError("deployment_config_name must name a deployment configuration, got ''")
        wait_minutes = termination_wait.to_minutes()
        if not 0 <= wait_minutes <= MAX_TERMINATION_WAIT.to_minutes():
            raise ValueError(f"termination_wait must be 0..2880 minutes, got {wait_minutes}")

        self.application = codedeploy.EcsApplication(
            self, "Application", application_name=namer.name("app", Kind.CODEDEPLOY)
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=namer.name("codedeploy", Kind.IAM_ROLE),
            assumed_by=iam.ServicePrincipal("codedeploy.amazonaws.com"),
            description=f"deployline: CodeDeploy blue/green deployments of {namer.name('service')}",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AWSCodeDeployRoleForECS")
            ],
        )
        acknowledgments = [
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                "AWSCodeDeployRoleForECS]",
                reason="the service role policy AWS maintains for CodeDeploy ECS blue/green: "
                "it follows the ECS, ELB and CloudWatch calls CodeDeploy makes as they change",
            )
        ]
        self.hook_function = hook_function
        if hook_function is not None:
            # AWSCodeDeployRoleForECS only covers functions named CodeDeployHook_*.
            hook_function.grant_invoke(self.role)
            resource = hook_function.node.default_child
            if isinstance(resource, CfnElement):  # a function defined in this app
                stack = Stack.of(self)
                function_id = stack.resolve(stack.get_logical_id(resource))
                acknowledgments.append(
                    Acknowledgment(
                        id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
                        reason="grant_invoke covers the versions and aliases of the one "
                        "AfterAllowTestTraffic hook function, nothing else",
                    )
                )
        Validations.of(self.role).acknowledge(*acknowledgments)

        self.deployment_group = codedeploy.EcsDeploymentGroup(
            self,
            "DeploymentGroup",
            deployment_group_name=namer.name("deployment-group", Kind.CODEDEPLOY),
            application=self.application,
            service=service,
            role=self.role,
            deployment_config=codedeploy.EcsDeploymentConfig.from_ecs_deployment_config_name(
                self, "DeploymentConfig", deployment_config_name
            ),
            blue_green_deployment_config=codedeploy.EcsBlueGreenDeploymentConfig(
                blue_target_group=blue_target_group,
                green_target_group=green_target_group,
                listener=listener,
                test_listener=test_listener,
                termination_wait_time=termination_wait,
            ),
            alarms=list(alarms),
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True,
                stopped_deployment=True,
                deployment_in_alarm=True,
            ),
        )
        # The group names the role: its grants (hook invoke) must exist before a deployment.
        depend_on_grants(self.deployment_group, self.role)
