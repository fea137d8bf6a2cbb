"""Where an environment's alarms reach the team, outside a deployment too.

A CloudWatch alarm's action publishes only to a topic of the alarm's own account and region, and
an environment may live in another account and region than the pipeline and its alert topic. So
each environment has a topic of its own (`{service}-alarms-{env}`), encrypted with the
environment's key, that the team's addresses subscribe to: the alarms need nothing outside their
stack to notify someone. An environment in the pipeline's account and region also notifies the
team's existing topic (`notifications.sns_topic_arn`), which its alarms can reach.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Aws, Token
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from deployline.constructs.notifications import (
    allow_alarms_to_publish,
    allow_publisher_to_use_key,
    subscribed_topic,
)
from deployline.naming import Kind, Namer

_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:(?P<name>[A-Za-z0-9_-]{1,256})$")


class AlarmTopic(Construct):
    """The topics an environment's alarms notify.

    Attributes:
        topic: the environment's own topic (encrypted with `key`, SSL only, the addresses
            subscribed), or None without emails and https_endpoint.
        existing_topic: the team's existing topic in this account and region, or None.
        topics: every topic the alarms notify: `topic`, then `existing_topic`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        key: kms.Key,
        emails: Sequence[str] = (),
        https_endpoint: str | None = None,
        existing_topic_arn: str | None = None,
    ) -> None:
        """
        Args:
            namer: names the topic `{service}-alarms-{env}`.
            key: the environment's key; CloudWatch alarms of this account may use it.
            emails: addresses subscribed to the topic (each confirms once, by e-mail).
                Default: none.
            https_endpoint: an HTTPS URL subscribed to the topic. Default: None.
            existing_topic_arn: the team's existing topic, in this stack's account and region
                (alarms publish to no other). The template names it by the stack's own account
                and region, so no account ID sits in it. Default: None.
        """
        super().__init__(scope, id)
        name = self._validate(existing_topic_arn)
        self.topic: sns.Topic | None = None
        if emails or https_endpoint is not None:
            allow_publisher_to_use_key(key, "cloudwatch.amazonaws.com")
            self.topic = subscribed_topic(
                self,
                "Topic",
                name=namer.name("alarms", Kind.SNS_TOPIC),
                display_name=f"deployline {namer.service} {namer.env}",
                key=key,
                emails=emails,
                https_endpoint=https_endpoint,
            )
            allow_alarms_to_publish(self.topic)
        self.existing_topic: sns.ITopic | None = None
        if name is not None:
            self.existing_topic = sns.Topic.from_topic_arn(
                self,
                "ExistingTopic",
                f"arn:{Aws.PARTITION}:sns:{Aws.REGION}:{Aws.ACCOUNT_ID}:{name}",
            )
        self.topics: tuple[sns.ITopic, ...] = tuple(
            t for t in (self.topic, self.existing_topic) if t is not None
        )

    @staticmethod
    def _validate(existing_topic_arn: str | None) -> str | None:
        """The existing topic's name (its account and region are the stack's)."""
        if existing_topic_arn is None:
            return None
        if Token.is_unresolved(existing_topic_arn):
            raise ValueError(
                "existing_topic_arn must be a literal SNS topic ARN (its name is kept, its account "
                "and region become the stack's), got a token"
            )
        match = _SNS_ARN.match(existing_topic_arn)
        if match is None:
            raise ValueError(
                "existing_topic_arn must be an SNS topic ARN like "
                f"arn:aws:sns:<region>:<account>:<name>, got {existing_topic_arn!r}"
            )
        return match.group("name")
