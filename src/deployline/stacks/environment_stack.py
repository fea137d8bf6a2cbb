"""One environment of the service: network, load balancer (and its web ACL), ECS Fargate service,
alarms that notify the team and, for blue/green environments, the traffic shifting ECS does itself
and its validation hook.

CloudFormation owns what runs. The image arrives as the stack parameter `ImageTag`
(`deployline.contract.IMAGE_TAG_PARAMETER`): empty (the default) runs the placeholder image, a tag
runs `<registry>/<repository>:<tag>` from the pipeline's repository. The pipeline deploys this stack
with the tag it built; a deploy that does not pass the parameter keeps the running tag.

Nothing here refers to the pipeline stack: the repository is named (and its account and region
given), and the pipeline finds this stack's cluster and service by their names and reads its
outputs (`ServiceUrl`, `ClusterName`, `ServiceName`) at run time, so an environment may live in
another account or region.

First start: with an empty `ImageTag` the service runs the placeholder image, which answers the
health check, so the stack stabilises before any pipeline run. Both deployment modes use the ECS
controller with the deployment circuit breaker: a first start that cannot become healthy fails
fast instead of waiting out CloudFormation's stabilisation timeout.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, CfnParameter, Duration, Stack, Token
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from deployline import contract, defaults
from deployline.config import DeploylineConfig, DeploymentType, EnvironmentConfig
from deployline.constructs import compliance
from deployline.constructs.alarm_topic import AlarmTopic
from deployline.constructs.deployment_event_bus import deployment_event_bus_arn
from deployline.constructs.deployment_event_forwarder import DeploymentEventForwarder
from deployline.constructs.ecs_blue_green import BlueGreenTraffic, ValidationHook
from deployline.constructs.fargate_service import ContainerOptions, FargateWebService, Scaling
from deployline.constructs.load_balancer import ServiceLoadBalancer
from deployline.constructs.network import ExistingVpc, ServiceNetwork
from deployline.constructs.public_image_cache import PublicEcrPullThroughCache
from deployline.constructs.service_alarms import ServiceAlarms
from deployline.constructs.service_image import IMAGE_TAG_PATTERN, ServiceImage
from deployline.constructs.web_firewall import WebFirewall, waf_log_group_name
from deployline.contract import NetworkMode
from deployline.naming import Kind, Namer


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
        image_tag: the `ImageTag` stack parameter.
        image: the image choice (placeholder or `repository_uri:<ImageTag>`).
        key: the environment's CMK (rotation on): logs, the alarm topic and the hook's
            environment.
        network: the VPC and subnets.
        front: the load balancer construct (listeners, target groups, blue/green rules).
        load_balancer: the ALB.
        listener: the production listener.
        test_listener: the blue/green test listener, else None.
        target_groups: the target groups (blue first).
        service_url: `http(s)://<name>[:port]` of the production listener (a token).
        test_url: the test listener's URL (blue/green), else None.
        firewall: the WAF web ACL in front of the load balancer (`waf`), else None.
        alarm_topic: the topics the alarms notify (an AlarmTopic: `.topic`, `.topics`).
        alarms: the alarms that roll deployments back (ECS deployment alarms) and notify the
            team: a ServiceAlarms with `.alarms` and `.alarm_names`.
        blue_green: how ECS shifts traffic (blue/green), else None.
        hook: the POST_TEST_TRAFFIC_SHIFT validation hook (blue/green), else None.
        hook_function: its function (blue/green), else None.
        workload: the Fargate service construct; `cluster`, `service`, `task_definition` are its.
        is_blue_green: whether the environment deploys blue/green.
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
        registry_account: str | None = None,
        registry_region: str | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            config: the whole configuration (production, traffic shifting and lifecycle
                defaults).
            environment: this environment (one of config.environments).
            namer: names for this environment.
            repository_name: the pipeline's ECR repository.
            registry_account: the repository's account (`config.pipeline.account`).
                Default: this stack's account.
            registry_region: the repository's region (`config.pipeline.region`).
                Default: this stack's region.
            kwargs: Stack properties (stack_name, description, synthesizer, env, ...).
        """
        super().__init__(scope, id, **kwargs)
        if environment.name != namer.env:
            raise ValueError(
                f"namer is for environment {namer.env!r} but the environment is "
                f"{environment.name!r}; build the namer with env={environment.name!r}"
            )
        # Not `self.environment`: that is Stack's own jsii property (the aws://account/region
        # string the synthesizer reads); overriding it breaks synthesis.
        self.environment_config = environment
        self.environment_name = environment.name
        self.namer = namer
        self.is_blue_green = environment.deployment is DeploymentType.BLUE_GREEN
        self.is_production = config.is_production(environment)
        self._config = config
        self._removal = defaults.removal_policy(destroy=config.destroy_on_delete(environment))

        self.image_tag = self._image_tag_parameter(repository_name)
        self.key = self._key()
        self.network = self._network()
        self.front = self._load_balancer()
        self.firewall = self._firewall()
        self.alarm_topic = self._alarm_topic()
        self.alarms = self._alarms()
        cache = self._public_image_cache()
        self.image = self._image(repository_name, registry_account, registry_region, cache)
        self.blue_green = self._blue_green() if self.is_blue_green else None
        self.workload = self._workload(cache)
        self.hook = self._hook() if self.blue_green is not None else None
        self.event_forwarder = self._forward_deployment_events()
        self._outputs()
        self._accept_literal_environment(registry_account, registry_region)
        compliance.accept_inline_policies(self)

    # ---- attributes callers read ------------------------------------------------------

    @property
    def load_balancer(self) -> elbv2.ApplicationLoadBalancer:
        return self.front.load_balancer

    @property
    def listener(self) -> elbv2.ApplicationListener:
        return self.front.listener

    @property
    def test_listener(self) -> elbv2.ApplicationListener | None:
        return self.front.test_listener

    @property
    def target_groups(self) -> list[elbv2.ApplicationTargetGroup]:
        return self.front.target_groups

    @property
    def service_url(self) -> str:
        return self.front.url

    @property
    def test_url(self) -> str | None:
        return self.front.test_url

    @property
    def cluster(self) -> ecs.Cluster:
        return self.workload.cluster

    @property
    def service(self) -> ecs.FargateService:
        return self.workload.service

    @property
    def task_definition(self) -> ecs.FargateTaskDefinition:
        return self.workload.task_definition

    @property
    def hook_function(self) -> lambda_.Function | None:
        return self.hook.function if self.hook is not None else None

    # ---- the pieces, in the order they are built --------------------------------------

    def _image_tag_parameter(self, repository_name: str) -> CfnParameter:
        env = self.environment_config
        return CfnParameter(
            self,
            contract.IMAGE_TAG_PARAMETER,
            type="String",
            default="",
            allowed_pattern=IMAGE_TAG_PATTERN,
            constraint_description="an image tag (letters, digits, _ . -, at most 128 "
            "characters, not starting with . or -), or empty for the placeholder image",
            description=f"Tag of the {repository_name} image the service runs in {env.name}; "
            "the pipeline sets it to the commit it built. Empty (the default): the placeholder "
            f"image {env.placeholder_image}. A deploy that does not pass it keeps the running tag.",
        )

    def _key(self) -> kms.Key:
        namer, env = self.namer, self.environment_config
        destroy = self._config.destroy_on_delete(env)
        key = defaults.secure_key(
            self,
            "EnvironmentKey",
            alias=namer.name("key"),
            description=f"deployline: encrypts the logs and alarm topic of {self._config.service} "
            f"in {env.name}",
            removal=self._removal,
            pending_window=Duration.days(7 if destroy else 30),
        )
        logs = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
        defaults.allow_logs_to_use_key(
            key,
            [
                f"{logs}/deployline/{namer.base}/{namer.env}/*",
                f"{logs}/aws/lambda/{namer.base}-*-{namer.env}",
                *([f"{logs}{waf_log_group_name(namer)}"] if self._config.waf(env) else []),
            ],
        )
        return key

    def _network(self) -> ServiceNetwork:
        env = self.environment_config
        net = env.network
        existing = (
            ExistingVpc(
                vpc_id=net.vpc_id,
                availability_zones=net.availability_zones,
                public_subnet_ids=net.public_subnet_ids,
                private_subnet_ids=net.private_subnet_ids,
                vpc_cidr=net.vpc_cidr,
            )
            if net.vpc_id
            else None
        )
        return ServiceNetwork(
            self,
            "Network",
            namer=self.namer,
            mode=net.mode,
            key=self.key,
            existing=existing,
            vpc_cidr=net.vpc_cidr,
            max_azs=net.max_azs,
            nat_gateways=net.nat_gateways,
            flow_logs=net.flow_logs,
            extra_endpoints=net.extra_endpoints,
            log_retention_days=env.log_retention_days,
            removal=self._removal,
        )

    def _load_balancer(self) -> ServiceLoadBalancer:
        env = self.environment_config
        return ServiceLoadBalancer(
            self,
            "LoadBalancer",
            namer=self.namer,
            vpc=self.network.vpc,
            subnets=self.network.load_balancer_subnets,
            target_port=env.container_port,
            health_check_path=env.health_check_path,
            ingress_cidrs=env.ingress_cidrs,
            listener_port=env.listener_port,
            certificate_arn=env.certificate_arn,
            domain_name=env.domain_name,
            hosted_zone_id=env.hosted_zone_id,
            blue_green=self.is_blue_green,
            test_listener_port=env.effective_test_listener_port,
            test_listener_cidrs=env.test_listener_cidrs if self.is_blue_green else (),
            deregistration_delay=Duration.seconds(env.deregistration_delay_seconds),
            access_log_expiry_days=env.access_log_expiry_days,
            deletion_protection=self.is_production,
            removal=self._removal,
        )

    def _firewall(self) -> WebFirewall | None:
        """The web ACL in front of the load balancer (config.waf: production by default)."""
        env = self.environment_config
        if self._config.waf(env):
            return WebFirewall(
                self,
                "Firewall",
                namer=self.namer,
                resource_arn=self.load_balancer.load_balancer_arn,
                key=self.key,
                log_retention_days=env.log_retention_days,
                removal=self._removal,
            )
        choice = (
            "says waf: false for it"
            if env.waf is False
            else "leaves waf unset (a web ACL guards production only)"
        )
        compliance.accept(
            self.load_balancer,
            "ALBWAFEnabled",
            f"{self.namer.name('alb', Kind.LOAD_BALANCER)} has no web ACL: {env.name} is "
            f"{'production' if self.is_production else 'not production'} and deployline.yaml "
            f"{choice}; its security group admits the listener ports only, and the pipeline "
            "tests and scans every release before it (waf: true adds AWS managed rules)",
        )
        return None

    def _alarm_topic(self) -> AlarmTopic:
        """Where the alarms notify the team: the environment's own topic, which the addresses
        of notifications subscribe to, and sns_topic_arn where the alarms can reach it."""
        alerts = self._config.notifications
        return AlarmTopic(
            self,
            "AlarmTopic",
            namer=self.namer,
            key=self.key,
            emails=list(alerts.emails),
            https_endpoint=alerts.https_endpoint,
            existing_topic_arn=self._config.alarm_topic_arn(self.environment_config),
        )

    def _alarms(self) -> ServiceAlarms:
        thresholds = self.environment_config.alarms
        labels = ["blue", "green"] if self.is_blue_green else ["tg"]
        return ServiceAlarms(
            self,
            "Alarms",
            namer=self.namer,
            target_groups=list(zip(labels, self.target_groups, strict=True)),
            error_rate_percent=thresholds.error_rate_percent,
            p99_latency=Duration.millis(thresholds.p99_latency_ms),
            unhealthy_hosts=thresholds.unhealthy_hosts,
            evaluation_minutes=thresholds.evaluation_minutes,
            topics=self.alarm_topic.topics,
        )

    def _public_image_cache(self) -> PublicEcrPullThroughCache | None:
        """Endpoints mode has no route to public.ecr.aws: pull the placeholder through ECR."""
        env = self.environment_config
        if env.network.mode is NetworkMode.ENDPOINTS and env.placeholder_image.startswith(
            "public.ecr.aws/"
        ):
            return PublicEcrPullThroughCache(self, "PublicImageCache", namer=self.namer)
        return None

    def _image(
        self,
        repository_name: str,
        registry_account: str | None,
        registry_region: str | None,
        cache: PublicEcrPullThroughCache | None,
    ) -> ServiceImage:
        env = self.environment_config
        placeholder = env.placeholder_image
        command = env.placeholder_image_command or placeholder_image_command(
            placeholder, env.container_port
        )
        return ServiceImage(
            self,
            "Image",
            image_tag=self.image_tag,
            repository_name=repository_name,
            placeholder_image=cache.image_uri(placeholder) if cache else placeholder,
            placeholder_command=command,
            registry_account=registry_account,
            registry_region=registry_region,
        )

    def _blue_green(self) -> BlueGreenTraffic:
        front, shifting = self.front, self._config.traffic_shifting(self.environment_config)
        assert front.green_target_group and front.production_rule and front.test_rule
        return BlueGreenTraffic(
            self,
            "BlueGreen",
            namer=self.namer,
            blue_target_group=front.target_group,
            green_target_group=front.green_target_group,
            production_rule=front.production_rule,
            test_rule=front.test_rule,
            strategy=shifting.ecs_strategy,
            step_percent=shifting.step_percent,
            step_minutes=shifting.step_minutes,
            bake_time=Duration.minutes(self._config.bake_minutes(self.environment_config)),
        )

    def _workload(self, cache: PublicEcrPullThroughCache | None) -> FargateWebService:
        env, config = self.environment_config, self._config
        workload = FargateWebService(
            self,
            "Service",
            namer=self.namer,
            vpc=self.network.vpc,
            subnets=self.network.task_subnets,
            key=self.key,
            image=self.image.image,
            target_groups=self.target_groups,
            load_balancer_security_group=self.front.security_group,
            container_port=env.container_port,
            health_check_path=env.health_check_path,
            cpu=env.cpu,
            memory=env.memory,
            scaling=Scaling(
                desired_count=env.desired_count,
                min_capacity=env.min_capacity,
                max_capacity=env.max_capacity,
                target_cpu_percent=env.target_cpu_percent,
                target_requests_per_task=env.target_requests_per_task,
            ),
            container=ContainerOptions(
                command=self.image.command,
                user=env.container_user,
                read_only_root_filesystem=env.read_only_root_filesystem,
                writable_paths=env.writable_paths,
                health_check=env.container_health_check,
                health_check_command=env.container_health_check_command,
            ),
            blue_green=self.blue_green,
            assign_public_ip=self.network.assign_public_ip,
            health_check_grace_period=Duration.seconds(env.health_check_grace_seconds),
            deployment_alarm_names=self.alarms.alarm_names,
            cpu_architecture=(
                ecs.CpuArchitecture.ARM64
                if config.build.platform == "linux/arm64"
                else ecs.CpuArchitecture.X86_64
            ),
            execution_role_statements=[
                *self.image.pull_statements,
                *(cache.pull_statements() if cache else ()),
            ],
            log_retention_days=env.log_retention_days,
            removal=self._removal,
        )
        self.network.admit_to_endpoints(workload.security_group)
        if cache is not None:
            cache.acknowledge_pull(workload.execution_role)
        return workload

    def _hook(self) -> ValidationHook:
        assert self.front.test_rule is not None
        return ValidationHook(
            self,
            "DeployHook",
            namer=self.namer,
            service=self.service,
            test_rule=self.front.test_rule,
            key=self.key,
            log_retention_days=self.environment_config.log_retention_days,
            removal=self._removal,
        )

    def _accept_literal_environment(
        self, registry_account: str | None, registry_region: str | None
    ) -> None:
        """A stack given a concrete account and region carries them as literals (aws-cdk-lib
        writes them into key policies, log options and its custom resources; the image registry
        is named by its own): record why in the template, for deployline check (DL130)."""
        concrete = not Token.is_unresolved(self.account)
        if not concrete and not (registry_account or registry_region):
            return
        where = f"aws://{self.account}/{self.region}" if concrete else "any account"
        registry = "/".join(
            (registry_account or "the stack's account", registry_region or "the stack's region")
        )
        reason = (
            f"deployline.yaml places {self.environment_name} in {where} and the pipeline's image "
            f"repository in {registry} (environments[].account/region, pipeline.account/region): "
            "the stack is synthesized for that account and region, not meant to deploy elsewhere"
        )
        self.template_options.metadata = {
            "deployline": {"suppress": [{"id": "DL130", "reason": reason}]}
        }

    # ---- outputs ----------------------------------------------------------------------

    def _forward_deployment_events(self) -> DeploymentEventForwarder | None:
        """An environment outside the pipeline's account or region sends its service's ECS
        deployment events to the pipeline's deployment event bus, where the recorder and the
        alerts hear them."""
        config, env = self._config, self.environment_config
        pipeline = config.pipeline
        if pipeline.account is None or pipeline.region is None:
            return None
        if (config.account_of(env), config.region_of(env)) == (pipeline.account, pipeline.region):
            return None
        shared = Namer(config.service, config.naming.pipeline_environment, config.naming.prefix)
        return DeploymentEventForwarder(
            self,
            "DeploymentEvents",
            namer=self.namer,
            cluster_name=self.cluster.cluster_name,
            service_name=self.service.service_name,
            bus_arn=deployment_event_bus_arn(
                shared, account=pipeline.account, region=pipeline.region, partition=Aws.PARTITION
            ),
            key=self.key,
            removal=self._removal,
        )

    def _outputs(self) -> None:
        env = self.environment_name
        front = self.front
        outputs: dict[str, tuple[str, str]] = {
            contract.OUTPUT_SERVICE_URL: (
                self.service_url,
                f"URL of the service in {env} (production listener)",
            ),
            contract.OUTPUT_CLUSTER_NAME: (self.cluster.cluster_name, f"ECS cluster of {env}"),
            contract.OUTPUT_SERVICE_NAME: (self.service.service_name, f"ECS service of {env}"),
            "ListenerArn": (self.listener.listener_arn, "Production listener"),
            "TargetGroupArn": (
                front.target_group.target_group_arn,
                "Target group the service starts on (blue)",
            ),
            "LoadBalancerDnsName": (
                self.load_balancer.load_balancer_dns_name,
                "Point your DNS name here (CNAME or alias)",
            ),
        }
        if front.test_listener and front.green_target_group and self.test_url:
            assert front.production_rule is not None and front.test_rule is not None
            outputs |= {
                "TestUrl": (
                    self.test_url,
                    "Test listener URL: the new tasks during a deployment (open only to "
                    "test_listener_cidrs)",
                ),
                "TestListenerArn": (front.test_listener.listener_arn, "Test listener"),
                "GreenTargetGroupArn": (
                    front.green_target_group.target_group_arn,
                    "Alternate target group: ECS starts each new revision in whichever group "
                    "carries no production traffic",
                ),
                "ProductionListenerRuleArn": (
                    front.production_rule.listener_rule_arn,
                    "Production listener rule ECS re-weights (blue/green)",
                ),
                "TestListenerRuleArn": (
                    front.test_rule.listener_rule_arn,
                    "Test listener rule ECS re-weights (blue/green)",
                ),
            }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
