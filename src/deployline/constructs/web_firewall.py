"""An AWS WAF web ACL in front of an environment's load balancer, its requests logged.

Three AWS managed rule groups, evaluated in this order, block what they match and let everything
else through: the Amazon IP reputation list (sources AWS threat intelligence has seen attack),
the core rule set (the OWASP Top 10 kinds of request: cross-site scripting, path traversal, bad
bots, oversized bodies, ...) and known bad inputs (request patterns of published exploits, Log4j
among them). AWS keeps the groups up to date. Every request's verdict goes to a KMS-encrypted log
group, without its authorization and cookie headers.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from deployline import defaults
from deployline.naming import Kind, Namer

#: The AWS managed rule groups, in the order the web ACL evaluates them.
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
)
#: Headers whose values never reach the log: credentials and sessions.
REDACTED_HEADERS = ("authorization", "cookie")


def waf_log_group_name(namer: Namer) -> str:
    """`aws-waf-logs-{service}-{env}`: WAF logs only to log groups whose name starts so."""
    return f"aws-waf-logs-{namer.base}-{namer.env}"


class WebFirewall(Construct):
    """A regional web ACL associated with one resource (a load balancer), and its log.

    Attributes:
        web_acl: the web ACL.
        log_group: where every request's verdict is logged.
        web_acl_name: its physical name, `{service}-waf-{env}`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        resource_arn: str,
        key: kms.IKey,
        rule_groups: Sequence[str] = MANAGED_RULE_GROUPS,
        log_retention_days: int = defaults.LOG_RETENTION_DAYS,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            namer: names the web ACL `{service}-waf-{env}` and its log group
                `aws-waf-logs-{service}-{env}`.
            resource_arn: the Application Load Balancer the web ACL guards.
            key: CMK of the log group; it must allow CloudWatch Logs for that group.
            rule_groups: AWS managed rule groups, in evaluation order. Default:
                MANAGED_RULE_GROUPS (IP reputation, core rule set, known bad inputs).
            log_retention_days: Default: 30.
            removal: the log group's removal policy. Default: RETAIN.
        """
        super().__init__(scope, id)
        if not rule_groups:
            raise ValueError("rule_groups must name at least one AWS managed rule group, got none")
        if len(set(rule_groups)) != len(rule_groups):
            raise ValueError(f"rule_groups must not repeat, got {list(rule_groups)}")
        self.web_acl_name = namer.name("waf", Kind.GENERIC)
        self.log_group = defaults.encrypted_log_group(
            self,
            "Logs",
            name=waf_log_group_name(namer),
            key=key,
            retention_days=log_retention_days,
            removal=removal,
        )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=self.web_acl_name,
            description=f"deployline: guards the load balancer of {namer.service} in {namer.env}",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=[self._rule(group, priority) for priority, group in enumerate(rule_groups)],
            visibility_config=_visibility(self.web_acl_name),
        )
        wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=resource_arn, web_acl_arn=self.web_acl.attr_arn
        )
        self._log(self.log_group)

    @staticmethod
    def _rule(group: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
        return wafv2.CfnWebACL.RuleProperty(
            name=group,
            priority=priority,
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name=group
                )
            ),
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            visibility_config=_visibility(group),
        )

    def _log(self, group: logs.LogGroup) -> None:
        """Every request to the log group, named by its ARN without the `:*` that CloudWatch
        Logs' own ARN attribute ends with (WAF refuses it); the Ref to the group orders them."""
        arn = (
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
            f"{group.log_group_name}"
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[arn],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                for header in REDACTED_HEADERS
            ],
        )


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )
