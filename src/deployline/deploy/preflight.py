"""Checks that run before a deploy creates anything; each failure names its fix (a command).

1. Credentials, and the account they belong to (the config's pipeline account, when it names
   one: every other account trusts that one).
2. In each target account and region, the bootstrap stack: the SSM parameter that holds its
   version (`/cdk-bootstrap/<qualifier>/version`), at least the version the templates need, and
   the bucket the stacks' files are published to.
3. For a GitHub source, when the pipeline stack is deployed: the connection ARN's SSM parameter
   exists and the connection is AVAILABLE (a new connection stays PENDING until someone finishes
   the handshake in the console).
4. E-mail subscriptions of the alert topic, and of each deployed environment's alarm topic, that
   were never confirmed (a warning: alerts to that address are dropped until it is).
5. For each environment deployed with `hosted_zone_id`: the zone exists in the environment's
   account, is public, and holds `domain_name` (otherwise the certificate's DNS validation never
   completes and the first deploy waits hours for it before failing).
   With `certificate_arn`: the certificate is ISSUED and covers `domain_name` (a load balancer
   refuses any other, and CloudFormation fails the stack on it).
6. The existing topic of `notifications.sns_topic_arn`, when the pipeline stack is deployed: it
   exists, its policy lets EventBridge publish (and CloudWatch alarms, when the policy names
   principals at all), and a customer managed key that encrypts it lets both use the key
   (warnings: AWS accepts the rules and alarms either way, then drops every alert unseen).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from deployline.config import DeploylineConfig, EnvironmentConfig, GitHubSource
from deployline.contract import DEFAULT_BOOTSTRAP_QUALIFIER
from deployline.deploy.assembly import Placement, StackArtifact, substitute
from deployline.deploy.aws import Aws, AwsError, describe
from deployline.deploy.cdk import CDK_CLI_VERSION
from deployline.naming import Kind, Namer
from deployline.runtime.clients import error_code

#: The policy `cdk bootstrap --trust` must be given; the CDK default, written out.
EXECUTION_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
_QUALIFIER = re.compile(r"^/cdk-bootstrap/([^/]+)/version$")


@dataclass(frozen=True)
class Check:
    """One preflight check: what was checked, what was found and, when it failed, the fix."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    #: False for warnings: reported, but the deploy goes ahead.
    blocking: bool = True


@dataclass
class Preflight:
    """The checks, in the order they ran."""

    checks: list[Check] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.blocking]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and not c.blocking]

    @property
    def passed(self) -> bool:
        return not self.failures

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check


#: Makes the client that reads a connection: (service, region) -> client. Tests hand in a
#: stubbed one, since moto has no CodeConnections.
ConnectionClient = Callable[[str, str], Any]


def run_preflight(
    config: DeploylineConfig,
    stacks: Sequence[StackArtifact],
    aws: Aws,
    *,
    pipeline_stack: str | None = None,
    connection_client: ConnectionClient | None = None,
) -> Preflight:
    """Every check for deploying `stacks` of `config` with `aws`'s credentials.

    `pipeline_stack` names the pipeline's stack when it is among `stacks` (the source connection
    matters only then).
    """
    result = Preflight()
    if not result.add(check_credentials(aws)).ok:
        return result
    if not result.add(check_account(config, stacks, aws)).ok:
        return result
    ready: list[StackArtifact] = []  # where the bootstrap (and its lookup role) is in place
    for placement, group in _by_placement(stacks, aws).items():
        checks = check_bootstrap(config, placement, group, aws)
        result.checks.extend(checks)
        ready.extend(group if all(c.ok for c in checks) else [])
    result.checks.extend(check_hosted_zones(config, ready, aws))
    result.checks.extend(check_certificates(config, ready, aws))
    result.checks.extend(check_alarm_subscriptions(config, ready, aws))
    deploys_pipeline = pipeline_stack is not None and any(
        s.stack_name == pipeline_stack for s in stacks
    )
    if deploys_pipeline and isinstance(config.source, GitHubSource):
        result.add(check_connection(config, config.source, aws, connection_client))
    if deploys_pipeline:
        result.checks.extend(check_subscriptions(config, aws))
        result.checks.extend(check_existing_topic(config, aws))
    return result


def _error(name: str, exc: BaseException, doing: str, *, blocking: bool = True) -> Check:
    error = describe(exc, doing)
    return Check(name, False, error.problem, error.fix, blocking)


# ---- credentials and account --------------------------------------------------------------


def check_credentials(aws: Aws) -> Check:
    try:
        identity = aws.identity
        region = aws.region
    except AwsError as exc:
        return Check("credentials", False, exc.problem, exc.fix)
    return Check("credentials", True, f"{identity.arn} (account {identity.account}, {region})")


def check_account(config: DeploylineConfig, stacks: Sequence[StackArtifact], aws: Aws) -> Check:
    """With accounts in the config: the credentials belong to the pipeline's account (which
    every other account trusts), or to the one account all `stacks` go to."""
    account = aws.identity.account
    if config.is_environment_agnostic:
        return Check("account", True, f"{account} (deployline.yaml names no account)")
    home = config.pipeline.account
    targets = {s.placement.account for s in stacks}
    if account == home or targets == {account}:
        return Check("account", True, f"{account}")
    return Check(
        "account",
        False,
        f"the credentials are for account {account} ({aws.identity.arn}), but "
        f"deployline.yaml's pipeline.account is {home}: the other accounts trust that one",
        f"use credentials for account {home}: `aws sso login --profile <a profile for {home}>` "
        "and pass --profile with it",
    )


def _by_placement(
    stacks: Sequence[StackArtifact], aws: Aws
) -> dict[Placement, list[StackArtifact]]:
    groups: dict[Placement, list[StackArtifact]] = {}
    for stack in stacks:
        where = stack.placement.resolve(account=aws.identity.account, region=aws.region)
        groups.setdefault(where, []).append(stack)
    return groups


# ---- bootstrap ----------------------------------------------------------------------------


def bootstrap_command(
    placement: Placement, *, qualifier: str, trust: str | None, profile: str | None = None
) -> str:
    """The exact `cdk bootstrap` that prepares `placement` (with `--trust` for the pipeline's
    account when it is another one)."""
    parts = [f"npx aws-cdk@{CDK_CLI_VERSION} bootstrap {placement}"]
    if qualifier != DEFAULT_BOOTSTRAP_QUALIFIER:
        parts.append(f"--qualifier {qualifier}")
    if trust and trust != placement.account:
        parts.append(
            f"--trust {trust} --trust-for-lookup {trust} "
            f"--cloudformation-execution-policies {EXECUTION_POLICY}"
        )
    if profile:
        parts.append(f"--profile {profile}")
    return " ".join(parts)


def check_bootstrap(
    config: DeploylineConfig, placement: Placement, stacks: Sequence[StackArtifact], aws: Aws
) -> list[Check]:
    """The bootstrap version parameter and asset bucket in one account and region."""
    assert placement.account is not None and placement.region is not None
    account, region = placement.account, placement.region
    name = f"bootstrap {placement}"
    parameter = next((s.bootstrap_version_parameter for s in stacks), None)
    parameter = parameter or f"/cdk-bootstrap/{DEFAULT_BOOTSTRAP_QUALIFIER}/version"
    match = _QUALIFIER.match(parameter)
    qualifier = match.group(1) if match else config.pipeline.bootstrap_qualifier
    trust = None if config.is_environment_agnostic else config.pipeline.account
    mine = account == aws.identity.account
    fix = bootstrap_command(
        placement, qualifier=qualifier, trust=trust, profile=aws.profile if mine else None
    )
    if not mine:
        fix += f" (with credentials for account {account})"
    role_arn = next(
        (r for s in stacks if (r := s.role("deploy", placement, aws.identity.partition))), None
    )
    try:
        ssm = aws.client("ssm", region=region, account=account, role_arn=role_arn)
        answer = ssm.get_parameter(Name=parameter)
    except Exception as exc:
        code = error_code(exc)
        if code == "ParameterNotFound":
            return [Check(name, False, f"not bootstrapped (no SSM parameter {parameter})", fix)]
        if code == "AccessDenied" and not mine:
            return [
                Check(
                    name,
                    False,
                    f"cannot assume {role_arn}: account {account} is not bootstrapped with "
                    f"--trust {aws.identity.account} (or with another qualifier)",
                    fix,
                )
            ]
        return [_error(name, exc, f"reading {parameter} in {placement}")]
    version = int(answer["Parameter"]["Value"])
    needed = max(s.requires_bootstrap_version for s in stacks)
    if version < needed:
        return [
            Check(
                name,
                False,
                f"bootstrap version {version} is older than the {needed} these templates need",
                fix,
            )
        ]
    checks = [Check(name, True, f"version {version} (qualifier {qualifier})")]
    checks.extend(_check_buckets(stacks, placement, aws, role_arn, fix))
    return checks


def _check_buckets(
    stacks: Sequence[StackArtifact],
    placement: Placement,
    aws: Aws,
    role_arn: str | None,
    bootstrap_fix: str,
) -> list[Check]:
    assert placement.account is not None and placement.region is not None
    buckets = sorted(
        {
            substitute(b, account=placement.account, region=placement.region)
            for s in stacks
            for b in s.asset_buckets
        }
    )
    s3 = aws.client("s3", region=placement.region, account=placement.account, role_arn=role_arn)
    out = []
    for bucket in buckets:
        name = f"bootstrap bucket {bucket}"
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception as exc:
            code = error_code(exc)
            if code in {"403", "AccessDenied"}:  # it exists; its policy decides who reads it
                out.append(Check(name, True, "exists (not readable with these credentials)"))
            elif code in {"404", "NoSuchBucket", "NotFound"}:
                out.append(
                    Check(
                        name,
                        False,
                        "missing, though the bootstrap version parameter exists (deleted by "
                        "hand?); CloudFormation will not recreate a bucket it believes exists",
                        "delete the bootstrap stack, then bootstrap again: `aws cloudformation "
                        f"delete-stack --stack-name CDKToolkit --region {placement.region}`, then "
                        f"`{bootstrap_fix}`",
                    )
                )
            else:
                out.append(_error(name, exc, f"looking for {bucket}"))
            continue
        out.append(Check(name, True, "exists"))
    return out


# ---- the source connection ----------------------------------------------------------------

CONNECTIONS_CONSOLE = (
    "https://console.aws.amazon.com/codesuite/settings/connections?region={region}"
)


def check_connection(
    config: DeploylineConfig,
    source: GitHubSource,
    aws: Aws,
    connection_client: ConnectionClient | None = None,
) -> Check:
    """The connection ARN (from its SSM parameter, or literal) names an AVAILABLE connection."""
    region = config.pipeline.region or aws.region
    console = CONNECTIONS_CONSOLE.format(region=region)
    arn = source.connection_arn
    if source.connection_parameter is not None:
        name = source.connection_parameter
        try:
            arn = aws.client("ssm", region=region).get_parameter(Name=name)["Parameter"]["Value"]
        except Exception as exc:
            if error_code(exc) != "ParameterNotFound":
                return _error("source connection", exc, f"reading {name}")
            return Check(
                "source connection",
                False,
                f"SSM parameter {name} (source.connection_parameter) does not exist in {region}",
                f"create a connection to GitHub ({console} → Create connection), finish its "
                f"handshake, then `aws ssm put-parameter --region {region} --type String "
                f"--name {name} --value <the connection's ARN>`",
            )
    assert arn is not None
    return _connection_status(arn, aws, connection_client, console)


def _connection_status(
    arn: str, aws: Aws, connection_client: ConnectionClient | None, console: str
) -> Check:
    parts = arn.split(":")
    if len(parts) < 6 or ":connection/" not in arn:
        return Check(
            "source connection",
            False,
            f"{arn!r} is not a connection ARN",
            "store the ARN of a connection (arn:aws:codeconnections:<region>:<account>:"
            f"connection/<id>, from {console}) in the parameter (`aws ssm put-parameter "
            "--overwrite ...`)",
        )
    service = "codeconnections" if parts[2] == "codeconnections" else "codestar-connections"
    region = parts[3]
    make = connection_client or (lambda svc, rgn: aws.client(svc, region=rgn))
    try:
        status = make(service, region).get_connection(ConnectionArn=arn)["Connection"]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return Check(
                "source connection",
                False,
                f"connection {arn} does not exist (deleted?)",
                f"create a connection ({console}), then store its ARN in the parameter",
            )
        return _error("source connection", exc, f"reading {arn}")
    state = status.get("ConnectionStatus", "?")
    if state == "AVAILABLE":
        return Check("source connection", True, f"{arn} is AVAILABLE")
    return Check(
        "source connection",
        False,
        f"connection {status.get('ConnectionName', arn)} is {state}, not AVAILABLE",
        f"open {console}, choose the connection and finish its handshake (Update pending "
        "connection); a connection in ERROR must be updated or created again",
    )


# ---- e-mail subscriptions -----------------------------------------------------------------


def alert_topic_arn(config: DeploylineConfig, *, partition: str, account: str, region: str) -> str:
    """The pipeline's alert topic, named as the Notifications construct names it."""
    namer = Namer(config.service, config.naming.pipeline_environment, config.naming.prefix)
    return f"arn:{partition}:sns:{region}:{account}:{namer.name('alerts', Kind.SNS_TOPIC)}"


def check_subscriptions(config: DeploylineConfig, aws: Aws, sns: Any = None) -> list[Check]:
    """A warning per e-mail address that never confirmed its subscription to the pipeline's
    alert topic. `sns` (Default: a client in the pipeline's region) lists the subscriptions."""
    if not config.notifications.emails:
        return []
    region = config.pipeline.region or aws.region
    topic = alert_topic_arn(
        config, partition=aws.identity.partition, account=aws.identity.account, region=region
    )
    return _pending_subscriptions(
        "e-mail subscriptions",
        topic,
        lambda: sns or aws.client("sns", region=region),
        created="the alert topic is created by this deploy; AWS then e-mails each address in "
        "notifications.emails a link to confirm",
    )


def check_alarm_subscriptions(
    config: DeploylineConfig,
    stacks: Sequence[StackArtifact],
    aws: Aws,
    sns: ClientFor | None = None,
) -> list[Check]:
    """The same for each deployed environment's own alarm topic (`{service}-alarms-{env}`, in
    the environment's account and region), each address confirming once per topic. `sns`
    (Default: a client where the stack goes, as its bootstrap lookup role) per stack."""
    if not config.notifications.emails:
        return []
    checks: list[Check] = []
    for _, env, namer, stack in _deployed_environments(config, stacks):
        where = aws.placement(stack)
        topic = (
            f"arn:{aws.identity.partition}:sns:{where.region}:{where.account}:"
            f"{namer.name('alarms', Kind.SNS_TOPIC)}"
        )
        checks.extend(
            _pending_subscriptions(
                f"e-mail subscriptions ({env.name} alarms)",
                topic,
                partial(_lookup_client, aws, stack, "sns", sns),
                created=f"{env.name}'s alarm topic is created by this deploy; AWS then e-mails "
                "each address a link to confirm (once per topic)",
                suffix=f" ({env.name} alarms)",
            )
        )
    return checks


#: Makes the client for a service where a stack goes (tests hand in moto's or a stub).
ClientFor = Callable[[StackArtifact], Any]


def _deployed_environments(
    config: DeploylineConfig, stacks: Sequence[StackArtifact]
) -> Iterator[tuple[int, EnvironmentConfig, Namer, StackArtifact]]:
    """(index in deployline.yaml, environment, its namer, its stack) for each environment whose
    stack is among `stacks`."""
    by_name = {s.stack_name: s for s in stacks}
    for index, env in enumerate(config.environments):
        namer = Namer(config.service, env.name, config.naming.prefix)
        stack = by_name.get(namer.stack_name())
        if stack is not None:
            yield index, env, namer, stack


def _lookup_client(aws: Aws, stack: StackArtifact, service: str, make: ClientFor | None) -> Any:
    """`make(stack)`, else a client where `stack` goes, as its bootstrap lookup role."""
    return make(stack) if make else aws.stack_client(service, stack, role="lookup")


def _pending_subscriptions(
    name: str, topic: str, client: Callable[[], Any], *, created: str, suffix: str = ""
) -> list[Check]:
    region = topic.split(":")[3]
    try:
        pages = client().get_paginator("list_subscriptions_by_topic")
        subscriptions = [
            s for page in pages.paginate(TopicArn=topic) for s in page["Subscriptions"]
        ]
    except Exception as exc:
        if error_code(exc) in {"NotFound", "NotFoundException"}:
            return [Check(name, True, created, blocking=False)]
        return [_error(name, exc, f"listing {topic}", blocking=False)]
    pending = sorted(
        s["Endpoint"]
        for s in subscriptions
        if s.get("Protocol") == "email" and s.get("SubscriptionArn") == "PendingConfirmation"
    )
    if not pending:
        return [Check(name, True, "confirmed", blocking=False)]
    return [
        Check(
            f"e-mail subscription {address}{suffix}",
            False,
            "not confirmed: alerts to this address are dropped",
            "confirm the e-mail from AWS Notifications; to have it sent again: `aws sns "
            f"subscribe --region {region} --topic-arn {topic} --protocol email "
            f"--notification-endpoint {address}`",
            blocking=False,
        )
        for address in pending
    ]


# ---- hosted zones -------------------------------------------------------------------------


def check_hosted_zones(
    config: DeploylineConfig,
    stacks: Sequence[StackArtifact],
    aws: Aws,
    route53: ClientFor | None = None,
) -> list[Check]:
    """For each environment stack deployed with `hosted_zone_id`: the zone exists, is public and
    holds `domain_name`. `route53` (Default: a client where the stack goes, as its bootstrap
    lookup role) makes the client for a stack."""
    return [
        _hosted_zone_check(index, env, partial(_lookup_client, aws, stack, "route53", route53))
        for index, env, _, stack in _deployed_environments(config, stacks)
        if env.hosted_zone_id and env.domain_name
    ]


def _hosted_zone_check(index: int, env: EnvironmentConfig, client: Callable[[], Any]) -> Check:
    assert env.hosted_zone_id and env.domain_name
    zone_id, domain = env.hosted_zone_id, env.domain_name
    field, name = f"environments[{index}].hosted_zone_id", f"hosted zone of {env.name}"
    return _read_and_judge(
        name,
        lambda: client().get_hosted_zone(Id=zone_id)["HostedZone"],
        lambda zone: _zone_holds(zone, domain, field, name),
        missing={"NoSuchHostedZone", "InvalidInput"},
        absent=Check(
            name,
            False,
            f"{field}: no hosted zone {zone_id} in the account {env.name} deploys to",
            f"give the ID of the public zone that holds {domain} "
            "(`aws route53 list-hosted-zones-by-name`)",
        ),
        doing=f"reading hosted zone {zone_id}",
    )


def _read_and_judge(
    name: str,
    read: Callable[[], Any],
    judge: Callable[[Any], Check],
    *,
    missing: set[str],
    absent: Check,
    doing: str,
) -> Check:
    """`judge(read())`; `absent` when AWS answers one of the `missing` error codes."""
    try:
        found = read()
    except Exception as exc:
        return absent if error_code(exc) in missing else _error(name, exc, doing)
    return judge(found)


def _zone_holds(zone: dict[str, Any], domain: str, field: str, name: str) -> Check:
    zone_name = zone["Name"].rstrip(".").lower()
    wanted = domain.rstrip(".").lower()
    if zone.get("Config", {}).get("PrivateZone"):
        return Check(
            name,
            False,
            f"{field}: {zone_name} is a private zone; ACM validates the certificate through "
            "public DNS, so it would never be issued",
            f"give the ID of the public zone that holds {wanted}",
        )
    if wanted != zone_name and not wanted.endswith("." + zone_name):
        return Check(
            name,
            False,
            f"{field}: zone {zone_name} cannot hold {wanted}, so the certificate's validation "
            "record and the alias would land in the wrong zone",
            f"give the ID of the zone of {wanted}, or a domain_name under {zone_name}",
        )
    return Check(name, True, f"{zone_name} (public) holds {wanted}")


def check_certificates(
    config: DeploylineConfig,
    stacks: Sequence[StackArtifact],
    aws: Aws,
    acm: ClientFor | None = None,
) -> list[Check]:
    """For each environment stack deployed with `certificate_arn`: the certificate is ISSUED
    and covers `domain_name`. `acm` (Default: a client where the stack goes, as its bootstrap
    lookup role) makes the client for a stack."""
    return [
        _certificate_check(index, env, partial(_lookup_client, aws, stack, "acm", acm))
        for index, env, _, stack in _deployed_environments(config, stacks)
        if env.certificate_arn and env.domain_name
    ]


def _certificate_check(index: int, env: EnvironmentConfig, client: Callable[[], Any]) -> Check:
    assert env.certificate_arn and env.domain_name
    arn, domain = env.certificate_arn, env.domain_name
    field, name = f"environments[{index}].certificate_arn", f"certificate of {env.name}"
    return _read_and_judge(
        name,
        lambda: client().describe_certificate(CertificateArn=arn)["Certificate"],
        lambda certificate: _certificate_covers(certificate, domain, field, name),
        missing={"ResourceNotFoundException"},
        absent=Check(
            name,
            False,
            f"{field}: no certificate {arn} where {env.name} deploys",
            "request or import the certificate in the environment's account and region "
            "(`aws acm list-certificates`), or give hosted_zone_id instead",
        ),
        doing=f"reading {arn}",
    )


def _certificate_covers(certificate: dict[str, Any], domain: str, field: str, name: str) -> Check:
    status = certificate.get("Status", "UNKNOWN")
    names = [certificate.get("DomainName", ""), *certificate.get("SubjectAlternativeNames", [])]
    wanted = domain.rstrip(".").lower()
    if status != "ISSUED":
        return Check(
            name,
            False,
            f"{field}: the certificate is {status}, not ISSUED; a load balancer takes issued "
            "certificates only",
            "finish its validation (`aws acm describe-certificate` shows the DNS record to "
            "create) or request a new one",
        )
    if not any(_dns_name_covers(n.lower(), wanted) for n in names if n):
        return Check(
            name,
            False,
            f"{field}: the certificate covers {', '.join(sorted(set(names)))}, not {wanted}; "
            "browsers would refuse the service",
            f"give a certificate for {wanted}, or change domain_name",
        )
    return Check(name, True, f"ISSUED, covers {wanted}")


def _dns_name_covers(pattern: str, name: str) -> bool:
    """A certificate name covers `name` exactly, or as a wildcard for one label."""
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


# ---- the team's existing topic ------------------------------------------------------------

#: Who publishes deployline's alerts to notifications.sns_topic_arn, and with what.
_PUBLISHERS = {
    "events.amazonaws.com": "EventBridge (the pipeline's failure, approval and deploy alerts)",
    "cloudwatch.amazonaws.com": "CloudWatch alarms (stuck runs, failed builds and deploys)",
}
_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


def check_existing_topic(
    config: DeploylineConfig, aws: Aws, sns: Any = None, kms: Any = None
) -> list[Check]:
    """Warnings when `notifications.sns_topic_arn` would drop deployline's alerts: no such topic,
    a topic policy that does not let EventBridge (or CloudWatch alarms) publish, or a key that
    does not let them encrypt. `sns` and `kms` (Default: clients in the topic's region) read the
    topic's attributes and its key's policy."""
    topic = config.notifications.sns_topic_arn
    if not topic:
        return []
    name = "existing alert topic"
    region = topic.split(":")[3]
    try:
        attributes = (sns or aws.client("sns", region=region)).get_topic_attributes(TopicArn=topic)[
            "Attributes"
        ]
    except Exception as exc:
        if error_code(exc) in {"NotFound", "NotFoundException"}:
            return [
                Check(
                    name,
                    False,
                    f"notifications.sns_topic_arn names {topic}, which does not exist: every "
                    "alert sent to it is dropped",
                    "create the topic, or correct notifications.sns_topic_arn in deployline.yaml",
                    blocking=False,
                )
            ]
        return [_error(name, exc, f"reading {topic}", blocking=False)]
    checks = [_topic_policy_check(topic, attributes.get("Policy"))]
    key = attributes.get("KmsMasterKeyId")
    if key:
        checks.append(_topic_key_check(topic, key, region, aws, kms))
    return checks


def _topic_policy_check(topic: str, policy_text: str | None) -> Check:
    statements = _statements(policy_text)
    missing = [
        service
        for service in _PUBLISHERS
        if not _allows(statements, service, ("sns:Publish",), topic)
        # CloudWatch alarms of the topic's own account publish under the default topic policy
        # (every principal of the owner account); EventBridge needs its service principal.
        and not (service == "cloudwatch.amazonaws.com" and _allows_any_principal(statements))
    ]
    if not missing:
        return Check(
            "existing alert topic policy",
            True,
            "lets EventBridge and CloudWatch alarms publish",
            blocking=False,
        )
    return Check(
        "existing alert topic policy",
        False,
        f"the policy of {topic} does not let "
        + " nor ".join(_PUBLISHERS[s] for s in missing)
        + " publish: AWS drops those alerts",
        "add to the topic policy a statement allowing sns:Publish on the topic to the service "
        f"principal(s) {', '.join(missing)}, with aws:SourceAccount set to the pipeline's "
        "account (the README's Alerts section shows it)",
        blocking=False,
    )


def _topic_key_check(topic: str, key: str, region: str, aws: Aws, kms: Any) -> Check:
    name = "existing alert topic key"
    if key.lower() in {"alias/aws/sns", "arn:aws:kms:alias/aws/sns"} or key.endswith(
        ":alias/aws/sns"
    ):
        return Check(
            name,
            False,
            f"{topic} is encrypted with the AWS managed key alias/aws/sns, whose policy AWS "
            "keeps closed to EventBridge and CloudWatch: AWS drops every alert",
            "encrypt the topic with a customer managed key whose policy lets "
            "events.amazonaws.com and cloudwatch.amazonaws.com use kms:GenerateDataKey* and "
            "kms:Decrypt",
            blocking=False,
        )
    try:
        client = kms or aws.client("kms", region=region)
        key_id = client.describe_key(KeyId=key)["KeyMetadata"]["KeyId"]
        policy = client.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    except Exception as exc:
        return _error(
            name, exc, f"reading the policy of {key}, which encrypts {topic}", blocking=False
        )
    statements = _statements(policy)
    missing = [s for s in _PUBLISHERS if not _allows(statements, s, _KEY_ACTIONS, "*")]
    if not missing:
        return Check(
            name, True, f"{key} lets EventBridge and CloudWatch alarms use it", blocking=False
        )
    return Check(
        name,
        False,
        f"{key}, which encrypts {topic}, does not let "
        + " nor ".join(_PUBLISHERS[s] for s in missing)
        + " use it: AWS drops those alerts",
        f"add to the key policy a statement allowing {', '.join(missing)} "
        "kms:GenerateDataKey* and kms:Decrypt",
        blocking=False,
    )


def _statements(policy_text: str | None) -> list[dict[str, Any]]:
    try:
        document = json.loads(policy_text or "{}")
    except ValueError:
        return []
    found = document.get("Statement", []) if isinstance(document, dict) else []
    found = [found] if isinstance(found, dict) else found
    return [s for s in found if isinstance(s, dict) and s.get("Effect") == "Allow"]


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]


def _matches(patterns: list[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)


def _allows(
    statements: list[dict[str, Any]], service: str, actions: Sequence[str], resource: str
) -> bool:
    """Does an Allow statement give `service` every one of `actions` on `resource`? Conditions
    are the owner's to judge (aws:SourceAccount narrows, it does not deny deployline)."""
    for statement in statements:
        principal = statement.get("Principal")
        services = _listed(principal.get("Service")) if isinstance(principal, dict) else []
        if principal != "*" and service not in services:
            continue
        granted = _listed(statement.get("Action"))
        if not all(_matches(granted, action) for action in actions):
            continue
        if resource == "*" or _matches(_listed(statement.get("Resource")), resource):
            return True
    return False


def _allows_any_principal(statements: list[dict[str, Any]]) -> bool:
    """Does an Allow statement admit every AWS principal (the default topic policy, narrowed to
    the owner account by AWS:SourceOwner)?"""
    return any(
        (
            s.get("Principal") == "*"
            or (isinstance(s.get("Principal"), dict) and "*" in _listed(s["Principal"].get("AWS")))
        )
        and _matches(_listed(s.get("Action")), "sns:Publish")
        for s in statements
    )
