"""The pipeline's deployment event bus: where environments in other accounts and regions send
their ECS service deployment events, for the recorder and the alerts to hear.

ECS emits "ECS Deployment State Change" in the account and region of the service. An environment
stack elsewhere holds a `DeploymentEventForwarder` whose rule sends its service's events here;
`DeploymentHistory` and `Notifications` put their rules for those environments on this bus. The
bus policy admits PutEvents from exactly the environments' accounts, and only events with the
ECS source and detail-type; an environment in the pipeline's account but another region needs no
policy statement (its forwarder's role is allowed by IAM).

The bus has a name `Namer` gives it, so an environment stack computes its ARN
(`deployment_event_bus_arn`) without referencing the pipeline stack.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Token
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from deployline.constructs.deployment_history import (
    ECS_DEPLOYMENT_DETAIL_TYPE,
    accept_named_accounts,
)
from deployline.naming import Limit, Namer

#: Event bus names are at most 256 characters.
EVENT_BUS = Limit("EventBridge event bus", 256)
_ACCOUNT = re.compile(r"^[0-9]{12}$")


def deployment_event_bus_name(namer: Namer) -> str:
    """`{prefix-}{service}-deploy-events-{env}` for the pipeline's namer."""
    return namer.name("deploy-events", EVENT_BUS)


def deployment_event_bus_arn(namer: Namer, *, account: str, region: str, partition: str) -> str:
    """The bus's ARN, for an environment stack to send to (`partition` is usually
    `Aws.PARTITION` of that stack; account and region are the pipeline's)."""
    return f"arn:{partition}:events:{region}:{account}:event-bus/{deployment_event_bus_name(namer)}"


class DeploymentEventBus(Construct):
    """An event bus that admits ECS deployment events from the environments' accounts.

    Attributes:
        bus: the event bus (pass it as `event_bus` to DeploymentHistory and Notifications).
        source_accounts: the accounts admitted, sorted.
    """

    def __init__(
        self, scope: Construct, id: str, *, namer: Namer, source_accounts: Sequence[str] = ()
    ) -> None:
        """
        Args:
            namer: the pipeline's namer (env = `naming.pipeline_environment`).
            source_accounts: the accounts of environments outside the pipeline's account
                (12-digit IDs). Default: none (environments only in other regions of the
                pipeline's account).
        """
        super().__init__(scope, id)
        for account in source_accounts:
            if not Token.is_unresolved(account) and not _ACCOUNT.match(account):
                raise ValueError(
                    f"source_accounts must be 12-digit account IDs, got {account!r}; list the "
                    "accounts of the environments outside the pipeline's account"
                )
        self.source_accounts = tuple(sorted(set(source_accounts)))
        self.bus = events.EventBus(self, "Bus", event_bus_name=deployment_event_bus_name(namer))
        if self.source_accounts:
            self._admit_accounts()

    def _admit_accounts(self) -> None:
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AcceptEcsDeploymentEventsFromEnvironmentAccounts",
                principals=[iam.AccountPrincipal(a) for a in self.source_accounts],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={
                    "StringEquals": {
                        "events:source": "aws.ecs",
                        "events:detail-type": ECS_DEPLOYMENT_DETAIL_TYPE,
                    }
                },
            )
        )
        for policy in self.bus.node.find_all():
            if isinstance(policy, events.CfnEventBusPolicy):
                accept_named_accounts(
                    policy,
                    f"the deployment event bus admits the environments' accounts "
                    f"{list(self.source_accounts)} by name: a bus policy can only name them",
                )
