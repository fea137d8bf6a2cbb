"""The internet-facing Application Load Balancer in front of an environment's service.

HTTP on `listener_port`, or HTTPS on 443 with a modern TLS policy when a certificate is given or
created (the HTTP port then redirects). With a hosted zone, the load balancer creates the
certificate for `domain_name` (ACM, validated by DNS in that zone) and points the name at itself.
Blue/green environments get a second target group, a test listener, and on each listener a rule
that forwards every path to both target groups by weight (blue 100, green 0 at creation): those
two rules are what ECS re-weights during a deployment, test traffic first, then production. The
listeners' own default actions only forward too, since ECS refuses listeners whose rules mix
forward with redirect, fixed-response or authenticate actions. Invalid header fields are dropped;
access logs go to a versioned S3 bucket that only the load balancer may write to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnCondition,
    CfnMapping,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Token,
    Validations,
    region_info,
)
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deployline import defaults
from deployline.constructs import compliance
from deployline.naming import Kind, Namer, fit

HTTPS_PORT = 443
#: TLS 1.2 and 1.3 with forward-secret AEAD ciphers only (ELBSecurityPolicy-TLS13-1-2-Res-2021-06).
TLS_POLICY = elbv2.SslPolicy.TLS13_RES
_ACCESS_LOG_PREFIX = "alb"
#: The longest `-{account}-{region}` a bucket name carries (12 digits, a 14-character region).
_ACCOUNT_REGION_LEN = 1 + 12 + 1 + 14
_OPEN_CIDRS = {"0.0.0.0/0"}
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/(?P<id>[0-9a-f-]{36})$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
#: The priority of the blue/green rules, the only rule on each listener.
BLUE_GREEN_RULE_PRIORITY = 1
#: How long a stopping target drains. Default: 30 seconds.
DEFAULT_DEREGISTRATION_DELAY = Duration.seconds(30)


class ServiceLoadBalancer(Construct):
    """An ALB with its security group, listeners, target groups and access-log bucket.

    Attributes:
        load_balancer: the ALB.
        security_group: the ALB's security group (ingress from the configured CIDRs only; egress
            is added per target with `connections`).
        listener: the production listener (HTTPS with a certificate, else HTTP).
        redirect_listener: the HTTP listener that redirects to HTTPS, else None.
        test_listener: the blue/green test listener, else None.
        production_rule: the blue/green rule on the production listener that ECS re-weights,
            else None.
        test_rule: the blue/green rule on the test listener that ECS re-weights, else None.
        target_group: the (blue) target group the production listener forwards to.
        green_target_group: the blue/green replacement target group, else None.
        target_groups: every target group, blue first.
        certificate: the certificate the HTTPS listeners serve (given or created), else None.
        alias_record: the DNS record pointing domain_name at the load balancer (with a hosted
            zone), else None.
        access_logs: the access-log bucket (SSE-S3: the only encryption ALB logging supports).
        url: `http(s)://<name>[:port]` of the production listener (a token).
        test_url: the test listener's URL, else None.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        target_port: int,
        health_check_path: str,
        ingress_cidrs: Sequence[str],
        listener_port: int = 80,
        certificate_arn: str | None = None,
        domain_name: str | None = None,
        hosted_zone_id: str | None = None,
        blue_green: bool = False,
        test_listener_port: int = 8080,
        test_listener_cidrs: Sequence[str] = (),
        deregistration_delay: Duration = DEFAULT_DEREGISTRATION_DELAY,
        access_log_expiry_days: int = 90,
        deletion_protection: bool = False,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            namer: names the ALB, target groups and bucket.
            vpc: the VPC.
            subnets: public subnets in at least two zones.
            target_port: the container port the target groups send traffic to.
            health_check_path: what the target groups request to decide a task is healthy.
            ingress_cidrs: who may reach the production (and redirect) listener.
            listener_port: the HTTP listener's port. Default: 80.
            certificate_arn: ACM certificate; HTTPS on 443, HTTP redirects. Default: the one
                created with hosted_zone_id, else none (HTTP only).
            domain_name: the name the certificate covers; the URLs use it. Default: the ALB's
                DNS name.
            hosted_zone_id: the Route 53 public hosted zone (in this account) that holds
                domain_name: an alias record points domain_name at the load balancer, and
                without certificate_arn an ACM certificate for domain_name is created and
                validated by DNS in that zone. Default: none (you point the name yourself).
            blue_green: add a green target group, a test listener and the two weighted rules ECS
                shifts traffic with. Default: false.
            test_listener_port: the test listener's port (blue_green). Default: 8080.
            test_listener_cidrs: who may reach the test listener (blue_green). Default: nobody
                (the deployment's validation hook reads target health, not the listener).
            deregistration_delay: how long a stopping target drains. Default: 30 seconds.
            access_log_expiry_days: access logs are deleted after this many days. Default: 90.
            deletion_protection: refuse to delete the ALB (production). Default: false.
            removal: the access-log bucket's removal policy. Default: RETAIN.
        """
        super().__init__(scope, id)
        https = certificate_arn is not None or hosted_zone_id is not None
        _validate_ports(target_port, listener_port, test_listener_port, blue_green, https)
        _validate_names(
            ingress_cidrs, health_check_path, certificate_arn, domain_name, hosted_zone_id
        )
        zone = self._hosted_zone(hosted_zone_id)
        certificate = self._certificate(certificate_arn, domain_name, zone)
        production_port = HTTPS_PORT if https else listener_port
        test_cidrs = test_listener_cidrs if blue_green else ()
        self.access_logs = self._access_log_bucket(namer, access_log_expiry_days, removal)
        production_ports = [listener_port, HTTPS_PORT] if https else [listener_port]
        self.security_group = self._security_group(
            namer,
            vpc,
            production={cidr: production_ports for cidr in ingress_cidrs},
            test={cidr: [test_listener_port] for cidr in test_cidrs},
        )
        self.load_balancer = self._load_balancer(namer, vpc, subnets, deletion_protection)
        self._target_groups(
            namer, vpc, blue_green, target_port, health_check_path, deregistration_delay
        )
        self._listeners(certificate, listener_port, production_port, test_listener_port)
        self.alias_record = self._alias_record(zone, domain_name)
        self._acknowledge(namer, ingress_cidrs, test_cidrs, https, deletion_protection)
        host = domain_name or self.load_balancer.load_balancer_dns_name
        scheme = "https" if https else "http"
        self.url = _url(scheme, host, production_port)
        self.test_url = _url(scheme, host, test_listener_port) if blue_green else None

    # ---- the pieces, in the order they are built ----------------------------------------

    def _hosted_zone(self, hosted_zone_id: str | None) -> route53.IHostedZone | None:
        if hosted_zone_id is None:
            return None
        return route53.HostedZone.from_hosted_zone_id(self, "HostedZone", hosted_zone_id)

    def _certificate(
        self,
        certificate_arn: str | None,
        domain_name: str | None,
        zone: route53.IHostedZone | None,
    ) -> elbv2.ListenerCertificate | None:
        """The given certificate, or one ACM issues for domain_name once the validation record
        CloudFormation writes into the hosted zone resolves (the stack waits for it)."""
        self.certificate: acm.ICertificate | None = None
        if certificate_arn is not None:
            arn = certificate_in_this_stack(certificate_arn)
            self.certificate = acm.Certificate.from_certificate_arn(self, "Certificate", arn)
            return elbv2.ListenerCertificate.from_arn(arn)
        if zone is None or domain_name is None:
            return None
        created = acm.Certificate(
            self,
            "Certificate",
            domain_name=domain_name,
            validation=acm.CertificateValidation.from_dns(zone),
        )
        self.certificate = created
        return elbv2.ListenerCertificate.from_certificate_manager(created)

    def _alias_record(
        self, zone: route53.IHostedZone | None, domain_name: str | None
    ) -> route53.ARecord | None:
        """domain_name (a name of the hosted zone) as an alias of the load balancer."""
        if zone is None or domain_name is None:
            return None
        return route53.ARecord(
            self,
            "AliasRecord",
            zone=zone,
            record_name=f"{domain_name}.",  # fully qualified: the zone's name is not known here
            target=route53.RecordTarget.from_alias(
                route53_targets.LoadBalancerTarget(self.load_balancer)
            ),
            comment=f"deployline: {domain_name} is served by this load balancer",
        )

    def _security_group(
        self,
        namer: Namer,
        vpc: ec2.IVpc,
        *,
        production: Mapping[str, Sequence[int]],
        test: Mapping[str, Sequence[int]],
    ) -> ec2.SecurityGroup:
        """Ingress from exactly the configured CIDRs on their listener ports; egress is added
        per target (`connections`)."""
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{namer.name('alb')}: listeners open to the configured CIDRs only",
            allow_all_outbound=False,
        )
        for what, cidrs in (("production listener", production), ("test listener", test)):
            for cidr, ports in cidrs.items():
                for port in ports:
                    group.add_ingress_rule(
                        ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), f"{what} from {cidr}"
                    )
        return group

    def _load_balancer(
        self,
        namer: Namer,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        deletion_protection: bool,
    ) -> elbv2.ApplicationLoadBalancer:
        load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            load_balancer_name=namer.name("alb", Kind.LOAD_BALANCER),
            vpc=vpc,
            vpc_subnets=subnets,
            internet_facing=True,
            security_group=self.security_group,
            drop_invalid_header_fields=True,
            deletion_protection=deletion_protection,
            http2_enabled=True,
            desync_mitigation_mode=elbv2.DesyncMitigationMode.DEFENSIVE,
            idle_timeout=Duration.seconds(60),
        )
        # Not log_access_logs(): it needs a region at synth time, and this stack has none.
        load_balancer.set_attribute("access_logs.s3.enabled", "true")
        load_balancer.set_attribute("access_logs.s3.bucket", self.access_logs.bucket_name)
        load_balancer.set_attribute("access_logs.s3.prefix", _ACCESS_LOG_PREFIX)
        # ELB writes a test object when logging is switched on: the policy must exist first.
        if self.access_logs.policy is not None:
            load_balancer.node.add_dependency(self.access_logs.policy)
        return load_balancer

    def _target_groups(
        self,
        namer: Namer,
        vpc: ec2.IVpc,
        blue_green: bool,
        port: int,
        health_check_path: str,
        deregistration_delay: Duration,
    ) -> None:
        """The (blue) target group, and the green one for blue/green."""
        # The first group keeps the ID BlueTargetGroup whether or not a green one follows.
        names = [("BlueTargetGroup", "blue"), ("GreenTargetGroup", "green")]
        groups = [
            self._target_group(
                construct_id,
                namer.name(label, Kind.TARGET_GROUP),
                vpc,
                port,
                health_check_path,
                deregistration_delay,
            )
            for construct_id, label in (names if blue_green else [("BlueTargetGroup", "tg")])
        ]
        self.target_group = groups[0]
        self.green_target_group = groups[1] if blue_green else None
        self.target_groups = groups

    def _target_group(
        self,
        construct_id: str,
        name: str,
        vpc: ec2.IVpc,
        port: int,
        health_check_path: str,
        deregistration_delay: Duration,
    ) -> elbv2.ApplicationTargetGroup:
        return elbv2.ApplicationTargetGroup(
            self,
            construct_id,
            target_group_name=name,
            vpc=vpc,
            port=port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=deregistration_delay,
            health_check=elbv2.HealthCheck(
                path=health_check_path,
                healthy_http_codes="200",
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
        )

    def _listeners(
        self,
        certificate: elbv2.ListenerCertificate | None,
        listener_port: int,
        production_port: int,
        test_listener_port: int,
    ) -> None:
        """The production listener, the HTTP redirect (with a certificate) and the test listener
        (blue/green)."""
        https = certificate is not None
        certificates = [certificate] if certificate is not None else None
        protocol = elbv2.ApplicationProtocol.HTTPS if https else elbv2.ApplicationProtocol.HTTP
        self.listener = self.load_balancer.add_listener(
            "Listener",
            port=production_port,
            protocol=protocol,
            certificates=certificates,
            ssl_policy=TLS_POLICY if https else None,
            open=False,  # ingress is exactly the security group's rules
            default_action=elbv2.ListenerAction.forward([self.target_group]),
        )
        self.redirect_listener: elbv2.ApplicationListener | None = None
        if https:
            self.redirect_listener = self.load_balancer.add_listener(
                "HttpRedirect",
                port=listener_port,
                protocol=elbv2.ApplicationProtocol.HTTP,
                open=False,
                default_action=elbv2.ListenerAction.redirect(
                    protocol="HTTPS", port=str(HTTPS_PORT), permanent=True
                ),
            )
        self.test_listener: elbv2.ApplicationListener | None = None
        self.production_rule: elbv2.ApplicationListenerRule | None = None
        self.test_rule: elbv2.ApplicationListenerRule | None = None
        if self.green_target_group is not None:
            self.test_listener = self.load_balancer.add_listener(
                "TestListener",
                port=test_listener_port,
                protocol=protocol,
                certificates=certificates,
                ssl_policy=TLS_POLICY if https else None,
                open=False,
                default_action=elbv2.ListenerAction.forward([self.target_group]),
            )
            self.production_rule = self._weighted_rule("ProductionRule", self.listener)
            self.test_rule = self._weighted_rule("TestRule", self.test_listener)

    def _weighted_rule(
        self, construct_id: str, listener: elbv2.ApplicationListener
    ) -> elbv2.ApplicationListenerRule:
        """Every path to blue (100) and green (0): ECS moves the weights, never the rule.

        The rule must stay as synthesized: CloudFormation rewrites it (and so the weights ECS set)
        only when its properties change, which they never do after creation.
        """
        assert self.green_target_group is not None
        return elbv2.ApplicationListenerRule(
            self,
            construct_id,
            listener=listener,
            priority=BLUE_GREEN_RULE_PRIORITY,
            conditions=[elbv2.ListenerCondition.path_patterns(["/*"])],
            action=elbv2.ListenerAction.weighted_forward(
                [
                    elbv2.WeightedTargetGroup(target_group=self.target_group, weight=100),
                    elbv2.WeightedTargetGroup(target_group=self.green_target_group, weight=0),
                ]
            ),
        )

    # ---- helpers ----------------------------------------------------------------------

    def _acknowledge(
        self,
        namer: Namer,
        ingress_cidrs: Sequence[str],
        test_listener_cidrs: Sequence[str],
        https: bool,
        deletion_protection: bool,
    ) -> None:
        """Record, with reasons, the cdk-nag and checkov findings these resources have by design."""
        alb = namer.name("alb", Kind.LOAD_BALANCER)
        self._acknowledge_access_logs(alb)
        open_cidrs = sorted(_OPEN_CIDRS & {*ingress_cidrs, *test_listener_cidrs})
        if open_cidrs:
            reason = (
                f"{alb} is a public web endpoint: ingress_cidrs in deployline.yaml "
                f"admit {', '.join(open_cidrs)} on the listener ports only; narrow ingress_cidrs "
                "to restrict it"
            )
            Validations.of(self.security_group).acknowledge(
                Acknowledgment(id="AwsSolutions::AwsSolutions-EC23", reason=reason)
            )
            defaults.skip_checkov(self.security_group, "CKV_AWS_260", reason)
        if not deletion_protection:
            compliance.accept(
                self.load_balancer,
                "ELBDeletionProtectionEnabled",
                f"{alb} belongs to an environment that is not production and is deleted with "
                "its stack (deployline destroy); every production load balancer refuses deletion",
            )
        if https:
            if self.redirect_listener is not None:
                compliance.accept(
                    self.redirect_listener,
                    "ELBv2ACMCertificateRequired",
                    f"the HTTP listener of {alb} serves nothing: it only redirects to HTTPS on "
                    f"{HTTPS_PORT}, where the certificate is",
                )
            return
        reason = (
            f"{alb} serves plain HTTP because deployline.yaml says so for its environment "
            "(plain_http: true, which deployline validate warns about); give domain_name with "
            "hosted_zone_id or certificate_arn to serve HTTPS on 443 (HTTP then redirects)"
        )
        for listener in (self.listener, self.test_listener):
            if listener is not None:
                compliance.accept(listener, "ALBHttpToHttpsRedirection", reason)
                compliance.accept(
                    listener, "ELBv2ACMCertificateRequired", reason, checkov=("CKV_AWS_2",)
                )
                defaults.skip_checkov(listener, "CKV_AWS_103", reason)

    def _acknowledge_access_logs(self, alb: str) -> None:
        bucket = f"the access-log bucket of {alb}"
        reason = (
            f"{bucket} only receives that load balancer's access logs; logging access to a log "
            "bucket would need yet another log bucket"
        )
        Validations.of(self.access_logs).acknowledge(
            Acknowledgment(id="AwsSolutions::AwsSolutions-S1", reason=reason)
        )
        compliance.accept(
            self.access_logs, "S3BucketLoggingEnabled", reason, checkov=("CKV_AWS_18",)
        )
        compliance.accept(
            self.access_logs,
            "S3DefaultEncryptionKMS",
            f"{bucket} is encrypted with S3-managed keys, the only encryption Elastic Load "
            "Balancing writes access logs with (it refuses SSE-KMS buckets)",
        )
        compliance.accept(
            self.access_logs,
            "S3BucketReplicationEnabled",
            f"{bucket} is versioned and only ELB log delivery may write to it, so no log is "
            "lost or replaced unseen; copying it to your organisation's log archive is a bucket "
            "deployline cannot know of (add replication there)",
        )

    def _access_log_bucket(
        self, namer: Namer, expiry_days: int, removal: RemovalPolicy
    ) -> s3.Bucket:
        if not Token.is_unresolved(expiry_days) and not 1 <= expiry_days <= 3650:
            raise ValueError(f"access_log_expiry_days must be 1..3650, got {expiry_days}")
        bucket = defaults.secure_bucket(
            self,
            "AccessLogs",
            bucket_name=access_log_bucket_name(namer),
            key=None,  # ALB access logging supports SSE-S3 only
            removal=removal,
            # a deleted or overwritten log stays recoverable as a noncurrent version
            versioned=True,
            expiry_days=expiry_days,
            noncurrent_expiry_days=defaults.LOG_NONCURRENT_EXPIRY_DAYS,
        )
        objects = bucket.arn_for_objects(f"{_ACCESS_LOG_PREFIX}/AWSLogs/{Aws.ACCOUNT_ID}/*")
        # Regions opened since August 2022 deliver through this service principal.
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlbLogDelivery",
                principals=[iam.ServicePrincipal("logdelivery.elasticloadbalancing.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[objects],
            )
        )
        # Older regions deliver from a regional ELB account, looked up at deploy time; in other
        # regions this statement names the bucket owner's own account, which changes nothing.
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlbLogDeliveryLegacyRegions",
                principals=[iam.ArnPrincipal(_elb_account_principal(self))],
                actions=["s3:PutObject"],
                resources=[objects],
            )
        )
        return bucket


def access_log_bucket_name(namer: Namer) -> str:
    """`{service}-alb-logs-{account}-{region}-{env}`, at most 63 characters.

    Bucket names are global: the account and region (pseudo parameters) make the name unique, and
    the environment ends it, as every deployline name ends with its environment (checker rule
    DL702). When the room left is short, the type shrinks to `alb`; a service name still too
    long is cut (ending in a hash of the whole), never the environment.
    """
    suffix = f"-{namer.env}"
    room = Kind.S3_BUCKET.limit - _ACCOUNT_REGION_LEN - len(suffix)
    head = f"{namer.base}-alb-logs"
    if len(head) > room:
        head = fit(f"{namer.base}-alb", room)
    return f"{head}-{Aws.ACCOUNT_ID}-{Aws.REGION}{suffix}"


def certificate_in_this_stack(certificate_arn: str) -> str:
    """The ARN of certificate `certificate_arn` in this stack's own partition, region and account.

    A load balancer can only use an ACM certificate of its own account and region, so the
    template names them with pseudo parameters instead of repeating literal IDs (checker rule
    DL130); the certificate ID is kept. Tokens and other strings pass through unchanged.
    """
    if Token.is_unresolved(certificate_arn):
        return certificate_arn
    match = _ACM_ARN.match(certificate_arn)
    if match is None:
        raise ValueError(
            "certificate_arn must be an ACM certificate ARN like "
            f"arn:aws:acm:<region>:<account>:certificate/<uuid>, got {certificate_arn!r}"
        )
    return f"arn:{Aws.PARTITION}:acm:{Aws.REGION}:{Aws.ACCOUNT_ID}:certificate/{match.group('id')}"


def _url(scheme: str, host: str, port: int) -> str:
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port == default else f"{scheme}://{host}:{port}"


def _elb_account_principal(scope: Construct) -> str:
    """`arn:<partition>:iam::<ELB account of this region>:root`, or this account's root.

    The regional ELB accounts come from aws-cdk-lib's region facts and sit in a Mapping (not in a
    resource property), chosen at deploy time by a condition on AWS::Region.
    """
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("DeploylineElbAccounts")
    accounts = region_info.RegionInfo.region_map(region_info.FactName.ELBV2_ACCOUNT)
    if existing is None:
        CfnMapping(
            stack,
            "DeploylineElbAccounts",
            mapping={region: {"account": account} for region, account in sorted(accounts.items())},
        )
        regions, here = sorted(accounts), Aws.REGION  # one read of the token, not one per region
        groups = [
            Fn.condition_or(*[Fn.condition_equals(here, r) for r in regions[i : i + 10]])
            for i in range(0, len(regions), 10)
        ]
        CfnCondition(
            stack,
            "DeploylineIsLegacyElbRegion",
            expression=groups[0] if len(groups) == 1 else Fn.condition_or(*groups),
        )
    condition = stack.node.find_child("DeploylineIsLegacyElbRegion")
    assert isinstance(condition, CfnCondition)
    elb_account = Fn.find_in_map("DeploylineElbAccounts", Aws.REGION, "account")
    account = Token.as_string(Fn.condition_if(condition.logical_id, elb_account, Aws.ACCOUNT_ID))
    return f"arn:{Aws.PARTITION}:iam::{account}:root"


def _validate_ports(
    target_port: int, listener_port: int, test_listener_port: int, blue_green: bool, https: bool
) -> None:
    """Every check skips values that are unresolved tokens (a CfnParameter, say)."""
    for what, port in (
        ("target_port", target_port),
        ("listener_port", listener_port),
        ("test_listener_port", test_listener_port),
    ):
        if not Token.is_unresolved(port) and not 1 <= port <= 65535:
            raise ValueError(f"{what} must be 1..65535, got {port}")
    if https and listener_port == HTTPS_PORT:
        raise ValueError("listener_port is the HTTP port that redirects to HTTPS on 443; got 443")
    known = not (Token.is_unresolved(listener_port) or Token.is_unresolved(test_listener_port))
    if blue_green and known:
        taken = {listener_port, HTTPS_PORT} if https else {listener_port}
        if test_listener_port in taken:
            raise ValueError(
                f"test_listener_port must differ from the production ports {sorted(taken)}, "
                f"got {test_listener_port}"
            )


def _validate_names(
    ingress_cidrs: Sequence[str],
    health_check_path: str,
    certificate_arn: str | None,
    domain_name: str | None,
    hosted_zone_id: str | None,
) -> None:
    """Every check skips values that are unresolved tokens (a CfnParameter, say)."""
    if not ingress_cidrs:
        raise ValueError("ingress_cidrs must name at least one CIDR, got none")
    if not Token.is_unresolved(health_check_path) and not health_check_path.startswith("/"):
        raise ValueError(f"health_check_path must start with '/', got {health_check_path!r}")
    if certificate_arn is not None and domain_name is None:
        raise ValueError("certificate_arn needs domain_name (the name the certificate covers)")
    if hosted_zone_id is None:
        return
    if domain_name is None:
        raise ValueError(
            "hosted_zone_id needs domain_name (the name to certify and point at the load balancer)"
        )
    if not Token.is_unresolved(hosted_zone_id) and not _HOSTED_ZONE_ID.match(hosted_zone_id):
        raise ValueError(
            f"hosted_zone_id must be a Route 53 hosted zone ID like Z0123456789ABCDEFGHIJ, "
            f"got {hosted_zone_id!r}"
        )
