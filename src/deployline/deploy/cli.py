"""The typer commands `deploy`, `diff`, `rollback` and `destroy`. Thin: parse, call, print.

Every command synthesizes deployline.yaml first (into --out, Default: cdk.out) and hands the
pinned CDK CLI that cloud assembly. Bad input and failed checks print one error naming the fix
and exit 2; a deploy that CloudFormation fails exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from deployline.deploy.cdk import CDK_CLI_VERSION, CdkCli, StackEvent

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Path to deployline.yaml.", dir_okay=False)
]
OutOption = Annotated[
    Path,
    typer.Option("--out", "-o", help="Where to synthesize the cloud assembly. Default: cdk.out."),
]
ProfileOption = Annotated[
    str | None,
    typer.Option("--profile", help="AWS profile. Default: AWS_PROFILE or the default profile."),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="Region of the stacks deployline.yaml places nowhere. Default: AWS_REGION or the "
        "profile's region.",
    ),
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for CI and scripts).")
]
NoCheckOption = Annotated[
    bool, typer.Option("--no-check", help="Skip `deployline check` of the synthesized templates.")
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Print every line of the CDK CLI's output.")
]


def _console(stderr: bool = True) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def _fail(message: str, code: int = 2) -> NoReturn:
    from deployline.cli import _fail as fail

    fail(message, code)


# ---- steps every command shares ----------------------------------------------------------


def _synthesize(config: Path, out: Path, *, check: bool) -> Any:
    """deployline.yaml -> cloud assembly in `out` (checked unless --no-check); the config."""
    from deployline.cli import _config_errors, _report_synth_check
    from deployline.config import ConfigError, load_config
    from deployline.synth import SynthError, synthesize

    console = _console()
    try:
        with console.status("Reading configuration") as status:
            result = synthesize(config, out, progress=status.update, check=check)
    except ConfigError as exc:
        _config_errors(exc)
    except SynthError as exc:
        _fail(f"{config}: {exc}")
    console.print(f"Synthesized {len(result.stacks)} stacks into {result.outdir}")
    if result.check is not None:
        _report_synth_check(result.check)
    return load_config(config)


def _plan(config: Any, out: Path, environments: Sequence[str], pipeline: bool | None) -> Any:
    from deployline.deploy.assembly import AssemblyError
    from deployline.deploy.operations import DeployError, choose

    try:
        return choose(config, out.resolve(), environments=environments, pipeline=pipeline)
    except (DeployError, AssemblyError) as exc:
        _fail(str(exc))


def _aws(profile: str | None, region: str | None) -> Any:
    from deployline.deploy.aws import Aws, AwsError

    try:
        aws = Aws(profile=profile, region=region)
        aws.identity  # noqa: B018  (credentials first: every later step needs them)
        _ = aws.region
    except AwsError as exc:
        _fail(str(exc))
    return aws


def _cli(project: Path) -> CdkCli:
    from deployline.deploy.cdk import CdkCliError, find_cli

    console = _console()
    try:
        with console.status(
            f"Looking for the AWS CDK CLI {CDK_CLI_VERSION} (installed with npm on first use)"
        ):
            return find_cli(project)
    except CdkCliError as exc:
        _fail(str(exc))


def _can_confirm(command: str, yes: bool) -> None:
    """Fail at once, before any work, when a confirmation will be needed and cannot be asked."""
    if not yes and not sys.stdin.isatty():
        _fail(
            f"deployline {command} asks for a confirmation and stdin is not a terminal: pass --yes"
        )


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not typer.confirm(question, default=False, err=True):
        _console().print("Nothing was changed.")
        raise typer.Exit(1)


def _print_preflight(preflight: Any) -> None:
    from rich.text import Text

    console = _console()
    for check in preflight.checks:
        label, style = (
            ("ok", "green")
            if check.ok
            else ("FAILED", "red")
            if check.blocking
            else ("warning", "yellow")
        )
        line = Text("  ")
        line.append(f"{label:>7}", style=style)
        line.append(f"  {check.name}: {check.detail}")
        console.print(line)
        if not check.ok and check.fix:
            console.print(Text(f"{'':>11}fix: {check.fix}"))


def _preflight(plan: Any, aws: Any) -> None:
    from deployline.deploy.preflight import run_preflight

    console = _console()
    with console.status("Checking credentials, bootstrap and source connection"):
        preflight = run_preflight(
            plan.config, plan.stacks, aws, pipeline_stack=plan.pipeline and plan.pipeline.stack_name
        )
    console.print("Preflight:")
    _print_preflight(preflight)
    if not preflight.passed:
        n = len(preflight.failures)
        _fail(f"{n} preflight check{'s' if n != 1 else ''} failed; nothing was deployed")


@contextmanager
def _cdk_output(verbose: bool) -> Iterator[Any]:
    """Progress bars per stack on a terminal (failures and other lines above them); every line
    as it comes otherwise."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from deployline.deploy.operations import Output

    console = _console()
    if not console.is_terminal or verbose:
        yield Output(
            on_event=lambda e: console.print(_event_line(e), markup=False),
            on_line=lambda line: console.print(line, markup=False),
        )
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        tasks: dict[str, Any] = {}

        def on_event(event: StackEvent) -> None:
            if event.stack not in tasks:
                tasks[event.stack] = progress.add_task(event.stack, total=event.total)
            progress.update(tasks[event.stack], completed=event.done, total=event.total)
            if event.failed:
                progress.console.print(f"[red]{_event_line(event)}[/]", markup=True)

        def on_line(line: str) -> None:
            if line.strip():
                progress.console.print(line, markup=False, style="dim")

        yield Output(on_event=on_event, on_line=on_line)


def _event_line(event: StackEvent) -> str:
    return (
        f"{event.stack} {event.done}/{event.total} {event.status} {event.resource_type} "
        f"{event.detail}"
    )


# ---- the commands -------------------------------------------------------------------------


def deploy_command(
    config: ConfigOption = Path("deployline.yaml"),
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            help="Deploy only this environment's stack (repeatable). Default: every environment, "
            "then the pipeline.",
        ),
    ] = None,
    out: OutOption = Path("cdk.out"),
    profile: ProfileOption = None,
    region: RegionOption = None,
    yes: YesOption = False,
    no_check: NoCheckOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Deploy the environments' stacks, then the pipeline's, with the pinned AWS CDK CLI.

    Checks first, before anything is created: credentials and account,
    the bootstrap stack in every target account and region, the source
    connection, unconfirmed alert e-mails. A later deploy keeps the image
    the pipeline shipped: the ImageTag parameter keeps its value."""
    from deployline.deploy.operations import deploy

    _can_confirm("deploy", yes)
    cli = _cli(config.parent)
    loaded = _synthesize(config, out, check=not no_check)
    plan = _plan(loaded, out, env or [], None)
    aws = _aws(profile, region)
    _preflight(plan, aws)
    names = ", ".join(f"{s.stack_name} ({aws.placement(s)})" for s in plan.stacks)
    _confirm(f"Deploy {names}?", yes)
    with _cdk_output(verbose) as output:
        result = deploy(plan, cli, output, env=aws.cli_environment())
    if not result.ok:
        _fail(
            f"the AWS CDK CLI failed (exit {result.exit_code}); the lines above say which "
            "resource and why",
            1,
        )
    _print_deployed(plan, result.outputs)


def _print_deployed(plan: Any, outputs: dict[str, dict[str, str]]) -> None:
    from deployline.contract import OUTPUT_SERVICE_URL

    console = _console(stderr=False)
    for name, stack in plan.environments.items():
        url = outputs.get(stack.stack_name, {}).get(OUTPUT_SERVICE_URL, "-")
        console.print(f"{name}: {stack.stack_name} deployed; service URL {url}")
    if plan.pipeline is not None:
        console.print(
            f"pipeline: {plan.pipeline.stack_name} deployed; push to the configured branch to "
            "run it"
        )
        emails = plan.config.notifications.emails
        if emails:
            console.print(
                "alerts: confirm the subscription e-mail AWS sent to "
                + ", ".join(emails)
                + " (alerts to an unconfirmed address are dropped)"
            )


def diff_command(
    config: ConfigOption = Path("deployline.yaml"),
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="Only this environment (repeatable). Default: all."),
    ] = None,
    out: OutOption = Path("cdk.out"),
    profile: ProfileOption = None,
    region: RegionOption = None,
    fail: Annotated[
        bool, typer.Option("--fail", help="Exit 1 when anything would change (for CI).")
    ] = False,
) -> None:
    """Show, per stack, what a deploy would change against what is deployed."""
    from deployline.deploy.operations import Output, diff

    cli = _cli(config.parent)
    loaded = _synthesize(config, out, check=False)
    plan = _plan(loaded, out, env or [], None)
    aws = _aws(profile, region)
    console = _console(stderr=False)
    code = diff(
        plan,
        cli,
        Output(on_line=lambda line: console.print(line, markup=False)),
        fail=fail,
        env=aws.cli_environment(),
    )
    if code != 0:
        raise typer.Exit(code)


def rollback_command(
    env: Annotated[str, typer.Option("--env", "-e", help="The environment to roll back.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Commit SHA or image tag (or a prefix) of an earlier successful deployment. "
            "Default: the one before the running image.",
        ),
    ] = None,
    config: ConfigOption = Path("deployline.yaml"),
    out: OutOption = Path("cdk.out"),
    profile: ProfileOption = None,
    region: RegionOption = None,
    yes: YesOption = False,
    with_local_config: Annotated[
        bool,
        typer.Option(
            "--with-local-config",
            help="Also deploy what the local deployline.yaml changes in the stack. Default: "
            "refuse, so that a rollback changes only the image.",
        ),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Redeploy an earlier image of one environment, from the deployment history.

    The image goes out as the environment stack's ImageTag parameter, the
    way the pipeline deploys one; nothing else in the stack changes."""
    from deployline.deploy.aws import AwsError
    from deployline.deploy.operations import DeployError, deploy
    from deployline.deploy.rollback import plan_rollback

    _can_confirm("rollback", yes)
    cli = _cli(config.parent)
    loaded = _synthesize(config, out, check=False)
    plan = _plan(loaded, out, [env], False)
    aws = _aws(profile, region)
    try:
        with _console().status("Reading the deployed stack and the deployment history"):
            chosen = plan_rollback(
                loaded, env, plan.environments[env], aws, to=to, with_local_config=with_local_config
            )
    except (DeployError, AwsError) as exc:
        _fail(str(exc))
    record = chosen.target
    _confirm(
        f"Roll {env} back from image {chosen.current_tag or '(placeholder)'} to {record.image_tag} "
        f"(commit {record.commit_sha or '?'}, deployed {record.started_at or '?'})"
        + (f" with local changes: {'; '.join(chosen.changes)}" if chosen.changes else "")
        + "?",
        yes,
    )
    with _cdk_output(verbose) as output:
        result = deploy(plan, cli, output, env=aws.cli_environment(), parameters=chosen.parameters)
    if not result.ok:
        _fail(f"the AWS CDK CLI failed (exit {result.exit_code}); {env} keeps its image", 1)
    _console(stderr=False).print(f"{env} runs image {record.image_tag} again.")


def destroy_command(
    env: Annotated[str, typer.Option("--env", "-e", help="The environment to delete.")],
    config: ConfigOption = Path("deployline.yaml"),
    out: OutOption = Path("cdk.out"),
    profile: ProfileOption = None,
    region: RegionOption = None,
    yes: YesOption = False,
    delete_retained: Annotated[
        bool,
        typer.Option(
            "--delete-retained",
            help="Also delete what the stack keeps on delete (KMS key, log groups, log bucket: "
            "production's data). Default: keep them.",
        ),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Delete one environment's stack, then verify that nothing of it is left.

    Asks first (type the environment's name, or pass --yes). What the
    stack keeps on delete is deleted only with --delete-retained."""
    from deployline.deploy.aws import AwsError
    from deployline.deploy.destroy import destroy_environment, find_target
    from deployline.deploy.operations import DeployError

    _can_confirm("destroy", yes)
    cli = _cli(config.parent)
    loaded = _synthesize(config, out, check=False)
    plan = _plan(loaded, out, [env], False)
    aws = _aws(profile, region)
    try:
        target = find_target(plan, env, aws)
    except AwsError as exc:
        _fail(str(exc))
    stack = target.stack.stack_name
    if target.resources is None:
        _console().print(f"{stack} does not exist in {target.placement}; checking what is left.")
    else:
        kept = ", ".join(f"{r.resource_type} {r.physical_id}" for r in target.retained)
        fate = "delete" if delete_retained else "keep"
        _confirm_destroy(stack, env, target, yes, f" It will {fate}: {kept}." if kept else "")
    try:
        with _cdk_output(verbose) as output:
            result = destroy_environment(target, cli, output, aws, delete_retained=delete_retained)
    except (DeployError, AwsError) as exc:
        _fail(str(exc))
    _print_destroyed(result, stack)


def _confirm_destroy(stack: str, env: str, target: Any, yes: bool, kept: str) -> None:
    if yes:
        return
    answer = typer.prompt(
        f"Delete {stack} in {target.placement}?{kept} Type the environment name ({env}) to go on",
        default="",
        show_default=False,
        err=True,
    )
    if answer.strip() != env:
        _console().print("Nothing was deleted.")
        raise typer.Exit(1)


def _print_destroyed(result: Any, stack: str) -> None:
    console = _console(stderr=False)
    for arn in result.protection_disabled:
        console.print(f"turned off deletion protection: {arn}")
    for arn, done in result.deleted.items():
        console.print(f"{done}: {arn}")
    for arn, why in result.not_deleted.items():
        console.print(f"not deleted: {arn}: {why}")
    verification = result.verification
    console.print(f"{stack}: {'deleted' if verification.stack_gone else 'STILL EXISTS'}")
    for leftover in verification.leftovers:
        console.print(f"{leftover.state}: {leftover.arn} ({leftover.note})")
    problems = []
    if result.exit_code != 0:
        problems.append(f"the AWS CDK CLI failed (exit {result.exit_code}; its lines are above)")
    left = len(verification.left) + len(result.not_deleted) + (not verification.stack_gone)
    if left:
        problems.append(
            f"{left} resource(s) of the environment are left (listed above): delete them by "
            "hand, then run destroy again (with --delete-retained to delete what it keeps too)"
        )
    if problems:
        _fail("; ".join(problems), 1)
    kept = [x for x in verification.leftovers if x.state == "kept"]
    console.print(
        "Verified: nothing of the environment is left"
        + (f" but the {len(kept)} resource(s) it keeps on delete." if kept else ".")
    )
