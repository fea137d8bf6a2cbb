"""What `ContainerPipeline` takes: the settings of each step and the stacks it deploys.

Plain frozen dataclasses, validated by `validate_settings` before anything is built, so a wrong
value fails in the constructor with the field, the value and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration, Token
from aws_cdk import aws_codebuild as codebuild

from deployline import stages
from deployline.constructs.bootstrap import BootstrapEnvironment
from deployline.constructs.build_projects import TestReportGroupNames, check_timeout
from deployline.contract import IMAGE_TAG_PARAMETER, SEVERITIES

SCANNERS = ("bandit", "pip-audit", "trivy")
#: Default: the scan may run 20 minutes (Trivy's database download included).
DEFAULT_SCAN_TIMEOUT = Duration.minutes(stages.SCAN_TIMEOUT_MINUTES)
#: Default: unit tests may run 20 minutes.
DEFAULT_TEST_TIMEOUT = Duration.minutes(20)
#: Default: the synth may run 20 minutes (installing deployline and publishing assets included).
DEFAULT_SYNTH_TIMEOUT = Duration.minutes(stages.SYNTH_TIMEOUT_MINUTES)
#: Default: validation waits up to 15 minutes for the service to be healthy on the new image.
DEFAULT_VALIDATION_TIMEOUT = Duration.minutes(15)
_TARGET_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """The image build.

    Attributes:
        buildspec: the buildspec dict (e.g. `deployline.stages.build_buildspec(config)`); it must
            export IMAGE_TAG and IMAGE_URI.
        timeout: Default: 15 minutes; 5 to 60.
        platform: `linux/amd64` or `linux/arm64`; the build runs natively on it.
            Default: linux/amd64.
        compute_type: Default: BUILD_GENERAL1_MEDIUM (4 vCPU, 7 GB: Docker builds are CPU-bound).
        cache: local Docker layer and source cache. Default: on.
        docker_hub_secret_name: a Secrets Manager secret (JSON `username`, `password`) the
            buildspec reads to log in to Docker Hub; the build role may read that secret only.
            Default: none.
    """

    buildspec: Mapping[str, Any]
    timeout: Duration = field(default_factory=lambda: Duration.minutes(15))
    platform: str = "linux/amd64"
    compute_type: codebuild.ComputeType = codebuild.ComputeType.MEDIUM
    cache: bool = True
    docker_hub_secret_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class SynthSettings:
    """The synth: the app's cloud assembly from the same commit, its assets published.

    Attributes:
        buildspec: the buildspec dict (e.g. `deployline.stages.synth_buildspec(config)`); its
            artifact is the cloud assembly (the templates the pipeline deploys), and it publishes
            the assets with cdk-assets (which assumes the targets' file-publishing roles).
        timeout: Default: 20 minutes; 5 to 60.
        compute_type: Default: BUILD_GENERAL1_MEDIUM (synthesis runs Node.js; 7 GB is ample).
    """

    buildspec: Mapping[str, Any]
    timeout: Duration = field(default_factory=lambda: DEFAULT_SYNTH_TIMEOUT)
    compute_type: codebuild.ComputeType = codebuild.ComputeType.MEDIUM


@dataclass(frozen=True, kw_only=True)
class TestSettings:
    """The unit tests.

    Attributes:
        buildspec: the buildspec dict, or a function of the report groups' ARNs that returns it
            (the groups are created by the pipeline).
        timeout: Default: 20 minutes; 5 to 60.
        compute_type: Default: BUILD_GENERAL1_SMALL.
    """

    __test__ = False  # not a pytest class

    buildspec: Mapping[str, Any] | Callable[[TestReportGroupNames], Mapping[str, Any]]
    timeout: Duration = field(default_factory=lambda: DEFAULT_TEST_TIMEOUT)
    compute_type: codebuild.ComputeType = codebuild.ComputeType.SMALL


@dataclass(frozen=True, kw_only=True)
class ScanSettings:
    """The security scan and the gate that judges its reports.

    Attributes:
        buildspec: the buildspec dict (e.g. `deployline.stages.scan_buildspec(config)`); its
            artifact holds the scanners' JSON reports.
        threshold: the gate fails on findings of this severity or worse. Default: high.
        scanners: the scanners whose reports the gate requires. Default: all three.
        allow_unverified: accept dependencies a scanner could not audit. Default: false.
        scan_image: give the scan `REPOSITORY_URI` and the built `IMAGE_TAG`, and pull access,
            so Trivy scans the pushed image too. Default: true.
        timeout: Default: 20 minutes; 5 to 60.
        compute_type: Default: BUILD_GENERAL1_SMALL.
    """

    buildspec: Mapping[str, Any]
    threshold: str = "high"
    scanners: Sequence[str] = SCANNERS
    allow_unverified: bool = False
    scan_image: bool = True
    timeout: Duration = field(default_factory=lambda: DEFAULT_SCAN_TIMEOUT)
    compute_type: codebuild.ComputeType = codebuild.ComputeType.SMALL


@dataclass(frozen=True, kw_only=True)
class StackTarget:
    """An environment: one stack of the synthesized app, deployed by CloudFormation.

    Attributes:
        name: the environment, lowercase kebab-case, e.g. "staging".
        stack_name: the CloudFormation stack.
        template_file: its template in the synth output, e.g. `<stack>.template.json`.
        environment: the account and region it deploys to, through their bootstrap roles.
            Default: the pipeline's own.
        approval: plan the change set, show it, and wait for a person before deploying it.
            Default: false.
        image_parameter: the stack parameter that takes the image tag the build pushed; None
            for a stack without one. Default: `ImageTag`.
        health_path: what validation requests on the stack's `ServiceUrl` output.
            Default: /health.
        expected_status: Default: 200.
        validation_timeout: Default: 15 minutes; 30 seconds to 60 minutes.
    """

    name: str
    stack_name: str
    template_file: str
    environment: BootstrapEnvironment = field(default_factory=BootstrapEnvironment)
    approval: bool = False
    image_parameter: str | None = IMAGE_TAG_PARAMETER
    health_path: str = "/health"
    expected_status: int = 200
    validation_timeout: Duration = field(default_factory=lambda: DEFAULT_VALIDATION_TIMEOUT)


@dataclass(frozen=True, kw_only=True)
class SelfUpdateTarget:
    """A stack of the pipeline's own, updated from the synth output before any environment.

    Attributes:
        stack_name: the CloudFormation stack.
        template_file: its template in the synth output.
        environment: where it lives (the pipeline's account; its own region).
    """

    stack_name: str
    template_file: str
    environment: BootstrapEnvironment = field(default_factory=BootstrapEnvironment)


def _seconds(d: Duration) -> int:
    return int(d.to_seconds())


def validate_targets(targets: Sequence[StackTarget], *, require_approval_before_last: bool) -> None:
    """Raise ValueError naming the target, the field, the value and the fix."""
    seen: set[str] = set()
    for target in targets:
        if not isinstance(target, StackTarget):
            raise ValueError(f"targets must be StackTarget, got {type(target).__name__}")
        if not _TARGET_NAME.match(target.name) or len(target.name) > 40:
            raise ValueError(
                "target name must be lowercase kebab-case of at most 40 characters, like "
                f"'staging', got {target.name!r}"
            )
        if target.name in seen:
            raise ValueError(f"target names must be unique; {target.name!r} appears twice")
        seen.add(target.name)
        _validate_target(target)
    if require_approval_before_last and len(targets) > 1 and not targets[-1].approval:
        raise ValueError(
            f"the last target {targets[-1].name!r} is production and needs approval=True: a "
            "pipeline with several deploy stages must wait for a person before the last one "
            "(failure catalog DL405); set approval: true on it, or suppress DL405 with a reason"
        )


def _validate_target(target: StackTarget) -> None:
    if not Token.is_unresolved(target.stack_name) and not _STACK_NAME.match(target.stack_name):
        raise ValueError(
            f"target {target.name}: stack_name must be a CloudFormation stack name (a letter, "
            f"then letters, digits and '-', at most 128), got {target.stack_name!r}"
        )
    if not target.template_file.endswith((".json", ".yaml", ".yml", ".template")):
        raise ValueError(
            f"target {target.name}: template_file must name a template in the synth output, "
            f"like '<stack>.template.json', got {target.template_file!r}"
        )
    if not target.health_path.startswith("/"):
        raise ValueError(
            f"target {target.name}: health_path must start with '/', got {target.health_path!r}"
        )
    if not 100 <= target.expected_status <= 599:
        raise ValueError(
            f"target {target.name}: expected_status must be an HTTP status 100-599, "
            f"got {target.expected_status}"
        )
    validation = _seconds(target.validation_timeout)
    if not 30 <= validation <= 3600:
        raise ValueError(
            f"target {target.name}: validation_timeout must be 30 seconds to 60 minutes, "
            f"got {validation} seconds"
        )


def validate_scan(scan: ScanSettings) -> None:
    if scan.threshold not in SEVERITIES:
        raise ValueError(
            f"scan threshold must be one of {list(SEVERITIES)}, got {scan.threshold!r}"
        )
    if not scan.scanners or isinstance(scan.scanners, str):
        raise ValueError(f"scan scanners must be a non-empty list, got {scan.scanners!r}")
    unknown = sorted(set(scan.scanners) - set(SCANNERS))
    if unknown:
        raise ValueError(f"scan scanners {unknown} are unknown; choose from {list(SCANNERS)}")


def validate_settings(
    *,
    build: BuildSettings,
    synth: SynthSettings,
    test: TestSettings,
    scan: ScanSettings,
    targets: Sequence[StackTarget],
    require_approval_before_last: bool,
) -> None:
    """Every check the settings allow before anything is built."""
    validate_targets(targets, require_approval_before_last=require_approval_before_last)
    validate_scan(scan)
    check_timeout("build", build.timeout)
    check_timeout("synth", synth.timeout)
    check_timeout("test", test.timeout)
    check_timeout("scan", scan.timeout)
