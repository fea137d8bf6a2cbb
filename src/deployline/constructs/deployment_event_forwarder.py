"""Forwarding an environment's ECS deployment events to the pipeline's deployment event bus.

An environment stack in another account or region holds one: an EventBridge rule on its default
bus that matches "ECS Deployment State Change" of its service and sends the events, unchanged
(source, account, region and resources stay those of the environment), to the pipeline's
`DeploymentEventBus`. EventBridge needs a role to deliver to a bus in another region and AWS
recommends one for every bus target: the role trusts EventBridge for this rule only
(`aws:SourceAccount`, `aws:SourceArn`) and may put events on that one bus. Events EventBridge
could not deliver after its retries wait in an encrypted dead-letter queue in the environment's
account (`deployline history redrive --queue <its URL>` replays them with that account's
credentials).
"""

from __future__ import annotations

import re

from aws_cdk import Aws, RemovalPolicy, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from deployline import contract
from deployline.constructs.deployment_history import (
    DeployedEnvironment,
    accept_named_accounts,
    acknowledge_dead_letter_queue,
    allow_eventbridge_to_use_key,
    dead_letter_queue,
    ecs_deployment_pattern,
)
from deployline.history_names import SQS_QUEUE
from deployline.naming import Kind, Namer

_BUS_ARN = re.compile(
    r"^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256}$"
)


class DeploymentEventForwarder(Construct):
    """Sends one ECS service's deployment events to the pipeline's deployment event bus.

    Attributes:
        rule: the rule on this account's default bus.
        role: the role EventBridge delivers with.
        dead_letter_queue: events that could not be delivered.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        cluster_name: str,
        service_name: str,
        bus_arn: str,
        key: kms.IKey,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            namer: the environment's namer (env = its name).
            cluster_name: the physical name of its ECS cluster.
            service_name: the physical name of its ECS service.
            bus_arn: the pipeline's deployment event bus (`deployment_event_bus_arn`).
            key: the environment's CMK for the dead-letter queue. Must be a `kms.Key` of this
                app: its policy gains a statement that lets EventBridge use it.
            removal: the dead-letter queue's removal policy. Default: RETAIN.
        """
        super().__init__(scope, id)
        source = DeployedEnvironment(
            name=namer.env,
            stage=contract.deploy_stage_name(namer.env),
            cluster=cluster_name,
            service=service_name,
        )
        source.validate()
        if not Token.is_unresolved(bus_arn) and not _BUS_ARN.match(bus_arn):
            raise ValueError(
                "bus_arn must be an event bus ARN like "
                f"arn:aws:events:<region>:<account>:event-bus/<name>, got {bus_arn!r}; use "
                "deployment_event_bus_arn(...)"
            )
        allow_eventbridge_to_use_key(key, sid="AllowEventBridgeForwardedDeadLetters")
        rule_name = namer.name("forward-deploys", Kind.EVENT_RULE)
        self.dead_letter_queue = dead_letter_queue(
            self,
            "DeadLetterQueue",
            name=namer.name("forward-dlq", SQS_QUEUE),
            key=key,
            removal=removal,
        )
        acknowledge_dead_letter_queue(
            self.dead_letter_queue, feeds=f"the rule {rule_name} that forwards ECS deployments"
        )
        self.role = self._role(namer, rule_name)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=rule_name,
            description=f"deployline: forwards ECS deployments of {service_name} to the "
            "pipeline's deployment event bus",
            event_pattern=ecs_deployment_pattern([source]),
            targets=[
                targets.EventBus(
                    events.EventBus.from_event_bus_arn(self, "PipelineBus", bus_arn),
                    role=self.role,
                    dead_letter_queue=self.dead_letter_queue,
                )
            ],
        )
        # The target added PutEvents on the bus to the role: no delivery before it exists.
        policy = self.role.node.find_child("DefaultPolicy")
        self.rule.node.add_dependency(policy)
        for construct in (self.rule, policy):
            accept_named_accounts(
                construct,
                "the target is the pipeline's deployment event bus, in the pipeline's account "
                "and region; this environment's stack can only name it",
            )

    def _role(self, namer: Namer, rule_name: str) -> iam.Role:
        """Trusts EventBridge for this rule only; the target adds PutEvents on the bus."""
        rule_arn = f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{rule_name}"
        return iam.Role(
            self,
            "Role",
            role_name=namer.name("forward-deploys", Kind.IAM_ROLE),
            description="deployline: EventBridge forwards this environment's ECS deployment "
            "events to the pipeline's deployment event bus",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnEquals": {"aws:SourceArn": rule_arn},
                },
            ),
        )
