"""DL502: an SNS topic that nobody subscribes to."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.events import pipeline_notification_topics
from deployline.checks.intrinsics import as_list, is_intrinsic, ref_like
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

# Resources that subscribe to SNS topics, and the property that names the topics.
_SUBSCRIBERS = {
    "AWS::SNS::Subscription": "TopicArn",
    "AWS::Chatbot::SlackChannelConfiguration": "SnsTopicArns",
    "AWS::Chatbot::MicrosoftTeamsChannelConfiguration": "SnsTopicArns",
}


class TopicSubscription(Rule):
    """A topic counts as subscribed when it has a non-empty `Subscription` list, an
    `AWS::SNS::Subscription` whose TopicArn references it, or an AWS Chatbot channel that lists
    it. HIGH for topics that receive pipeline, build or deployment notifications (targets of
    EventBridge rules on aws.codepipeline/aws.codebuild/aws.codedeploy, CodeStar notification
    rules, CodeDeploy triggers); MEDIUM for any other topic."""

    id = "DL502"
    severity = Severity.HIGH
    family = "Monitoring and audit"
    seed = "002 §6, 003 §6"
    title = "SNS topic without a subscription"
    resource_types = ("AWS::SNS::Topic", "AWS::SNS::Subscription")
    rationale = (
        "Notifications published to a topic without subscribers go nowhere: the alerting "
        "looks configured and nobody is told."
    )
    remediation = (
        "Subscribe the team: an AWS::SNS::Subscription (email, HTTPS, Lambda, SQS), the topic's "
        "Subscription list, or an AWS Chatbot channel."
    )
    fix_example = """\
AlertSubscription:
  Type: AWS::SNS::Subscription
  Properties:
    TopicArn: !Ref AlertTopic
    Protocol: email
    Endpoint: !Ref AlertEmail
"""

    def check(self, template: Template) -> Iterator[Hit]:
        topics = template.of_type("AWS::SNS::Topic")
        if not topics:
            return
        subscribed: set[str] = set()
        for rtype, prop in _SUBSCRIBERS.items():
            for res in template.of_type(rtype):
                for value in as_list(res.prop(prop)):
                    target = ref_like(value)
                    if target is not None:
                        subscribed.add(target)
        notified = pipeline_notification_topics(template)
        for topic in topics:
            if topic.logical_id in subscribed:
                continue
            inline = topic.prop("Subscription")
            if is_intrinsic(inline):
                yield self.unknown(
                    topic.logical_id,
                    "Properties.Subscription",
                    "the Subscription list is computed by an intrinsic",
                )
                continue
            if as_list(inline):
                continue
            if topic.logical_id in notified:
                yield self.hit(
                    topic.logical_id,
                    "Properties.Subscription",
                    "the topic receives pipeline notifications but has no subscription: they "
                    "reach nobody",
                )
            else:
                yield self.hit(
                    topic.logical_id,
                    "Properties.Subscription",
                    "the topic has no subscription",
                    severity=Severity.MEDIUM,
                )
