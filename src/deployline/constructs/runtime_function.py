"""A Lambda function whose code is one of deployline's own runtime modules (`deployline/runtime/`).

The asset is the `deployline` package directory filtered down to `runtime/`, so the handler is
`runtime.<module>.handler` and runtime modules import each other relatively. No bundling, no Docker.
Each function gets its own role (trusting only Lambda), a pre-created KMS-encrypted log group with
retention, and log permissions scoped to that group (no AWS managed policy).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import (
    Acknowledgment,
    AssetHashType,
    CfnResource,
    Duration,
    RemovalPolicy,
    Stack,
    Token,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from deployline import defaults
from deployline.constructs import compliance
from deployline.naming import Kind, Namer

#: The Python runtime every deployline function runs on. Default: Python 3.13.
RUNTIME = lambda_.Runtime.PYTHON_3_13
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../deployline
RUNTIME_DIR = PACKAGE_DIR / "runtime"
#: The asset holds `runtime/` and the leaf module `contract.py` the runtime imports.
_ASSET_EXCLUDE = [
    "*",
    "!runtime",
    "!runtime/**",
    "!contract.py",
    "**/__pycache__",
    "**/*.pyc",
]


@functools.cache
def runtime_digest() -> str:
    """SHA-256 of what the asset holds: `contract.py` and every file under `runtime/` (path and
    bytes), without `__pycache__` and `*.pyc`, the same files `_ASSET_EXCLUDE` lets through."""
    digest = hashlib.sha256()
    shipped = [PACKAGE_DIR / "contract.py", *sorted(RUNTIME_DIR.rglob("*"))]
    for path in shipped:
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def runtime_code() -> lambda_.Code:
    """The asset holding `runtime/` (one asset, shared by every function: same hash).

    The hash is computed here, from the files the asset holds, instead of by aws-cdk-lib, which
    fingerprints the whole package directory against the exclude globs once per function: that
    cost 1.8 s of the example's synthesis.
    """
    if not (RUNTIME_DIR / "__init__.py").is_file():
        raise ValueError(f"deployline runtime package not found at {RUNTIME_DIR}")
    return lambda_.Code.from_asset(
        str(PACKAGE_DIR),
        exclude=_ASSET_EXCLUDE,
        asset_hash=runtime_digest(),
        asset_hash_type=AssetHashType.CUSTOM,
    )


class RuntimeFunction(Construct):
    """One deployline runtime handler as a Lambda function.

    Attributes:
        function: the Lambda function.
        role: its execution role; grant what the handler calls on it (`function.add_to_role_policy`
            or the resource's `grant_*`).
        log_group: the function's log group.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        name: str,
        handler: str,
        description: str,
        key: kms.IKey,
        environment: Mapping[str, str] | None = None,
        timeout: Duration = Duration.minutes(1),
        memory_size: int = 256,
        log_retention_days: int = defaults.LOG_RETENTION_DAYS,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
        reserved_concurrency: int | None = None,
        statements: Sequence[iam.PolicyStatement] = (),
    ) -> None:
        """
        Args:
            namer: names the function `{service}-{name}-{env}`.
            name: the `{type}` part of the name, e.g. "validate".
            handler: `module.function` inside `deployline/runtime/`, e.g. "validation.handler".
            key: CMK for the log group and the function's environment variables. The key must
                allow CloudWatch Logs (`defaults.allow_logs_to_use_key`).
            environment: environment variables (no secrets: read those from SSM/Secrets Manager).
            timeout: Default: 1 minute.
            memory_size: MiB. Default: 256.
            log_retention_days: Default: 30.
            removal: the log group's removal policy. Default: RETAIN.
            reserved_concurrency: Default: unreserved.
            statements: extra policy statements for the role, scoped to ARNs.
        """
        super().__init__(scope, id)
        _validate(handler, memory_size)
        function_name = namer.name(name, Kind.LAMBDA_FUNCTION)
        self.log_group = defaults.encrypted_log_group(
            self,
            "Logs",
            name=f"/aws/lambda/{function_name}",
            key=key,
            retention_days=log_retention_days,
            removal=removal,
        )
        self.role = self._role(namer.name(f"{name}-fn", Kind.IAM_ROLE), function_name, statements)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            code=runtime_code(),
            handler=f"runtime.{handler}",
            role=self.role,
            timeout=timeout,
            memory_size=memory_size,
            environment={
                "POWERTOOLS_SERVICE_NAME": namer.service,
                "LOG_LEVEL": "INFO",
                **(environment or {}),
            },
            environment_encryption=key,
            log_group=self.log_group,
            reserved_concurrent_executions=reserved_concurrency,
        )
        # The function must not start before its role may write logs and call what it needs.
        default_policy = self.role.node.try_find_child("DefaultPolicy")
        if default_policy is not None:
            self.function.node.add_dependency(default_policy)
        self.function_name = function_name

    def _role(
        self, role_name: str, function_name: str, statements: Sequence[iam.PolicyStatement]
    ) -> iam.Role:
        """The execution role: its own log group, then `statements`."""
        role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"deployline: execution role of {function_name}",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn, f"{self.log_group.log_group_arn}:*"],
            )
        )
        for statement in statements:
            role.add_to_policy(statement)
        return role


def _validate(handler: str, memory_size: int) -> None:
    module = handler.rsplit(".", 1)[0]
    if "." not in handler or not (RUNTIME_DIR / f"{module.replace('.', '/')}.py").is_file():
        raise ValueError(
            f"handler must name a module in deployline/runtime and its function, like "
            f"'validation.handler'; got {handler!r}"
        )
    if not Token.is_unresolved(memory_size) and not 128 <= memory_size <= 10240:
        raise ValueError(f"memory_size must be 128..10240 MiB, got {memory_size}")


def publish_metrics_statement(sid: str, namespace: str) -> iam.PolicyStatement:
    """cloudwatch:PutMetricData into `namespace` only. The action supports no resource-level
    permission, hence "*" with the namespace condition; `acknowledge_function_findings(...,
    metrics_namespace=namespace)` records that reason for cdk-nag."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["cloudwatch:PutMetricData"],
        resources=["*"],  # PutMetricData supports no resource; scoped by namespace
        conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
    )


def acknowledge_function_findings(
    function: RuntimeFunction, *, metrics_namespace: str | None = None
) -> None:
    """Record, with reasons, the cdk-nag and cfn-lint findings a runtime function has by design."""
    stack = Stack.of(function)
    logs = function.log_group.node.default_child
    if not isinstance(logs, CfnResource):
        raise TypeError(f"{function.node.path}: its log group has no CloudFormation resource")
    logs_id = stack.resolve(stack.get_logical_id(logs))
    name = function.function_name
    rules = [
        Acknowledgment(
            id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logs_id}.Arn>:*]",
            reason=f"{name} ({compliance.role_label(function.role)}) writes log streams that "
            "Lambda names at run time, only inside its own log group",
        ),
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-L1",
            reason=f"{name} runs on the Python version every deployline runtime function is "
            "pinned to and tested on (runtime_function.RUNTIME), not on the newest one",
        ),
    ]
    if metrics_namespace is not None:
        rules.append(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="cloudwatch:PutMetricData supports no resource-level permission; "
                f"{name} ({compliance.role_label(function.role)}) may publish only to namespace "
                f"{metrics_namespace!r} (condition cloudwatch:namespace)",
            )
        )
    Validations.of(function).acknowledge(*rules)
    # aws-cdk makes every Lambda function depend on its role construct (and so on the role's
    # policy, which matters); the DependsOn on the role itself repeats the GetAtt of its ARN.
    cfn_function = function.function.node.default_child
    if isinstance(cfn_function, CfnResource):
        cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})


def accept_function_design(
    function: RuntimeFunction, *, dead_letters: str, concurrency: str, network: str
) -> None:
    """Record why `function` has no dead-letter queue, no reserved concurrency and no VPC, each
    with its reason (cdk-nag LambdaDLQ, LambdaConcurrency and LambdaInsideVPC of the compliance
    packs; checkov CKV_AWS_116, CKV_AWS_115 and CKV_AWS_117). Each reason names the function.

    Reserved concurrency is never set on deployline's functions: it takes from the account's
    unreserved pool, and a deploy fails when that pool would drop below its minimum (accounts
    whose concurrency quota is still the new-account default cannot spare any).
    """
    name = function.function_name
    for rule, check, reason in (
        ("LambdaDLQ", "CKV_AWS_116", dead_letters),
        ("LambdaConcurrency", "CKV_AWS_115", concurrency),
        ("LambdaInsideVPC", "CKV_AWS_117", network),
    ):
        if name not in reason:
            raise ValueError(f"the {rule} reason of {name} must name the function, got {reason!r}")
        compliance.accept(function.function, rule, reason, checkov=(check,))
