"""One environment of the service: network, load balancer, ECS Fargate service, alarms and, for
blue/green environments, the CodeDeploy deployment group and its test hook.

The pipeline stack deploys to this stack by reference, through its read-only attributes
(`service`, `cluster`, `deployment_group`, `task_definition`, ...), never by literal names. The
ECR repository lives in the pipeline stack; this stack references it by name (no cross-stack
reference, no dependency cycle).

First start: the service is created with the placeholder image (config `placeholder_image`),
which answers the health check, so the stack stabilises before any pipeline run has pushed an
image. A rolling service that cannot become healthy fails fast on the deployment circuit breaker;
a blue/green (CODE_DEPLOY) service has no circuit breaker, so only a healthy placeholder image keeps
its creation from waiting out CloudFormation's stabilisation timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Aws, CfnOutput, CfnResource, Duration, Stack
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from deployline import defaults
from deployline.config import DeploylineConfig, DeploymentType, EnvironmentConfig, NetworkMode
from deployline.constructs.blue_green_deployment import BlueGreenDeployment
from deployline.constructs.fargate_service import FargateWebService
from deployline.constructs.load_balancer import ServiceLoadBalancer
from deployline.constructs.network import ExistingVpc, ServiceNetwork
from deployline.constructs.public_image_cache import PublicEcrPullThroughCache
from deployline.constructs.runtime_function import RuntimeFunction, acknowledge_function_findings
from deployline.constructs.service_alarms import ServiceAlarms
from deployline.naming import Kind, Namer

#: How long the AfterAllowTestTraffic hook may wait for the green tasks. Default: 120 seconds.
HOOK_CHECK_SECONDS = 120


def placeholder_image_command(image: str, container_port: int) -> list[str] | None:
    """The command that makes the default placeholder image answer 200 on every path.

    `caddy respond` serves a fixed response on the port, writes no file (its admin API and config
    autosave are off), and runs as any non-root user on a port above 1023. Other images run their
    own command.
    """
    repository = image.split("@", 1)[0].rsplit(":", 1)[0] if "/" in image else image
    if repository.rsplit("/", 1)[-1] != "caddy":
        return None
    return [
        "caddy",
        "respond",
        "--listen",
        f":{container_port}",
        "--status",
        "200",
        "deployline: the service is waiting for its first pipeline run",
    ]


class EnvironmentStack(Stack):
    """The service in one environment.

    Attributes:
        environment_config: the environment's configuration. (Stack.environment stays CDK's
            `aws://account/region` string.)
        environment_name: the environment's name.
        namer: names for this environment (`{service}-{type}-{env}`).
        key: the environment's CMK (rotation on): logs and the hook's environment.
        network: the VPC and subnets.
        cluster: the ECS cluster.
        service: the Fargate service.
        task_definition: the Fargate task definition (container `deployline.naming.CONTAINER_NAME`).
        load_balancer: the ALB.
        listener: the production listener.
        test_listener: the blue/green test listener, else None.
        target_groups: the target groups (blue first).
        service_url: `http(s)://<name>[:port]` of the production listener (a token).
        test_url: the test listener's URL (blue/green), else None.
        alarms: the alarms that roll deployments back.
        deployment_group: the CodeDeploy deployment group (blue/green), else None.
        hook_function: the AfterAllowTestTraffic hook (blue/green), else None.
        is_blue_green: whether CodeDeploy deploys the service.
        is_production: whether the environment is production.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploylineConfig,
        environment: EnvironmentConfig,
        namer: Namer,
        repository_name: str,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            config: the whole configuration (for production and lifecycle defaults).
            environment: this environment (one of config.environments).
            namer: names for this environment.
            repository_name: the pipeline's ECR repository, referenced by name.
            kwargs: Stack properties (stack_name, description, synthesizer, ...).
        """
        super().__init__(scope, id, **kwargs)
        if environment.name != namer.env:
            raise ValueError(
                f"namer is for environment {namer.env!r} but the environment is "
                f"{environment.name!r}; build the namer with env={environment.name!r}"
            )
        if not repository_name:
            raise ValueError("repository_name must name the pipeline's ECR repository, got ''")
        # Not `self.environment`: that is Stack's own jsii property (the aws://account/region
        # string the synthesizer reads); overriding it breaks synthesis.
        self.environment_config = environment
        self.environment_name = environment.name
        self.namer = namer
        self.is_blue_green = environment.deployment is DeploymentType.BLUE_GREEN
        self.is_production = config.is_production(environment)
        destroy = config.destroy_on_delete(environment)
        removal = defaults.removal_policy(destroy=destroy)

        self.key: kms.Key = defaults.secure_key(
            self,
            "EnvironmentKey",
            alias=namer.name("key"),
            description=f"deployline: encrypts the logs of {config.service} in {environment.name}",
            removal=removal,
            pending_window=Duration.days(7 if destroy else 30),
        )
        defaults.allow_logs_to_use_key(
            self.key,
            [
                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
                f"/deployline/{namer.base}/{namer.env}/*",
                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
                f"/aws/lambda/{namer.base}-*-{namer.env}",
            ],
        )

        net = environment.network
        self.network = ServiceNetwork(
            self,
            "Network",
            namer=namer,
            mode=net.mode,
            key=self.key,
            existing=(
                ExistingVpc(
                    vpc_id=net.vpc_id,
                    availability_zones=net.availability_zones,
                    public_subnet_ids=net.public_subnet_ids,
                    private_subnet_ids=net.private_subnet_ids,
                    vpc_cidr=net.vpc_cidr,
                )
                if net.vpc_id
                else None
            ),
            vpc_cidr=net.vpc_cidr,
            max_azs=net.max_azs,
            nat_gateways=net.nat_gateways,
            flow_logs=net.flow_logs,
            extra_endpoints=net.extra_endpoints,
            log_retention_days=environment.log_retention_days,
            removal=removal,
        )

        front = ServiceLoadBalancer(
            self,
            "LoadBalancer",
            namer=namer,
            vpc=self.network.vpc,
            subnets=self.network.load_balancer_subnets,
            target_port=environment.container_port,
            health_check_path=environment.health_check_path,
            ingress_cidrs=environment.ingress_cidrs,
            listener_port=environment.listener_port,
            certificate_arn=environment.certificate_arn,
            domain_name=environment.domain_name,
            blue_green=self.is_blue_green,
            test_listener_port=environment.effective_test_listener_port,
            test_listener_cidrs=environment.test_listener_cidrs if self.is_blue_green else (),
            deregistration_delay=Duration.seconds(environment.deregistration_delay_seconds),
            access_log_expiry_days=environment.access_log_expiry_days,
            deletion_protection=self.is_production,
            removal=removal,
        )
        self.load_balancer: elbv2.ApplicationLoadBalancer = front.load_balancer
        self.listener: elbv2.ApplicationListener = front.listener
        self.test_listener: elbv2.ApplicationListener | None = front.test_listener
        self.target_groups: list[elbv2.ApplicationTargetGroup] = front.target_groups
        self.access_logs = front.access_logs
        self.service_url: str = front.url
        self.test_url: str | None = front.test_url

        thresholds = environment.alarms
        labels = ["blue", "green"] if self.is_blue_green else ["tg"]
        alarms = ServiceAlarms(
            self,
            "Alarms",
            namer=namer,
            target_groups=list(zip(labels, self.target_groups, strict=True)),
            error_rate_percent=thresholds.error_rate_percent,
            p99_latency=Duration.millis(thresholds.p99_latency_ms),
            unhealthy_hosts=thresholds.unhealthy_hosts,
            evaluation_minutes=thresholds.evaluation_minutes,
        )
        self.alarms = alarms.alarms

        repository = ecr.Repository.from_repository_name(self, "Repository", repository_name)
        image_uri = environment.placeholder_image
        pull_statements: Sequence[iam.PolicyStatement] = ()
        cache: PublicEcrPullThroughCache | None = None
        if net.mode is NetworkMode.ENDPOINTS and image_uri.startswith("public.ecr.aws/"):
            cache = PublicEcrPullThroughCache(self, "PublicImageCache", namer=namer)
            image_uri = cache.image_uri(image_uri)
            pull_statements = cache.pull_statements()
        command = environment.placeholder_image_command
        if command is None:
            command = placeholder_image_command(
                environment.placeholder_image, environment.container_port
            )

        workload = FargateWebService(
            self,
            "Service",
            namer=namer,
            vpc=self.network.vpc,
            subnets=self.network.task_subnets,
            key=self.key,
            repository=repository,
            image=ecs.ContainerImage.from_registry(image_uri),
            target_groups=self.target_groups,
            load_balancer_security_group=front.security_group,
            container_port=environment.container_port,
            health_check_path=environment.health_check_path,
            cpu=environment.cpu,
            memory=environment.memory,
            desired_count=environment.desired_count,
            min_capacity=environment.min_capacity,
            max_capacity=environment.max_capacity,
            blue_green=self.is_blue_green,
            assign_public_ip=self.network.assign_public_ip,
            command=command,
            user=environment.container_user,
            read_only_root_filesystem=environment.read_only_root_filesystem,
            writable_paths=environment.writable_paths,
            container_health_check=environment.container_health_check,
            container_health_check_command=environment.container_health_check_command,
            health_check_grace_period=Duration.seconds(environment.health_check_grace_seconds),
            deployment_alarm_names=[] if self.is_blue_green else alarms.alarm_names,
            target_cpu_percent=environment.target_cpu_percent,
            target_requests_per_task=environment.target_requests_per_task,
            cpu_architecture=(
                ecs.CpuArchitecture.ARM64
                if config.build.platform == "linux/arm64"
                else ecs.CpuArchitecture.X86_64
            ),
            execution_role_statements=pull_statements,
            log_retention_days=environment.log_retention_days,
            removal=removal,
        )
        self.network.admit_to_endpoints(workload.security_group)
        if cache is not None:
            cache.acknowledge_pull(workload.execution_role)
        self.workload = workload
        self.cluster: ecs.Cluster = workload.cluster
        self.service: ecs.FargateService = workload.service
        self.task_definition: ecs.FargateTaskDefinition = workload.task_definition

        self.deployment_group: codedeploy.EcsDeploymentGroup | None = None
        self.hook_function: lambda_.IFunction | None = None
        if self.is_blue_green:
            if front.test_listener is None or front.green_target_group is None:
                raise RuntimeError("a blue/green load balancer has a test listener and green group")
            application_name = namer.name("app", Kind.CODEDEPLOY)
            group_name = namer.name("deployment-group", Kind.CODEDEPLOY)
            group_arn = self.format_arn(
                service="codedeploy",
                resource="deploymentgroup",
                resource_name=f"{application_name}/{group_name}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            hook = RuntimeFunction(
                self,
                "DeployHook",
                namer=namer,
                name="deploy-hook",
                handler="deploy_hook.handler",
                description=(
                    f"deployline: AfterAllowTestTraffic hook of {namer.name('service')}: tests "
                    "the green tasks through the test listener before traffic shifts"
                ),
                key=self.key,
                environment={
                    "TEST_URL": front.test_url or "",
                    "HEALTH_CHECK_PATH": environment.health_check_path,
                    "CHECK_TIMEOUT_SECONDS": str(HOOK_CHECK_SECONDS),
                    "EXPECTED_STATUS": "200",
                },
                timeout=Duration.seconds(HOOK_CHECK_SECONDS + 60),
                log_retention_days=environment.log_retention_days,
                removal=removal,
                statements=[
                    iam.PolicyStatement(
                        sid="ReportHookStatus",
                        actions=["codedeploy:PutLifecycleEventHookExecutionStatus"],
                        resources=[group_arn],
                    )
                ],
            )
            _depend_on_policy_only(hook.function, hook.role)
            acknowledge_function_findings(hook)
            hook_reason = (
                "CodeDeploy invokes the AfterAllowTestTraffic hook once per deployment and waits "
                "for its report; without one it fails the deployment (and rolls back) when the "
                "hook times out"
            )
            defaults.skip_checkov(
                hook.function, "CKV_AWS_116", f"{hook_reason}: a DLQ adds nothing"
            )
            defaults.skip_checkov(
                hook.function,
                "CKV_AWS_115",
                f"{hook_reason}; reserved concurrency would take from the account's unreserved "
                "pool, which new accounts cannot spare",
            )
            defaults.skip_checkov(
                hook.function,
                "CKV_AWS_117",
                "the hook tests the green tasks through the internet-facing test listener, as "
                "clients reach them, and calls the CodeDeploy API: it needs no VPC access",
            )
            self.hook_function = hook.function
            blue_green = BlueGreenDeployment(
                self,
                "BlueGreen",
                namer=namer,
                service=self.service,
                listener=front.listener,
                test_listener=front.test_listener,
                blue_target_group=front.target_group,
                green_target_group=front.green_target_group,
                alarms=self.alarms,
                deployment_config_name={
                    "all_at_once": "CodeDeployDefault.ECSAllAtOnce",
                    "canary_10_percent_5_minutes": "CodeDeployDefault.ECSCanary10Percent5Minutes",
                    "canary_10_percent_15_minutes": "CodeDeployDefault.ECSCanary10Percent15Minutes",
                    "linear_10_percent_every_1_minute": "CodeDeployDefault.ECSLinear10Percent"
                    "Every1Minutes",
                    "linear_10_percent_every_3_minutes": "CodeDeployDefault.ECSLinear10Percent"
                    "Every3Minutes",
                }[config.traffic_shifting(environment).value],
                termination_wait=Duration.minutes(config.bake_minutes(environment)),
                hook_function=hook.function,
            )
            self.deployment_group = blue_green.deployment_group

        self._outputs()

    # ---- outputs ----------------------------------------------------------------------

    def _outputs(self) -> None:
        env = self.environment_name
        CfnOutput(
            self,
            "ServiceUrl",
            value=self.service_url,
            description=f"URL of the service in {env} (production listener)",
        )
        CfnOutput(
            self,
            "ClusterName",
            value=self.cluster.cluster_name,
            description=f"ECS cluster of {env}",
        )
        CfnOutput(
            self,
            "ServiceName",
            value=self.service.service_name,
            description=f"ECS service of {env}",
        )
        CfnOutput(
            self, "ListenerArn", value=self.listener.listener_arn, description="Production listener"
        )
        CfnOutput(
            self,
            "TargetGroupArn",
            value=self.target_groups[0].target_group_arn,
            description="Target group the production listener starts on (blue)",
        )
        CfnOutput(
            self,
            "LoadBalancerDnsName",
            value=self.load_balancer.load_balancer_dns_name,
            description="Point your DNS name here (CNAME or alias)",
        )
        if self.test_listener is not None and self.test_url is not None:
            CfnOutput(
                self,
                "TestUrl",
                value=self.test_url,
                description="Test listener URL: the green tasks during a deployment",
            )
            CfnOutput(
                self,
                "TestListenerArn",
                value=self.test_listener.listener_arn,
                description="Test listener",
            )
            CfnOutput(
                self,
                "GreenTargetGroupArn",
                value=self.target_groups[1].target_group_arn,
                description="Replacement (green) target group",
            )
        if self.deployment_group is not None:
            CfnOutput(
                self,
                "DeploymentGroupName",
                value=self.deployment_group.deployment_group_name,
                description="CodeDeploy deployment group",
            )
            CfnOutput(
                self,
                "CodeDeployApplicationName",
                value=self.deployment_group.application.application_name,
                description="CodeDeploy application",
            )


def _depend_on_policy_only(function: lambda_.Function, role: iam.Role) -> None:
    """Keep the function's DependsOn on its role's policy, dropping the one on the role itself.

    lambda.Function depends on its whole role construct; the role half repeats what the `Role`
    GetAtt already orders (cfn-lint W3005), the policy half is what matters.
    """
    resource = function.node.default_child
    policy = role.node.try_find_child("DefaultPolicy")
    policy_resource = policy.node.default_child if policy is not None else None
    if isinstance(resource, CfnResource) and isinstance(policy_resource, CfnResource):
        resource.add_override("DependsOn", [Stack.of(function).get_logical_id(policy_resource)])
