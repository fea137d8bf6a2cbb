"""An ECS Fargate service behind an ALB target group, deployed rolling or blue/green by ECS.

One cluster (Container Insights, enhanced), one task definition (one container named
`deployline.naming.CONTAINER_NAME`: non-root, read-only root filesystem with scratch volumes,
container health check, logs to a KMS-encrypted group with retention), one service under the ECS
deployment controller with the deployment circuit breaker and deployment alarms, both rolling back
(rolling: the ROLLING strategy; blue/green: BLUE_GREEN, CANARY or LINEAR from a `BlueGreenTraffic`,
with the alternate target group), and target-tracking autoscaling on CPU and on requests.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import (
    Acknowledgment,
    CfnResource,
    Duration,
    RemovalPolicy,
    Size,
    Stack,
    Token,
    Validations,
)
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from deployline import defaults
from deployline.constructs import compliance
from deployline.constructs.ecs_blue_green import BlueGreenTraffic
from deployline.contract import FARGATE_SIZES
from deployline.naming import CONTAINER_NAME, Kind, Namer

_SCRATCH_VOLUME = "scratch"
#: The non-blocking log driver's buffer (the driver's default is 1 MiB). Default: 25 MiB.
LOG_BUFFER = Size.mebibytes(25)
#: Load balancer health checks are ignored this long after a task starts. Default: 60 seconds.
DEFAULT_GRACE_PERIOD = Duration.seconds(60)


def default_health_check_command(port: int, path: str) -> str:
    """A shell command that GETs `http://127.0.0.1:<port><path>` with whatever the image has.

    busybox/GNU wget, curl, then python3: Alpine images have wget, Debian slim images python3 or
    curl. Each exits non-zero on a non-2xx answer or a timeout (4 s).
    """
    url = shlex.quote(f"http://127.0.0.1:{port}{path}")
    python = shlex.quote(
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=4)"
    )
    return (
        f"wget -q -O /dev/null -T 4 {url} 2>/dev/null"
        f" || curl -fsS -o /dev/null -m 4 {url} 2>/dev/null"
        f" || python3 -c {python} 2>/dev/null"
        " || exit 1"
    )


@dataclass(frozen=True, kw_only=True)
class Scaling:
    """How many tasks run, and what autoscaling tracks. Numbers may be tokens.

    Attributes:
        desired_count: tasks at creation. Default: 2.
        min_capacity: autoscaling floor. Default: 1.
        max_capacity: autoscaling ceiling. Default: 4.
        target_cpu_percent: autoscaling CPU target, 10..95. Default: 60.
        target_requests_per_task: autoscaling target, requests per task per minute.
            Default: 1000.
    """

    desired_count: int = 2
    min_capacity: int = 1
    max_capacity: int = 4
    target_cpu_percent: int = 60
    target_requests_per_task: int = 1000

    def validate(self) -> None:
        """Raise ValueError naming the field, the value and the fix (tokens are skipped)."""
        desired, low, high = self.desired_count, self.min_capacity, self.max_capacity
        if _known(desired) and desired < 1:
            raise ValueError(f"desired_count must be at least 1, got {desired}")
        if _known(low) and low < 1:
            raise ValueError(f"min_capacity must be at least 1, got {low}")
        if _known(low, high) and low > high:
            raise ValueError(f"min_capacity ({low}) must not exceed max_capacity ({high})")
        if _known(desired, low, high) and not low <= desired <= high:
            raise ValueError(
                f"desired_count ({desired}) must lie between min_capacity ({low}) "
                f"and max_capacity ({high})"
            )
        if _known(self.target_cpu_percent) and not 10 <= self.target_cpu_percent <= 95:
            raise ValueError(f"target_cpu_percent must be 10..95, got {self.target_cpu_percent}")
        if _known(self.target_requests_per_task) and self.target_requests_per_task < 1:
            raise ValueError(
                f"target_requests_per_task must be at least 1, got {self.target_requests_per_task}"
            )


@dataclass(frozen=True, kw_only=True)
class ContainerOptions:
    """How the application container runs.

    Attributes:
        command: the container command (may be a token list). Default: the image's own.
        environment: plain environment variables (no secrets). Default: PORT only.
        user: uid[:gid], never root. Default: 1000:1000.
        read_only_root_filesystem: Default: true.
        writable_paths: scratch volumes mounted writable. Default: /tmp.
        health_check: the container health check. Default: on.
        health_check_command: shell command. Default:
            `default_health_check_command(container_port, health_check_path)`.
    """

    command: Sequence[str] | None = None
    environment: Mapping[str, str] | None = None
    user: str = "1000:1000"
    read_only_root_filesystem: bool = True
    writable_paths: Sequence[str] = ("/tmp",)  # noqa: S108  (mount points)
    health_check: bool = True
    health_check_command: str | None = None

    def validate(self) -> None:
        """Raise ValueError naming the field, the value and the fix (tokens are skipped)."""
        user, paths = self.user, self.writable_paths
        if _known(user) and user.split(":", 1)[0] in {"0", "root", ""}:
            raise ValueError(f"user must not be root, got {user!r}; use a uid such as 1000:1000")
        for path in paths:
            if _known(path) and (not path.startswith("/") or path == "/"):
                raise ValueError(
                    f"writable_paths must be absolute directories below /, got {path!r}"
                )
        if len(set(paths)) != len(paths):
            raise ValueError(f"writable_paths must not repeat, got {list(paths)}")


class FargateWebService(Construct):
    """A load-balanced Fargate service with its cluster, task definition, roles and autoscaling.

    Attributes:
        cluster: the ECS cluster.
        task_definition: the Fargate task definition.
        container: the application container (named CONTAINER_NAME).
        service: the Fargate service.
        security_group: the tasks' security group (admits the load balancer only).
        execution_role: the role ECS uses to pull the image and write logs.
        task_role: the role the application runs with (no permissions by default).
        log_group: the application log group.
        scalable_target: the service's autoscaling target.
        blue_green: how ECS shifts traffic (blue/green), else None (rolling).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        key: kms.IKey,
        image: ecs.ContainerImage,
        target_groups: Sequence[elbv2.ApplicationTargetGroup],
        load_balancer_security_group: ec2.ISecurityGroup,
        container_port: int,
        health_check_path: str,
        cpu: int = 256,
        memory: int = 512,
        scaling: Scaling = Scaling(),
        container: ContainerOptions = ContainerOptions(),
        blue_green: BlueGreenTraffic | None = None,
        assign_public_ip: bool = False,
        health_check_grace_period: Duration = DEFAULT_GRACE_PERIOD,
        deployment_alarm_names: Sequence[str] = (),
        cpu_architecture: ecs.CpuArchitecture = ecs.CpuArchitecture.X86_64,
        execution_role_statements: Sequence[iam.PolicyStatement] = (),
        log_retention_days: int = defaults.LOG_RETENTION_DAYS,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            namer: names the cluster, service, task family, roles and log group.
            vpc: the VPC.
            subnets: where the tasks run.
            key: CMK for the log group (it must allow CloudWatch Logs).
            image: the container image (a `ServiceImage` chooses it by the image tag parameter).
            target_groups: the service registers with the first; blue/green passes blue, green.
            load_balancer_security_group: the only source the tasks admit.
            container_port: the port the container listens on.
            health_check_path: the path the default container health check requests.
            cpu: Fargate CPU units. Default: 256.
            memory: MiB, a size Fargate offers for `cpu`. Default: 512.
            scaling: task counts and autoscaling targets. Default: `Scaling()`.
            container: how the application container runs. Default: `ContainerOptions()`.
            blue_green: deploy blue/green (BLUE_GREEN, CANARY or LINEAR) with the alternate
                target group and rules it names; `target_groups` are then blue, green.
                Default: rolling.
            assign_public_ip: give tasks a public IP (public subnets). Default: false.
            health_check_grace_period: load balancer health checks ignored after a task starts.
                Default: 60 seconds.
            deployment_alarm_names: alarms that roll a deployment back (at most 10). Default: none.
            cpu_architecture: Default: X86_64.
            execution_role_statements: what the execution role needs to pull the image (the
                repository's, a pull-through cache's). Default: none.
            log_retention_days: Default: 30.
            removal: the log group's removal policy. Default: RETAIN.
        """
        super().__init__(scope, id)
        _validate_size(cpu, memory)
        scaling.validate()
        container.validate()
        _validate_service(
            container_port, health_check_path, target_groups, blue_green, deployment_alarm_names
        )
        self.blue_green, self._namer = blue_green, namer
        self.cluster = self._cluster(namer, vpc)
        self.log_group = self._log_group(namer, key, log_retention_days, removal)
        self.execution_role = self._execution_role(namer, execution_role_statements)
        self.task_role = self._task_role(namer)
        self.task_definition = self._task_definition(namer, cpu, memory, cpu_architecture)
        self.container = self._container(
            image, container, container_port, health_check_path, health_check_grace_period
        )
        self.security_group = self._security_group(namer, vpc)
        self.service = self._service(
            subnets, scaling, assign_public_ip, health_check_grace_period, deployment_alarm_names
        )
        self._register(target_groups[0], container_port, load_balancer_security_group)
        self._acknowledge(namer)
        self.scalable_target = self._autoscaling(namer, target_groups, scaling)

    # ---- the pieces, in the order they are built ----------------------------------------

    def _cluster(self, namer: Namer, vpc: ec2.IVpc) -> ecs.Cluster:
        return ecs.Cluster(
            self,
            "Cluster",
            cluster_name=namer.name("cluster", Kind.ECS),
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENHANCED,
        )

    def _log_group(
        self, namer: Namer, key: kms.IKey, retention_days: int, removal: RemovalPolicy
    ) -> logs.LogGroup:
        return defaults.encrypted_log_group(
            self,
            "Logs",
            name=namer.log_group("app"),
            key=key,
            retention_days=retention_days,
            removal=removal,
        )

    def _execution_role(self, namer: Namer, statements: Sequence[iam.PolicyStatement]) -> iam.Role:
        role = iam.Role(
            self,
            "ExecutionRole",
            role_name=namer.name("task-execution", Kind.IAM_ROLE),
            # Confused-deputy guard: only ECS tasks of this account and region may assume it.
            assumed_by=defaults.guarded_service_principal(
                "ecs-tasks.amazonaws.com", source_arn=defaults.own_arn("ecs", "*")
            ),
            description=f"deployline: pulls the image and writes logs for {namer.name('service')}",
        )
        for statement in statements:
            role.add_to_policy(statement)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteAppLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{self.log_group.log_group_arn}:*"],
            )
        )
        return role

    def _task_role(self, namer: Namer) -> iam.Role:
        # Confused-deputy guard: only ECS tasks of this account and region may assume it.
        return iam.Role(
            self,
            "TaskRole",
            role_name=namer.name("task", Kind.IAM_ROLE),
            assumed_by=defaults.guarded_service_principal(
                "ecs-tasks.amazonaws.com", source_arn=defaults.own_arn("ecs", "*")
            ),
            description=f"deployline: the application role of {namer.name('service')}; "
            "grant it what the application calls",
        )

    def _task_definition(
        self, namer: Namer, cpu: int, memory: int, architecture: ecs.CpuArchitecture
    ) -> ecs.FargateTaskDefinition:
        task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=namer.name("task", Kind.ECS),
            cpu=cpu,
            memory_limit_mib=memory,
            execution_role=self.execution_role,
            task_role=self.task_role,
            runtime_platform=ecs.RuntimePlatform(
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
                cpu_architecture=architecture,
            ),
        )
        # The task definition names the execution role; its grants must exist before a task runs.
        defaults.depend_on_grants(task_definition, self.execution_role)
        return task_definition

    @staticmethod
    def _health_check(
        enabled: bool, command: str, grace_period: Duration
    ) -> ecs.HealthCheck | None:
        if not enabled:
            return None
        return ecs.HealthCheck(
            command=["CMD-SHELL", command],
            interval=Duration.seconds(15),
            timeout=Duration.seconds(5),
            retries=3,
            start_period=_start_period(grace_period),
        )

    def _container(
        self,
        image: ecs.ContainerImage,
        options: ContainerOptions,
        container_port: int,
        health_check_path: str,
        grace_period: Duration,
    ) -> ecs.ContainerDefinition:
        command = options.command
        environment = {"PORT": str(container_port), **(options.environment or {})}
        user, writable_paths = options.user, options.writable_paths
        read_only_root_filesystem = options.read_only_root_filesystem
        health_check = self._health_check(
            options.health_check,
            options.health_check_command
            or default_health_check_command(container_port, health_check_path),
            grace_period,
        )
        container = self.task_definition.add_container(
            "App",
            container_name=CONTAINER_NAME,
            image=image,
            command=list(command) if command else None,
            essential=True,
            user=user,
            readonly_root_filesystem=read_only_root_filesystem,
            environment=dict(environment),
            port_mappings=[
                ecs.PortMapping(
                    container_port=container_port, protocol=ecs.Protocol.TCP, name="http"
                )
            ],
            health_check=health_check,
            linux_parameters=ecs.LinuxParameters(
                self, "LinuxParameters", init_process_enabled=True
            ),
            stop_timeout=Duration.seconds(30),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=CONTAINER_NAME,
                log_group=self.log_group,
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                max_buffer_size=LOG_BUFFER,
            ),
        )
        for index, path in enumerate(writable_paths):
            volume = f"{_SCRATCH_VOLUME}-{index}"
            self.task_definition.add_volume(name=volume)
            container.add_mount_points(
                ecs.MountPoint(source_volume=volume, container_path=path, read_only=False)
            )
        return container

    def _security_group(self, namer: Namer, vpc: ec2.IVpc) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{namer.name('service')}: tasks, reachable from the load balancer only",
            allow_all_outbound=True,  # the application's own egress is unknown
        )

    def _service(
        self,
        subnets: ec2.SubnetSelection,
        scaling: Scaling,
        assign_public_ip: bool,
        grace_period: Duration,
        alarm_names: Sequence[str],
    ) -> ecs.FargateService:
        blue_green = self.blue_green
        service = ecs.FargateService(
            self,
            "Service",
            service_name=self._namer.name("service", Kind.ECS),
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=scaling.desired_count,
            assign_public_ip=assign_public_ip,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            platform_version=ecs.FargatePlatformVersion.LATEST,
            min_healthy_percent=100,
            max_healthy_percent=200,
            health_check_grace_period=grace_period,
            deployment_controller=ecs.DeploymentController(type=ecs.DeploymentControllerType.ECS),
            deployment_strategy=blue_green.strategy if blue_green else None,
            bake_time=blue_green.bake_time if blue_green else None,
            canary_configuration=blue_green.canary_configuration if blue_green else None,
            linear_configuration=blue_green.linear_configuration if blue_green else None,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            deployment_alarms=(
                ecs.DeploymentAlarmConfig(
                    alarm_names=list(alarm_names), behavior=ecs.AlarmBehavior.ROLLBACK_ON_ALARM
                )
                if alarm_names
                else None
            ),
            # Rebalancing moves tasks between deployments; AWS documents it for rolling updates,
            # not for the blue/green strategies, so those keep ECS's default for updates (off).
            availability_zone_rebalancing=(
                ecs.AvailabilityZoneRebalancing.DISABLED
                if blue_green
                else ecs.AvailabilityZoneRebalancing.ENABLED
            ),
            enable_ecs_managed_tags=True,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_execute_command=False,
        )
        defaults.depend_on_grants(service, self.task_role)
        if blue_green is not None:
            # aws-cdk makes the service depend on everything that attaches its target groups to
            # the load balancer; the two blue/green rules among them are also referenced in
            # LoadBalancers[].AdvancedConfiguration, which cfn-lint reports as redundant (W3005).
            resource = service.node.default_child
            assert isinstance(resource, CfnResource)
            resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        return service

    def _register(
        self,
        target_group: elbv2.ApplicationTargetGroup,
        container_port: int,
        load_balancer_security_group: ec2.ISecurityGroup,
    ) -> None:
        """The service registers with `target_group` (blue/green: and its alternate); only the
        load balancer reaches the tasks."""
        target_group.add_target(
            self.service.load_balancer_target(
                container_name=CONTAINER_NAME,
                container_port=container_port,
                alternate_target=self.blue_green.alternate_target if self.blue_green else None,
            )
        )
        self.security_group.add_ingress_rule(
            load_balancer_security_group,
            ec2.Port.tcp(container_port),
            "from the load balancer",
        )
        load_balancer_security_group.add_egress_rule(
            self.security_group, ec2.Port.tcp(container_port), "to the service tasks"
        )

    def _autoscaling(
        self,
        namer: Namer,
        target_groups: Sequence[elbv2.ApplicationTargetGroup],
        scaling: Scaling,
    ) -> appscaling.ScalableTarget:
        min_capacity, max_capacity = scaling.min_capacity, scaling.max_capacity
        target_cpu_percent = scaling.target_cpu_percent
        target_requests_per_task = scaling.target_requests_per_task
        scalable_target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.ECS,
            resource_id=f"service/{self.cluster.cluster_name}/{self.service.service_name}",
            scalable_dimension="ecs:service:DesiredCount",
            min_capacity=min_capacity,
            max_capacity=max_capacity,
        )
        scalable_target.scale_to_track_metric(
            "CpuTracking",
            target_value=target_cpu_percent,
            predefined_metric=appscaling.PredefinedMetric.ECS_SERVICE_AVERAGE_CPU_UTILIZATION,
            scale_in_cooldown=Duration.seconds(120),
            scale_out_cooldown=Duration.seconds(60),
        )
        if self.blue_green is not None:
            self._track_requests_across(
                scalable_target,
                namer.name("requests-per-task"),
                target_groups,
                target_requests_per_task,
            )
        else:
            scalable_target.scale_to_track_metric(
                "RequestTracking",
                target_value=target_requests_per_task,
                predefined_metric=appscaling.PredefinedMetric.ALB_REQUEST_COUNT_PER_TARGET,
                resource_label=_resource_label(target_groups[0]),
                scale_in_cooldown=Duration.seconds(120),
                scale_out_cooldown=Duration.seconds(60),
            )
        return scalable_target

    def _acknowledge(self, namer: Namer) -> None:
        """Record, with reasons, the cdk-nag and checkov findings these resources have by design."""
        stack = Stack.of(self)
        logs_resource = self.log_group.node.default_child
        assert isinstance(logs_resource, CfnResource)
        logs_id = stack.resolve(stack.get_logical_id(logs_resource))
        Validations.of(self.execution_role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason=f"{compliance.role_label(self.execution_role)}: "
                "ecr:GetAuthorizationToken has no resource-level permission; the pull actions "
                "themselves are scoped to the pipeline's image repository",
            ),
            Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logs_id}.Arn>:*]",
                reason=f"ECS names the log streams of {namer.name('service')} at run time; "
                f"{compliance.role_label(self.execution_role)} writes only inside its own log "
                f"group {namer.log_group('app')}",
            ),
        )
        Validations.of(self.task_definition).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-ECS2",
                reason="the only environment variables of task family "
                f"{namer.name('task', Kind.ECS)} are PORT (the container port) and the caller's "
                "plain settings; secrets go through ECS secrets, never the environment",
            )
        )
        defaults.skip_checkov(
            self.cluster,
            "CKV_AWS_65",
            "Container Insights is on, with enhanced observability (containerInsights=enhanced); "
            "the check only recognises the value 'enabled'",
        )

    def _track_requests_across(
        self,
        scalable_target: appscaling.ScalableTarget,
        policy_name: str,
        target_groups: Sequence[elbv2.ApplicationTargetGroup],
        target: int,
    ) -> None:
        """Requests per task over every target group: blue/green swaps the groups, so a policy on
        one target group would track an idle one after the first deployment."""
        queries = [
            _metric_query(
                f"requests{index}",
                "AWS/ApplicationELB",
                "RequestCount",
                {
                    "TargetGroup": group.target_group_full_name,
                    "LoadBalancer": group.first_load_balancer_full_name,
                },
                stat="Sum",
                unit="Count",
            )
            for index, group in enumerate(target_groups)
        ]
        queries.append(
            _metric_query(
                "tasks",
                "ECS/ContainerInsights",
                "RunningTaskCount",
                {
                    "ClusterName": self.cluster.cluster_name,
                    "ServiceName": self.service.service_name,
                },
                stat="Average",
            )
        )
        total = " + ".join(f"FILL(requests{i}, 0)" for i in range(len(target_groups)))
        queries.append(
            appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                id="perTask",
                expression=f"({total}) / MAX([tasks, 1])",
                label="Requests per task per minute",
                return_data=True,
            )
        )
        appscaling.CfnScalingPolicy(
            self,
            "RequestTracking",
            policy_name=policy_name,
            policy_type="TargetTrackingScaling",
            scaling_target_id=scalable_target.scalable_target_id,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=target,
                scale_in_cooldown=120,
                scale_out_cooldown=60,
                customized_metric_specification=appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metrics=queries
                ),
            ),
        )


def _metric_query(
    query_id: str,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, str],
    *,
    stat: str,
    unit: str | None = None,
) -> appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty:
    """One metric of a customized target-tracking metric (not returned: an expression uses it)."""
    policy = appscaling.CfnScalingPolicy
    return policy.TargetTrackingMetricDataQueryProperty(
        id=query_id,
        return_data=False,
        metric_stat=policy.TargetTrackingMetricStatProperty(
            metric=policy.TargetTrackingMetricProperty(
                namespace=namespace,
                metric_name=metric_name,
                dimensions=[
                    policy.TargetTrackingMetricDimensionProperty(name=name, value=value)
                    for name, value in dimensions.items()
                ],
            ),
            stat=stat,
            unit=unit,
        ),
    )


def _start_period(grace_period: Duration) -> Duration:
    """The grace period, kept within 30..300 seconds (ECS's range); a token is passed as is."""
    if grace_period.is_unresolved():
        return grace_period
    return Duration.seconds(min(300, max(30, grace_period.to_seconds())))


def _resource_label(group: elbv2.ApplicationTargetGroup) -> str:
    return f"{group.first_load_balancer_full_name}/{group.target_group_full_name}"


def _validate_service(
    container_port: int,
    health_check_path: str,
    target_groups: Sequence[elbv2.ApplicationTargetGroup],
    blue_green: BlueGreenTraffic | None,
    deployment_alarm_names: Sequence[str],
) -> None:
    """Every check skips values that are unresolved tokens (a CfnParameter, say)."""
    if _known(container_port) and not 1 <= container_port <= 65535:
        raise ValueError(f"container_port must be 1..65535, got {container_port}")
    if _known(health_check_path) and not health_check_path.startswith("/"):
        raise ValueError(f"health_check_path must start with '/', got {health_check_path!r}")
    expected = 2 if blue_green else 1
    if len(target_groups) != expected:
        raise ValueError(
            f"{'blue/green' if blue_green else 'a rolling service'} needs {expected} target "
            f"group(s), got {len(target_groups)}"
        )
    if len(deployment_alarm_names) > 10:
        raise ValueError(
            f"ECS allows at most 10 deployment alarms, got {len(deployment_alarm_names)}"
        )


def _known(*values: object) -> bool:
    """None of `values` is an unresolved token."""
    return not any(Token.is_unresolved(value) for value in values)


def _validate_size(cpu: int, memory: int) -> None:
    if not _known(cpu):
        return
    allowed = FARGATE_SIZES.get(cpu)
    if allowed is None:
        raise ValueError(f"cpu must be one of {sorted(FARGATE_SIZES)} Fargate units, got {cpu}")
    if _known(memory) and memory not in allowed:
        raise ValueError(
            f"memory {memory} MiB is not offered by Fargate with cpu {cpu}; choose one of "
            f"{allowed[0]}..{allowed[-1]} in the steps Fargate allows"
        )
