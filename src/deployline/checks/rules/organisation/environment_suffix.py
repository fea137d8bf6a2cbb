"""DL702: a literal physical name without the environment suffix."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

from deployline.checks import data
from deployline.checks.intrinsics import literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.names import PHYSICAL_NAME_PROPS, name_text, physical_names
from deployline.checks.template import Template

_TRAILING_PSEUDO = re.compile(r"(?:[-_.]?\$\{AWS::(?:AccountId|Region|Partition|URLSuffix)\})+$")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


# Spellings of one environment: a resource tagged Environment=production may end in -prod.
_ALIASES = (
    frozenset({"prod", "production", "prd", "live"}),
    frozenset({"stage", "staging", "stg"}),
    frozenset({"dev", "development"}),
    frozenset({"test", "testing"}),
    frozenset({"preprod", "pre-prod"}),
    frozenset({"sandbox", "sbx"}),
    frozenset({"int", "integration"}),
)


# Environment names that are also ordinary words of a CamelCase name (`OrdersDeploymentTest`,
# `ApiIntegration`, `StatusLive`): only a separator makes them an environment suffix.
_ORDINARY_WORDS = frozenset({"test", "testing", "int", "integration", "live", "demo", "stage"})


def spellings(environment: str) -> set[str]:
    """The environment and its common aliases, lower case."""
    env = environment.strip().lower()
    out = {env}
    for group in _ALIASES:
        if env in group:
            out |= group
    return out


@lru_cache(maxsize=1)
def environment_names() -> frozenset[str]:
    return frozenset(str(e).lower() for e in data.items("environment_names"))


def carries_environment(name: str, environments: Iterable[str]) -> bool:
    """Does `name` end with one of `environments` (after a `-`, `_`, `.` or a CamelCase
    boundary), or carry one as a whole path segment (`/shop/prod/db-url`)?"""
    wanted = {e.lower() for e in environments}
    # account-wide qualifiers after the environment (`-prod-${AWS::AccountId}-${AWS::Region}`,
    # how bucket names are made globally unique) neither add nor remove the suffix
    name = _TRAILING_PSEUDO.sub("", name)
    segments = [s for s in re.split(r"[/:]", name) if s]
    if not segments:
        return False
    if any(s.lower() in wanted for s in segments[:-1]):
        return True
    last = segments[-1]
    lowered = last.lower()
    for env in wanted:
        if lowered == env:
            return True
        if lowered.endswith(env) and lowered[-len(env) - 1] in "-_.":
            return True
    words = _WORD.findall(last)  # a CamelCase word only when it can be nothing but an environment
    return bool(words) and words[-1].lower() in wanted - _ORDINARY_WORDS


class EnvironmentSuffix(Rule):
    """Physical names are the catalog's list (BucketName, RepositoryName, TableName,
    FunctionName, TopicName, LogGroupName, RoleName, ClusterName, ServiceName, and Name on
    pipelines, projects, event rules, SSM parameters and notification rules, AlarmName). A name
    passes when it varies between deployments: it is built with an intrinsic that references a
    parameter, a resource or ${AWS::StackName}. A literal name (or a Sub/Join made only of
    literals and the account-wide pseudo parameters AccountId/Region/Partition/URLSuffix, which
    collide just the same) must end with its environment: the resource's literal Environment
    tag when it has one (`-staging` for Environment=staging; common aliases such as prod for
    production count), otherwise one of the common
    environment names in a data file (dev, test, qa, uat, staging, preprod, prod, ...). The
    environment may also be a whole path segment of hierarchical names (`/shop/prod/db-url`).
    Names are read through the resolver: a `Fn::FindInMap`, `Fn::Sub` or parameter default that
    resolves to a literal is that literal. A CamelCase last word counts as the suffix only when
    it is not also an ordinary word (`...DeploymentTest` has no suffix; `...Prod` has one)."""

    id = "DL702"
    severity = Severity.MEDIUM
    family = "Organisation"
    seed = "002 §3, 003 §4, 004 §3"
    title = "Literal physical name without the environment suffix"
    resource_types = tuple(PHYSICAL_NAME_PROPS)
    rationale = (
        "A hard-coded name collides the second time the template is deployed (a second "
        "environment, a second region): the stack fails with 'already exists'."
    )
    remediation = (
        "Build names from the environment: !Sub '${Service}-artifacts-${Environment}', or leave "
        "the name out and let CloudFormation generate one."
    )
    fix_example = """\
ArtifactBucket:
  Type: AWS::S3::Bucket
  Properties:
    BucketName: !Sub shop-artifacts-${Environment}-${AWS::AccountId}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        common = environment_names()
        for res, prop, value in physical_names(template):
            text, varies = name_text(template.resolve(value))
            if varies or text is None:
                continue
            tag = literal_str(template.resolve(res.tags.get("Environment")))
            envs: Iterable[str] = spellings(tag) if tag else common
            if carries_environment(text, envs):
                continue
            expected = f"-{tag}" if tag else "an environment suffix (e.g. -prod, -staging)"
            yield self.hit(
                res.logical_id,
                f"Properties.{prop}",
                f"{prop} {text!r} is literal and does not end with {expected}: deploying the "
                "template twice collides",
            )
