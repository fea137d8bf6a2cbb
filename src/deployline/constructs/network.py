"""Where an environment's tasks run: a new VPC (public, private or endpoints mode) or an
existing one.

Three modes, from cheapest to most locked down:

- public: tasks in public subnets with a public IP, and a security group that admits only the load
  balancer. No NAT gateway, no endpoint: nothing costs money while idle.
- private: tasks in private subnets, reaching the internet through NAT gateways.
- endpoints: tasks in isolated subnets with no route to the internet at all; they reach ECR, S3
  (image layers) and CloudWatch Logs through VPC endpoints, plus any `extra_endpoints`.

An existing VPC is described, never looked up (synth runs offline): its ID, zones and subnet IDs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import jsii
from aws_cdk import (
    Acknowledgment,
    AspectPriority,
    Aspects,
    CfnResource,
    Fn,
    IAspect,
    RemovalPolicy,
    Stack,
    Tag,
    Token,
    Validations,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from deployline import defaults
from deployline.constructs import compliance
from deployline.contract import NetworkMode
from deployline.naming import Kind, Namer

#: Interface endpoints every task needs in mode endpoints (the S3 gateway endpoint comes too).
REQUIRED_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs")
_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


@dataclass(frozen=True)
class ExistingVpc:
    """A VPC that already exists, described by its IDs.

    Attributes:
        vpc_id: e.g. vpc-0abc1234.
        availability_zones: one zone per subnet, in the order of the subnet lists.
        public_subnet_ids: subnets for the load balancer (and the tasks in mode public).
        private_subnet_ids: subnets for the tasks in modes private and endpoints.
        vpc_cidr: the VPC's CIDR block, when known. Default: unknown.
    """

    vpc_id: str
    availability_zones: Sequence[str]
    public_subnet_ids: Sequence[str]
    private_subnet_ids: Sequence[str] = field(default_factory=tuple)
    vpc_cidr: str | None = None


class ServiceNetwork(Construct):
    """The VPC of one environment and the subnets its load balancer and tasks use.

    Attributes:
        vpc: the VPC.
        mode: the network mode.
        load_balancer_subnets: public subnets for the internet-facing load balancer.
        task_subnets: subnets the tasks run in.
        assign_public_ip: whether tasks get a public IP (mode public only).
        flow_log_group: the flow log group (new VPC with flow logs), else None.
        endpoint_security_group: the security group of the interface endpoints (mode endpoints
            with a new VPC), else None. Admit the tasks with `admit_to_endpoints`.
        interface_endpoints: the interface endpoints by service name.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        mode: NetworkMode,
        key: kms.IKey,
        existing: ExistingVpc | None = None,
        vpc_cidr: str = "10.0.0.0/16",
        max_azs: int = 2,
        nat_gateways: int = 1,
        flow_logs: bool = True,
        extra_endpoints: Sequence[str] = (),
        log_retention_days: int = defaults.LOG_RETENTION_DAYS,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            namer: names the flow log group and role.
            mode: public, private or endpoints.
            key: CMK for the flow log group; it must allow CloudWatch Logs.
            existing: use this VPC instead of creating one. Default: a new VPC.
            vpc_cidr: CIDR of a new VPC. Default: 10.0.0.0/16.
            max_azs: zones of a new VPC (2 to 6). Default: 2.
            nat_gateways: NAT gateways of a new VPC in mode private. Default: 1.
            flow_logs: flow logs (all traffic) for a new VPC. Default: on.
            extra_endpoints: more interface endpoints (mode endpoints, new VPC), by service
                name, e.g. "secretsmanager". Default: none.
            log_retention_days: flow log retention. Default: 30.
            removal: the flow log group's removal policy. Default: RETAIN.
        """
        super().__init__(scope, id)
        self.mode = NetworkMode(mode)
        self._validate(existing, max_azs, nat_gateways, extra_endpoints)
        self.flow_log_group: logs.LogGroup | None = None
        self.endpoint_security_group: ec2.SecurityGroup | None = None
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}

        if existing is not None:
            self.vpc = self._import(existing)
            task_type = (
                ec2.SubnetType.PUBLIC
                if self.mode is NetworkMode.PUBLIC
                else ec2.SubnetType.PRIVATE_WITH_EGRESS
                if self.mode is NetworkMode.PRIVATE
                else ec2.SubnetType.PRIVATE_ISOLATED
            )
        else:
            vpc, task_type = self._create(vpc_cidr, max_azs, nat_gateways)
            self.vpc = vpc
            if flow_logs:
                self._add_flow_logs(vpc, namer, key, log_retention_days, removal)
            if self.mode is NetworkMode.ENDPOINTS:
                self._add_endpoints(vpc, extra_endpoints)

        self.load_balancer_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
        self.task_subnets = ec2.SubnetSelection(subnet_type=task_type)
        self.assign_public_ip = self.mode is NetworkMode.PUBLIC

    # ---- validation -------------------------------------------------------------------

    def _validate(
        self,
        existing: ExistingVpc | None,
        max_azs: int,
        nat_gateways: int,
        extra_endpoints: Sequence[str],
    ) -> None:
        if not 2 <= max_azs <= 6:
            raise ValueError(f"max_azs must be 2 to 6 (the ALB needs two zones), got {max_azs}")
        if (
            self.mode is NetworkMode.PRIVATE
            and existing is None
            and not 1 <= nat_gateways <= max_azs
        ):
            raise ValueError(
                f"nat_gateways must be 1 to max_azs ({max_azs}) in mode private, got {nat_gateways}"
            )
        for name in extra_endpoints:
            if not _SERVICE_NAME.match(name):
                raise ValueError(
                    f"extra_endpoints entries are service names like 'secretsmanager', got {name!r}"
                )
        if extra_endpoints and (self.mode is not NetworkMode.ENDPOINTS or existing is not None):
            raise ValueError(
                "extra_endpoints applies to mode endpoints with a new VPC only, got "
                f"mode {self.mode.value}{' with an existing VPC' if existing else ''}"
            )
        if existing is None:
            return
        zones = list(existing.availability_zones)
        if len(zones) < 2 or len(existing.public_subnet_ids) != len(zones):
            raise ValueError(
                "an existing VPC needs at least 2 availability_zones and one public subnet per "
                f"zone, got {len(zones)} zones and {len(existing.public_subnet_ids)} subnets"
            )
        if self.mode is not NetworkMode.PUBLIC and len(existing.private_subnet_ids) != len(zones):
            raise ValueError(
                f"mode {self.mode.value} needs one private subnet per zone, got "
                f"{len(existing.private_subnet_ids)} subnets for {len(zones)} zones"
            )
        for subnet in [*existing.public_subnet_ids, *existing.private_subnet_ids]:
            if not Token.is_unresolved(subnet) and not _SUBNET_ID.match(subnet):
                raise ValueError(f"expected a subnet ID like subnet-0abc1234, got {subnet!r}")

    # ---- VPC --------------------------------------------------------------------------

    def _import(self, existing: ExistingVpc) -> ec2.IVpc:
        private = list(existing.private_subnet_ids) if self.mode is not NetworkMode.PUBLIC else []
        Validations.of(self).acknowledge(
            Acknowledgment(
                id="Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId",
                reason=f"deployline adds no route or gateway endpoint to the existing VPC "
                f"{existing.vpc_id}, so it never reads the route tables of its subnets",
            )
        )
        return ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=existing.vpc_id,
            availability_zones=list(existing.availability_zones),
            vpc_cidr_block=existing.vpc_cidr,
            public_subnet_ids=list(existing.public_subnet_ids),
            private_subnet_ids=private if self.mode is NetworkMode.PRIVATE else None,
            isolated_subnet_ids=private if self.mode is NetworkMode.ENDPOINTS else None,
        )

    def _create(
        self, vpc_cidr: str, max_azs: int, nat_gateways: int
    ) -> tuple[ec2.Vpc, ec2.SubnetType]:
        # No address on launch: the load balancer's nodes and NAT gateways bring their own, and
        # tasks in mode public get theirs from the service (assign_public_ip), not the subnet.
        public = ec2.SubnetConfiguration(
            name="public", subnet_type=ec2.SubnetType.PUBLIC, map_public_ip_on_launch=False
        )
        if self.mode is NetworkMode.PUBLIC:
            subnets, task_type, nats = [public], ec2.SubnetType.PUBLIC, 0
        elif self.mode is NetworkMode.PRIVATE:
            task_type, nats = ec2.SubnetType.PRIVATE_WITH_EGRESS, nat_gateways
            subnets = [public, ec2.SubnetConfiguration(name="private", subnet_type=task_type)]
        else:
            task_type, nats = ec2.SubnetType.PRIVATE_ISOLATED, 0
            subnets = [public, ec2.SubnetConfiguration(name="isolated", subnet_type=task_type)]
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(vpc_cidr),
            # The stack is environment-agnostic: the zones are resolved at deploy time.
            availability_zones=[Fn.select(i, Fn.get_azs()) for i in range(max_azs)],
            nat_gateways=nats,
            subnet_configuration=subnets,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            restrict_default_security_group=True,
        )
        _tidy_default_security_group_provider(self)
        self._accept_internet_routes(vpc)
        return vpc, task_type

    def _accept_internet_routes(self, vpc: ec2.Vpc) -> None:
        """A public subnet is one whose default route leads to the internet gateway; what may
        come in is decided by the security groups (the load balancer's admits its listener ports
        from ingress_cidrs, the tasks' only the load balancer)."""
        holds = "the internet-facing load balancer"
        if self.mode is NetworkMode.PUBLIC:
            holds += " and the tasks (their security group admits only the load balancer)"
        elif self.mode is NetworkMode.PRIVATE:
            holds += " and the NAT gateways of the private subnets"
        stack = Stack.of(self).stack_name
        for index, subnet in enumerate(vpc.public_subnets, start=1):
            compliance.accept(
                subnet,
                "VPCNoUnrestrictedRouteToIGW",
                f"public subnet {index} of {stack}'s VPC holds {holds}: its route to the internet "
                "gateway is what makes it public, and inbound traffic is limited by security "
                "groups, not by routes",
            )

    def _add_flow_logs(
        self,
        vpc: ec2.Vpc,
        namer: Namer,
        key: kms.IKey,
        retention_days: int,
        removal: RemovalPolicy,
    ) -> None:
        self.flow_log_group = defaults.encrypted_log_group(
            self,
            "FlowLogs",
            name=namer.log_group("vpc-flow-logs"),
            key=key,
            retention_days=retention_days,
            removal=removal,
        )
        group = self.flow_log_group
        # Inline policy: the flow log cannot exist before the role may write (no separate policy).
        role = iam.Role(
            self,
            "FlowLogRole",
            role_name=namer.name("flow-logs", Kind.IAM_ROLE),
            assumed_by=defaults.guarded_service_principal(
                "vpc-flow-logs.amazonaws.com",
                source_arn=defaults.own_arn("ec2", "vpc-flow-log/*"),
            ),
            description="deployline: lets VPC flow logs write to "
            f"{namer.log_group('vpc-flow-logs')}",
            inline_policies={
                "WriteFlowLogs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=[
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            resources=[group.log_group_arn, f"{group.log_group_arn}:*"],
                        )
                    ]
                )
            },
        )
        stack = Stack.of(self)
        group_resource = group.node.default_child
        assert isinstance(group_resource, CfnResource)
        group_id = stack.resolve(stack.get_logical_id(group_resource))
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{group_id}.Arn>:*]",
                reason="VPC flow logs name a log stream per network interface at run time; "
                f"{compliance.role_label(role)} writes only inside "
                f"{namer.log_group('vpc-flow-logs')}",
            )
        )
        flow_log = ec2.CfnFlowLog(
            self,
            "FlowLog",
            resource_id=vpc.vpc_id,
            resource_type="VPC",
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_group_name=group.log_group_name,
            deliver_logs_permission_arn=role.role_arn,
            max_aggregation_interval=60,
        )
        self.flow_log = flow_log

    def _add_endpoints(self, vpc: ec2.Vpc, extra: Sequence[str]) -> None:
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        # Image layers live in S3: the gateway endpoint is free and needs no security group.
        vpc.add_gateway_endpoint(
            "S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[isolated]
        )
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=vpc,
            description="VPC interface endpoints: HTTPS from the service tasks only",
            allow_all_outbound=False,
        )
        for name in [*REQUIRED_INTERFACE_ENDPOINTS, *extra]:
            construct_id = "".join(part.capitalize() for part in re.split(r"[.-]", name))
            self.interface_endpoints[name] = vpc.add_interface_endpoint(
                f"{construct_id}Endpoint",
                service=ec2.InterfaceVpcEndpointAwsService(name),
                subnets=isolated,
                private_dns_enabled=True,
                security_groups=[self.endpoint_security_group],
                open=False,
            )

    def admit_to_endpoints(self, peer: ec2.ISecurityGroup) -> None:
        """Let `peer` (the tasks' security group) reach the interface endpoints on 443."""
        if self.endpoint_security_group is not None:
            self.endpoint_security_group.add_ingress_rule(
                peer, ec2.Port.tcp(443), "HTTPS from the service tasks"
            )


@jsii.implements(IAspect)
class _CopyStackTags:
    """Copies the tags that `Tags.of(stack)` (or of an enclosing scope) adds onto raw
    CfnResources, which the tag aspects skip."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._tags: dict[str, str] | None = None

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource):
            return
        tags = self._stack_tags()
        if tags:
            node.add_property_override(
                "Tags", [{"Key": key, "Value": tags[key]} for key in sorted(tags)]
            )

    def _stack_tags(self) -> dict[str, str]:
        """The tags of the stack and its enclosing scopes, read once: aspects run after every
        tag is added, and each read costs jsii round trips."""
        if self._tags is None:
            self._tags = {}
            for scope in reversed(self._stack.node.scopes):  # the stack's own tags win
                for aspect in Aspects.of(scope).all:
                    if isinstance(aspect, Tag):
                        self._tags.setdefault(aspect.key, aspect.value)
        return self._tags


def _tidy_default_security_group_provider(scope: Construct) -> None:
    """Tag aws-cdk-lib's default-security-group custom resource like every other resource.

    `restrict_default_security_group` strips the rules of the VPC's default security group through
    a custom resource whose provider (a stack-wide singleton, raw CfnResources) escapes
    `Tags.of(stack)`; its handler also repeats a DependsOn that its Role reference already makes.
    """
    stack = Stack.of(scope)
    provider = stack.node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
    if provider is None:
        return
    role = provider.node.try_find_child("Role")
    handler = provider.node.try_find_child("Handler")
    copy_tags = _CopyStackTags(stack)
    for resource in (role, handler):
        if isinstance(resource, CfnResource):
            Aspects.of(resource).add(copy_tags, priority=AspectPriority.READONLY)
    if isinstance(handler, CfnResource):
        handler.add_deletion_override("DependsOn")  # its Role is referenced by GetAtt already
        reason = (
            "aws-cdk-lib's provider for restrict_default_security_group: CloudFormation invokes "
            "it synchronously, once per create or delete of the VPC"
        )
        defaults.skip_checkov(
            handler, "CKV_AWS_116", f"{reason}; a failure fails the stack operation"
        )
        defaults.skip_checkov(handler, "CKV_AWS_117", f"{reason}; it calls only the EC2 API")
        defaults.skip_checkov(
            handler, "CKV_AWS_115", f"{reason}; it never runs concurrently with itself"
        )
