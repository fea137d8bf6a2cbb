"""deploy and diff: synthesize, choose the stacks, and run the CDK CLI on the cloud assembly.

A deploy goes environments first (in parallel: they do not depend on each other), then the
pipeline: a pipeline created first would start its first execution at once and deploy the
environment stacks through CloudFormation while the laptop deploy still creates them.

A deploy never passes `ImageTag`: the CLI keeps each parameter's previous value
(`--previous-parameters`), so the image the pipeline shipped keeps running; a first create runs the
placeholder image (docs/delivery.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployline.config import DeploylineConfig
from deployline.deploy.assembly import StackArtifact, read_assembly, stack_named
from deployline.deploy.cdk import CdkCli, StackEvent, parse_event
from deployline.naming import Namer

#: Where the CLI writes the deployed stacks' outputs, inside the cloud assembly directory.
OUTPUTS_FILE = "deployline-outputs.json"
#: At most this many environment stacks deploy at once. Default: 4.
MAX_CONCURRENCY = 4


class DeployError(Exception):
    """A deploy command cannot go on; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Plan:
    """What a command works on: the config, its cloud assembly and the stacks chosen."""

    config: DeploylineConfig
    outdir: Path
    #: Environment name -> its stack, for the chosen environments, in config order.
    environments: dict[str, StackArtifact]
    #: The pipeline's stack, when chosen.
    pipeline: StackArtifact | None

    @property
    def stacks(self) -> list[StackArtifact]:
        """Every chosen stack, in deploy order: environments, then the pipeline."""
        return [*self.environments.values(), *([self.pipeline] if self.pipeline else [])]


def environment_stack_name(config: DeploylineConfig, environment: str) -> str:
    return Namer(config.service, environment, config.naming.prefix).stack_name()


def shared_namer(config: DeploylineConfig) -> Namer:
    """Names of what the pipeline owns (its stack, history table, image repository)."""
    return Namer(config.service, config.naming.pipeline_environment, config.naming.prefix)


def pipeline_stack_name(config: DeploylineConfig) -> str:
    return shared_namer(config).stack_name()


def choose(
    config: DeploylineConfig,
    outdir: Path,
    *,
    environments: Sequence[str] = (),
    pipeline: bool | None = None,
) -> Plan:
    """The stacks of `outdir` for `environments` (Default: every one) and the pipeline (Default:
    only when no environment is named). Raises DeployError for an unknown environment."""
    known = [e.name for e in config.environments]
    unknown = [name for name in environments if name not in known]
    if unknown:
        raise DeployError(
            f"--env {unknown[0]!r} is not an environment of {config.service}; choose from {known}"
        )
    stacks = read_assembly(outdir)
    chosen = [name for name in known if not environments or name in environments]
    with_pipeline = not environments if pipeline is None else pipeline
    return Plan(
        config=config,
        outdir=outdir,
        environments={
            name: stack_named(stacks, environment_stack_name(config, name)) for name in chosen
        },
        pipeline=stack_named(stacks, pipeline_stack_name(config)) if with_pipeline else None,
    )


def common_arguments(outdir: Path) -> list[str]:
    """What every CLI call gets: the synthesized assembly (no app to run), plain output."""
    return ["--app", str(outdir), "--no-color", "--no-notices"]


def deploy_arguments(
    outdir: Path,
    stacks: Sequence[StackArtifact],
    *,
    parameters: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """`cdk deploy` of exactly `stacks`, with `parameters` ({stack: {name: value}}) and the
    previous value of every other parameter."""
    args = [
        "deploy",
        *common_arguments(outdir),
        "--require-approval",
        "never",
        "--progress",
        "events",
        "--previous-parameters",
        "--outputs-file",
        str(outdir / OUTPUTS_FILE),
        "--concurrency",
        str(max(1, min(len(stacks), MAX_CONCURRENCY))),
        "--exclusively",
    ]
    for stack, values in (parameters or {}).items():
        for name, value in values.items():
            args += ["--parameters", f"{stack}:{name}={value}"]
    return [*args, *(s.stack_name for s in stacks)]


@dataclass
class Output:
    """What a command reports while the CLI runs: stack events, and every other line."""

    on_event: Callable[[StackEvent], None] = lambda _event: None
    on_line: Callable[[str], None] = lambda _line: None
    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        event = parse_event(line)
        if event is not None:
            self.on_event(event)
        else:
            self.on_line(line)


@dataclass(frozen=True)
class Deployed:
    """The result of a deploy: the CLI's exit code and the outputs of the stacks it deployed."""

    exit_code: int
    outputs: dict[str, dict[str, str]]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def deploy(
    plan: Plan,
    cli: CdkCli,
    output: Output,
    *,
    env: Mapping[str, str] | None = None,
    parameters: Mapping[str, Mapping[str, str]] | None = None,
) -> Deployed:
    """Deploy the plan's environment stacks (in parallel), then its pipeline stack."""
    waves = [list(plan.environments.values()), [plan.pipeline] if plan.pipeline else []]
    code = 0
    outputs: dict[str, dict[str, str]] = {}
    for wave in (w for w in waves if w):
        (plan.outdir / OUTPUTS_FILE).unlink(missing_ok=True)
        code = cli.run(
            deploy_arguments(plan.outdir, wave, parameters=parameters),
            cwd=plan.outdir.parent,
            on_line=output,
            env=env,
        )
        outputs.update(read_outputs(plan.outdir))
        if code != 0:
            break
    return Deployed(exit_code=code, outputs=outputs)


@dataclass(frozen=True)
class DeployedStack:
    """A stack as CloudFormation holds it."""

    parameters: dict[str, str | None]
    #: The template as it was submitted (TemplateStage Original).
    template: dict[str, Any]


def read_deployed(cloudformation: Any, stack_name: str) -> DeployedStack | None:
    """The stack's parameters and template; None when the stack does not exist."""
    from deployline.deploy.aws import describe
    from deployline.runtime.clients import error_code

    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        body = cloudformation.get_template(StackName=stack_name, TemplateStage="Original")
    except Exception as exc:
        if error_code(exc) == "ValidationError":
            return None
        raise describe(exc, f"reading stack {stack_name}") from None
    template = body["TemplateBody"]
    return DeployedStack(
        parameters={
            p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])
        },
        template=json.loads(template) if isinstance(template, str) else template,
    )


def read_outputs(outdir: Path) -> dict[str, dict[str, str]]:
    """{stack: {output: value}} from the outputs file the CLI wrote ({} when none)."""
    try:
        data: Any = json.loads((outdir / OUTPUTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): {str(n): str(v) for n, v in vs.items()} for k, vs in data.items()}


def diff(
    plan: Plan,
    cli: CdkCli,
    output: Output,
    *,
    fail: bool = False,
    env: Mapping[str, str] | None = None,
) -> int:
    """`cdk diff` of the plan's stacks, each against what is deployed (per stack, as the CLI
    prints it). Exit code 1 with `fail` when anything would change."""
    args = ["diff", *common_arguments(plan.outdir), "--exclusively"]
    if fail:
        args.append("--fail")
    return cli.run(
        [*args, *(s.stack_name for s in plan.stacks)],
        cwd=plan.outdir.parent,
        on_line=output,
        env=env,
    )
