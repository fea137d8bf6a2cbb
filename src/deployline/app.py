"""config -> stacks. `build_app` is the one place a DeploylineConfig becomes a CDK app.

Run as `python -m deployline.app` (what cdk.json does) to synthesize `deployline.yaml`, or the file
named by the CDK context value `config` (`cdk synth -c config=path/to/deployline.yaml`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aws_cdk import App, DefaultStackSynthesizer, Environment, Stack, Tags

import deployline._jsii_env  # noqa: F401  (must precede the aws_cdk import)
from deployline.config import CONFIG_FILENAME, DeploylineConfig, EnvironmentConfig, load_config
from deployline.constructs.pipeline_settings import SelfUpdateTarget
from deployline.naming import Kind, Namer, tags
from deployline.stacks.environment_stack import EnvironmentStack
from deployline.stacks.pipeline_stack import PipelineStack, bootstrap_environment
from deployline.stacks.regional_artifacts import RegionalArtifactsStack, regional_stack_name


@dataclass
class DeploylineApp:
    """The CDK app and its stacks, for callers (CLI, tests) that need to reach into them."""

    app: App
    config: DeploylineConfig
    pipeline: PipelineStack
    stacks: list[Stack] = field(default_factory=list)
    #: One stack per entry of config.environments, by environment name, in config order.
    environments: dict[str, EnvironmentStack] = field(default_factory=dict)
    #: The pipeline's artifact store in each other region an environment runs in, by region.
    regional_artifacts: dict[str, RegionalArtifactsStack] = field(default_factory=dict)


def _apply_tags(stack: Stack, config: DeploylineConfig, env: str) -> None:
    stack_tags = Tags.of(stack)  # one jsii round trip per stack, not one per tag
    for key, value in tags(
        service=config.service,
        project=config.project,
        env=env,
        extra=config.tags,
        owner=config.owner,
    ).items():
        stack_tags.add(key, value)


def stack_environment(
    config: DeploylineConfig, environment: EnvironmentConfig | None = None
) -> Environment | None:
    """Where a stack deploys: `environment`'s account and region (the pipeline's with None).

    None when the config names no account (environment-agnostic templates, no literal account
    or region). Otherwise the account and region are concrete: CDK then names the target
    account's bootstrap roles, and the pipeline deploys across accounts and regions through them.
    """
    if config.is_environment_agnostic:
        return None
    if environment is None:
        return Environment(account=config.pipeline.account, region=config.pipeline.region)
    return Environment(account=config.account_of(environment), region=config.region_of(environment))


def feature_flags() -> dict[str, Any]:
    """aws-cdk-lib's recommended feature flags (what `cdk init` writes), shipped with deployline.

    Applied by `build_app` itself, so `deployline synth` (no cdk.json) and `cdk synth` (cdk.json)
    build the same templates.
    """
    text = resources.files("deployline").joinpath("feature_flags.json").read_text("utf-8")
    flags: dict[str, Any] = json.loads(text)
    return flags


#: Context deployline's own App starts with, beside the feature flags: no construct stack traces
#: in the metadata, what the CDK CLI also does unless run with --debug (they never reach a
#: template; measured on the example, leaving them out saves about 0.3 s of synthesis).
APP_CONTEXT: dict[str, Any] = {"aws:cdk:disable-stack-trace": True}


def build_app(
    config: DeploylineConfig,
    *,
    outdir: str | None = None,
    app: App | None = None,
    cfn_validation: bool = False,
) -> DeploylineApp:
    """Build every stack for `config`. Stacks are environment-agnostic: no account or region.

    `cfn_validation` (for a new App only; Default: off): aws-cdk-lib's built-in CloudFormation
    template validation, a WebAssembly engine that takes about 4.5 s to start and 1.5 s more for
    the example's templates, every synth. deployline's templates are checked against the
    CloudFormation schema by cfn-lint in its own tests (zero errors and warnings), and by
    `deployline check` on every synth; turn it on (`deployline synth --cfn-validation`) after
    changing constructs. `cdk synth` through cdk.json keeps CDK's default (on; `--no-validation`).
    """
    if app is None:
        app = App(
            outdir=outdir,
            context={**feature_flags(), **APP_CONTEXT},
            builtin_cloud_formation_validation=cfn_validation,
        )
    else:
        for key, value in feature_flags().items():
            if app.node.try_get_context(key) is None:
                app.node.set_context(key, value)
    shared = Namer(config.service, config.naming.pipeline_environment, config.naming.prefix)
    environments = _environment_stacks(app, config, shared)
    pipeline, regional = pipeline_stacks(app, config)
    return DeploylineApp(
        app=app,
        config=config,
        pipeline=pipeline,
        stacks=[*environments.values(), *regional.values(), pipeline],
        environments=environments,
        regional_artifacts=regional,
    )


def pipeline_stacks(
    app: App, config: DeploylineConfig
) -> tuple[PipelineStack, dict[str, RegionalArtifactsStack]]:
    """The pipeline's own stacks: the pipeline stack, and an artifact store per other region
    an environment runs in (deployed before it, updated before it by its self-update)."""
    shared = Namer(config.service, config.naming.pipeline_environment, config.naming.prefix)
    regional = _regional_artifact_stacks(app, config, shared)
    pipeline = PipelineStack(
        app,
        shared.stack_name(),
        stack_name=shared.stack_name(),
        description=f"deployline: delivery pipeline of {config.service} ({config.project})",
        config=config,
        namer=shared,
        env=stack_environment(config),
        regional_artifacts=[stack.artifacts for stack in regional.values()],
        regional_stacks=[
            SelfUpdateTarget(
                stack_name=stack.stack_name,
                template_file=stack.template_file,
                environment=bootstrap_environment(config).with_region(region),
            )
            for region, stack in regional.items()
        ],
        synthesizer=DefaultStackSynthesizer(),
    )
    _apply_tags(pipeline, config, shared.env)
    for stack in regional.values():
        pipeline.add_stack_dependency(stack, "the pipeline names the artifact store of each region")
    return pipeline, regional


def _environment_stacks(
    app: App, config: DeploylineConfig, shared: Namer
) -> dict[str, EnvironmentStack]:
    # The repository lives in the pipeline stack; environments reference it by name only.
    repository_name = shared.name("images", Kind.ECR_REPOSITORY)
    environments: dict[str, EnvironmentStack] = {}
    for env in config.environments:
        namer = Namer(config.service, env.name, config.naming.prefix)
        stack = EnvironmentStack(
            app,
            namer.stack_name(),
            stack_name=namer.stack_name(),
            description=f"deployline: {config.service} in {env.name} ({config.project})",
            config=config,
            environment=env,
            namer=namer,
            repository_name=repository_name,
            registry_account=config.pipeline.account,
            registry_region=config.pipeline.region,
            env=stack_environment(config, env),
            synthesizer=DefaultStackSynthesizer(),
        )
        _apply_tags(stack, config, env.name)
        environments[env.name] = stack
    return environments


def _regional_artifact_stacks(
    app: App, config: DeploylineConfig, shared: Namer
) -> dict[str, RegionalArtifactsStack]:
    """One artifact store per region (other than the pipeline's) an environment runs in."""
    home = config.pipeline.region
    by_region: dict[str, list[EnvironmentConfig]] = {}
    for env in config.environments:
        region = config.region_of(env)
        if home is not None and region is not None and region != home:
            by_region.setdefault(region, []).append(env)
    stacks: dict[str, RegionalArtifactsStack] = {}
    for region, envs in sorted(by_region.items()):
        roles = [bootstrap_environment(config, e) for e in envs]
        name = regional_stack_name(shared, region)
        stack = RegionalArtifactsStack(
            app,
            name,
            stack_name=name,
            description=f"deployline: pipeline artifacts of {config.service} in {region}",
            namer=shared,
            readers=sorted({r.role_arn("deploy") for r in roles}),
            foreign_readers=sorted(
                {r.role_arn("deploy") for r in roles if r.account != config.pipeline.account}
            ),
            expiry_days=config.pipeline.artifact_expiry_days,
            noncurrent_expiry_days=config.pipeline.noncurrent_expiry_days,
            env=Environment(account=config.pipeline.account, region=region),
            synthesizer=DefaultStackSynthesizer(),
        )
        _apply_tags(stack, config, shared.env)
        stacks[region] = stack
    return stacks


def main() -> None:
    # the CDK CLI's own context (cdk --debug keeps stack traces) takes precedence over this
    app = App(context={**feature_flags(), **APP_CONTEXT})
    config_path = app.node.try_get_context("config") or CONFIG_FILENAME
    build_app(load_config(config_path), app=app)
    app.synth()


if __name__ == "__main__":
    main()
