"""The `deployline` command. Thin: parse arguments, call a function, print.

Heavy modules (aws_cdk, boto3, pydantic models) are imported inside the commands that need them, so
`deployline check` starts in a fraction of a second.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from deployline.interrupts import EXIT_INTERRUPTED, interrupts

if TYPE_CHECKING:
    from rich.console import Console

    from deployline.checks.model import CheckResult
    from deployline.synth import SynthResult

app = typer.Typer(
    name="deployline",
    help="Turn deployline.yaml into a secure AWS delivery pipeline, and check CloudFormation "
    "templates for CI/CD anti-patterns.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="Path to deployline.yaml.", dir_okay=False),
]


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def error_line(message: str) -> None:
    """deployline's one error style: `error: <message>` on standard error (red on a terminal)."""
    from rich.markup import escape

    _stderr().print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def _fail(message: str, code: int = 2) -> NoReturn:
    error_line(message)
    raise typer.Exit(code)


#: Problems printed for one invalid configuration; the rest are counted.
MAX_PROBLEMS_SHOWN = 50


def config_errors(exc: Exception) -> NoReturn:
    """Print every problem of an invalid deployline.yaml (file:line: field: message) and exit 2."""
    from deployline.config import ConfigError

    assert isinstance(exc, ConfigError)
    console = _stderr()
    n = len(exc.problems)
    error_line(f"{n} problem{'s' if n != 1 else ''} in the configuration:")
    ordered = sorted(exc.problems, key=lambda p: (p.line or 0, p.field))
    for problem in ordered[:MAX_PROBLEMS_SHOWN]:
        console.print(f"  {problem}", highlight=False, markup=False)
    if n > MAX_PROBLEMS_SHOWN:
        console.print(f"  ... and {n - MAX_PROBLEMS_SHOWN} more", highlight=False, markup=False)
    raise typer.Exit(2)


#: The name deployline.deploy.cli imports.
_config_errors = config_errors


def _version_option(value: bool) -> None:
    if value:
        from deployline import __version__

        sys.stdout.write(f"deployline {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print deployline's version and exit.",
            is_eager=True,
            callback=_version_option,
        ),
    ] = False,
) -> None:
    pass  # the options of `deployline` itself; the help text is the app's


SYNTH_CONFIG_DEFAULT = Path("deployline.yaml")
SYNTH_OUT_DEFAULT = Path("cdk.out")


@app.command()
def synth(
    config: ConfigOption = SYNTH_CONFIG_DEFAULT,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (a CDK cloud assembly).")
    ] = SYNTH_OUT_DEFAULT,
    no_check: Annotated[
        bool,
        typer.Option("--no-check", help="Skip `deployline check` of the synthesized templates."),
    ] = False,
    cfn_validation: Annotated[
        bool,
        typer.Option(
            "--cfn-validation",
            help="Also run aws-cdk-lib's built-in CloudFormation template validation (about "
            "6 s more). Default: off; cfn-lint checks deployline's templates in its tests.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Synthesize even when OUT is up to date (its last synth had the same "
            "deployline.yaml, deployline, aws-cdk-lib, environment and options).",
        ),
    ] = False,
) -> None:
    """Synthesize CloudFormation templates from deployline.yaml, offline (no AWS credentials),
    then check them for CI/CD anti-patterns (exit 1 on findings at or above
    checks.severity_threshold). An OUT already synthesized from the same inputs is the answer,
    in a fraction of a second (--force synthesizes anyway)."""
    from rich.console import Console

    from deployline.synth import SynthError, synthesize

    console = Console(stderr=True, soft_wrap=True)
    try:
        with console.status("Reading configuration") as status:
            result = synthesize(
                config,
                out,
                progress=lambda msg: status.update(msg),
                check=not no_check,
                cfn_validation=cfn_validation,
                force=force,
            )
    except SynthError as exc:
        _fail(f"{config}: {exc}")
    except Exception as exc:
        from deployline.config import ConfigError  # pydantic's cost, paid only on the way out

        if isinstance(exc, ConfigError):
            config_errors(exc)
        raise
    _print_synth(config, out, result)


def _print_synth(config: Path, out: Path, result: SynthResult) -> None:
    """The synth's report: up to date or not, its stacks, the config's warnings, the check."""
    from rich.console import Console
    from rich.table import Table

    from deployline.synth_cache import up_to_date_message

    if result.cached is not None:
        Console(stderr=True, soft_wrap=True).print(
            up_to_date_message(out, config, result.cached), highlight=False, markup=False
        )
    table = Table(title=f"Synthesized into {result.outdir}", title_justify="left")
    # stack names are what `cdk deploy` takes: never cut them; long paths fold instead
    width = max((len(stack.name) for stack in result.stacks), default=5)
    table.add_column("stack", style="bold", no_wrap=True, min_width=width)
    table.add_column("resources", justify="right")
    table.add_column("outputs", justify="right")
    table.add_column("template file", no_wrap=True)
    for stack in result.stacks:  # the title names the directory; the file name is enough here
        table.add_row(stack.name, str(stack.resources), str(stack.outputs), stack.template.name)
    # wide enough for the table: paths and stack names are copied from here, so never cut
    needed = width + max((len(s.template.name) for s in result.stacks), default=0) + 30
    Console(width=max(needed, shutil.get_terminal_size().columns)).print(table)
    _print_warnings(config, result.warnings)
    if result.check is not None:
        _report_synth_check(result.check)


#: `deployline synth`'s plain options (the only forms `_up_to_date_synth` reads), by option.
_SYNTH_VALUES = {"--config": "config", "-c": "config", "--out": "out", "-o": "out"}
_SYNTH_FLAGS = {"--no-check": "no_check", "--cfn-validation": "cfn_validation"}


def _up_to_date_synth(args: list[str]) -> int | None:
    """`deployline synth ARGS` answered before typer parses ARGS (typer's options cost 0.2 s of
    pydantic), when ARGS are plain (`--config X`, `-c X`, `--out X`, `-o X`, `--no-check`,
    `--cfn-validation`) and the output directory is up to date; else None, and typer runs the
    command as usual (a synth, --force, --help, usage errors)."""
    if args[:1] != ["synth"]:
        return None
    options: dict[str, Any] = {
        "config": SYNTH_CONFIG_DEFAULT,
        "out": SYNTH_OUT_DEFAULT,
        "no_check": False,
        "cfn_validation": False,
    }
    rest = args[1:]
    while rest:
        option, *rest = rest
        if option in _SYNTH_FLAGS:
            options[_SYNTH_FLAGS[option]] = True
        elif option in _SYNTH_VALUES and rest and rest[0] and not rest[0].startswith("-"):
            value, *rest = rest
            options[_SYNTH_VALUES[option]] = Path(value)
        else:  # anything else is typer's to parse (and to refuse)
            return None
    from deployline.synth import up_to_date

    result = up_to_date(
        options["config"],
        options["out"],
        check=not options["no_check"],
        cfn_validation=options["cfn_validation"],
    )
    if result is None:
        return None
    try:
        _print_synth(options["config"], options["out"], result)
    except typer.Exit as exc:
        return exc.exit_code
    return 0


def _report_synth_check(checked: CheckResult) -> None:
    """Print the check of the synthesized templates; exit 1 (2 on a parse error) when it fails."""
    from rich.console import Console

    from deployline.checks.output import render_text, summary_line

    console = Console(stderr=True, soft_wrap=True)
    code = checked.exit_code()
    if code == 0:
        console.print(f"deployline check: {summary_line(checked)}", highlight=False, markup=False)
        return
    sys.stderr.write(render_text(checked))
    _fail(
        f"deployline check found {len(checked.at_or_above())} finding(s) at or above "
        f"{checked.threshold.name} in the synthesized templates: fix them, accept each with a "
        "reason in deployline.yaml `checks.suppress`, or skip the check with --no-check",
        code,
    )


@app.command()
def validate(config: ConfigOption = Path("deployline.yaml")) -> None:
    """Check deployline.yaml without synthesizing: every problem, with its line and field."""
    from deployline.config import ConfigError, load_config

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        config_errors(exc)
    envs = ", ".join(
        f"{e.name} ({e.deployment.value}{', approval' if e.approval else ''})"
        for e in loaded.environments
    )
    _stderr().print(f"{config}: valid. service {loaded.service}; environments: {envs}")
    _print_warnings(config, loaded.warnings())


def _print_warnings(config: Path, warnings: Sequence[str]) -> None:
    for warning in warnings:
        _stderr().print(f"warning: {config}: {warning}", highlight=False, markup=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of deployline.yaml (for editors and CI validation)."""
    from deployline.config import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
def init(
    path: Annotated[Path, typer.Option("--path", help="Where to write the file.")] = Path(
        "deployline.yaml"
    ),
    service: Annotated[str | None, typer.Option(help="Service name (kebab-case).")] = None,
    project: Annotated[str | None, typer.Option(help="Project name (kebab-case).")] = None,
    source: Annotated[
        str | None, typer.Option(help="Source type: github, s3 or codecommit. Default: github.")
    ] = None,
    repository: Annotated[
        str | None, typer.Option(help="owner/name (github) or repository name (codecommit).")
    ] = None,
    branch: Annotated[
        str | None, typer.Option(help="Branch that starts the pipeline. Default: main.")
    ] = None,
    email: Annotated[
        list[str] | None, typer.Option(help="E-mail for alerts and approvals (repeatable).")
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            help="How production deploys: blue_green (a test listener, then a canary traffic "
            "shift) or rolling. Default: blue_green."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    interactive: Annotated[
        bool | None,
        typer.Option(
            "--interactive/--no-interactive",
            help="Prompt for missing answers. Default: when stdin is a terminal.",
        ),
    ] = None,
) -> None:
    """Write a commented starter deployline.yaml that validates and synthesizes as written."""
    from deployline.config import ConfigError
    from deployline.init_config import (
        InitError,
        complete_answers,
        default_service_name,
        write_starter,
    )

    if path.exists() and not force:
        _fail(f"{path} already exists; pass --force to overwrite it")
    ask = sys.stdin.isatty() if interactive is None else interactive
    try:
        answers = complete_answers(
            service=service,
            project=project,
            source=source,
            repository=repository,
            branch=branch,
            emails=email,
            deployment=deployment,
            default_service=default_service_name(
                path.parent if path.parent != Path() else Path.cwd()
            ),
            ask=_prompt if ask else None,
        )
        written = write_starter(path, answers, force=force)
    except InitError as exc:
        _fail(str(exc))
    except ConfigError as exc:
        config_errors(exc)
    _stderr().print(f"Wrote {written}. Next: [bold]deployline synth --config {written}[/]")


def _prompt(question: str, default: str) -> str:
    answer: str = typer.prompt(question, default=default, show_default=bool(default))
    return answer


# Commands whose modules are heavy (or must stay light, like `check`) are imported only when they
# run: `deployline check` must not pay for pydantic, boto3 or aws_cdk. name -> (module, function)
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("deployline.checks.cli", "check_command"),
    "rules": ("deployline.checks.cli", "rules_command"),
    "history": ("deployline.history", "history_app"),
    "run-local": ("deployline.local_runner", "run_local_command"),
    "diagram": ("deployline.diagram", "diagram_command"),
    "deploy": ("deployline.deploy.cli", "deploy_command"),
    "diff": ("deployline.deploy.cli", "diff_command"),
    "rollback": ("deployline.deploy.cli", "rollback_command"),
    "destroy": ("deployline.deploy.cli", "destroy_command"),
}
_registered: set[str] = set()


def register_commands(names: list[str] | None = None) -> typer.Typer:
    """Add the lazily imported commands (`names`, default all) to `app` and return it."""
    from importlib import import_module

    for name in names if names is not None else list(LAZY_COMMANDS):
        if name in _registered or name not in LAZY_COMMANDS:
            continue
        module, function = LAZY_COMMANDS[name]
        command = getattr(import_module(module), function)
        if isinstance(command, typer.Typer):  # a command with subcommands
            app.add_typer(command, name=name)
        else:
            app.command(name)(command)
        _registered.add(name)
    return app


def _command_in(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def run(argv: Sequence[str]) -> int:
    """Run `deployline ARGV...` and return its exit code: what `main` does, callable in-process.

    One error style for every command: `error: ...` on standard error; 2 for usage errors (an
    unknown option, a missing argument, a bad value), 130 after Ctrl-C.
    """
    args = list(argv)
    command = _command_in(args)
    with interrupts:
        try:
            if command in {"check", "rules"} and "--help" not in args:
                # typer coerces options through pydantic; `deployline check` must stay light
                from deployline.checks.cli import main as checks_main

                return checks_main(args)
            if command == "synth":  # an up-to-date output answers before typer's parsing
                answered = _up_to_date_synth(args)
                if answered is not None:
                    return answered
            # `deployline --help` lists every command; `schema` needs none of the lazy ones
            if command is None:
                register_commands()
            elif command in LAZY_COMMANDS:
                register_commands([command])
            return _invoke(args, command)
        except KeyboardInterrupt:
            return _interrupted()
        except Exception:
            if interrupts.seen:
                return _interrupted()
            raise


def _invoke(args: list[str], command: str | None) -> int:
    try:
        result = app(args=args, prog_name="deployline", standalone_mode=False)
    except typer.TyperException as exc:  # typer's (vendored click's) usage and other errors
        context = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
            sys.stdout.write(context.get_help() + "\n")
            return 2
        if exc.exit_code == 2:  # a usage error: say where the help is
            where = context.command_path if context else f"deployline {command or ''}".strip()
            error_line(f"{exc.format_message()} (see `{where} --help`)")
            return 2
        error_line(exc.format_message())
        return exc.exit_code
    except typer.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, EOFError):
            error_line("no answer: standard input closed; give the answers as options instead")
            return 2
        return _interrupted()
    if isinstance(result, int) and not isinstance(result, bool):
        return _interrupted() if result == EXIT_INTERRUPTED else result
    return 0


def _interrupted() -> int:
    # after the terminal's ^C, on a line of its own
    sys.stderr.write(("\n" if sys.stderr.isatty() else "") + "interrupted\n")
    return EXIT_INTERRUPTED


def main() -> None:
    """Console-script entry point."""
    code = run(sys.argv[1:])
    if code == EXIT_INTERRUPTED and "jsii" in sys.modules:
        # jsii's Node process got the SIGINT too; on exit jsii prints what Node said while
        # dying (ECONNRESET on its channel) to sys.stderr. The user has the one line already.
        sys.stderr.flush()
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  (until exit)
    sys.exit(code)


if __name__ == "__main__":
    main()
