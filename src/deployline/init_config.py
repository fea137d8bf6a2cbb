"""`deployline init`: write a commented starter deployline.yaml that validates as written.

`complete_answers` turns the options given (and, interactively, the answers to prompts) into
`InitAnswers`; `render` writes the file's text; `write_starter` validates it and writes it
atomically with the user's umask. Every choice (source type, production's deployment mode, with or
without e-mail) gives a file that validates and synthesizes; tests/test_cli.py proves it over the
choices.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deployline.config import parse_config_text
from deployline.fileio import write_atomically
from deployline.naming import kebab

SOURCES = ("github", "s3", "codecommit")
#: How the production environment deploys; staging always deploys rolling.
DEPLOYMENTS = ("blue_green", "rolling")
#: Tries an interactive answer gets before init gives up on it.
_TRIES = 3


@dataclass(frozen=True)
class InitAnswers:
    service: str
    project: str
    source: str = "github"  # github | s3 | codecommit
    repository: str = ""
    branch: str = "main"
    emails: list[str] = field(default_factory=list)
    deployment: str = "blue_green"  # production's: blue_green | rolling
    container_port: int = 8080
    health_check_path: str = "/health"


class InitError(Exception):
    pass


#: ask(question, default) -> the answer ("" when the user just pressed Enter on no default).
Ask = Callable[[str, str], str]


def default_service_name(directory: Path) -> str:
    name = kebab(directory.resolve().name) or "my-service"
    if not name[0].isalpha():
        name = f"svc-{name}"
    return name[:28].rstrip("-")


def complete_answers(
    *,
    service: str | None = None,
    project: str | None = None,
    source: str | None = None,
    repository: str | None = None,
    branch: str | None = None,
    emails: Sequence[str] | None = None,
    deployment: str | None = None,
    default_service: str = "my-service",
    ask: Ask | None = None,
) -> InitAnswers:
    """The answers from the options given; with `ask`, the missing ones are asked for.

    Without `ask` (no terminal, or --no-interactive) the defaults apply: the service is named
    after the directory, the source is github, production deploys blue_green, no e-mail.
    Raises InitError for a source or deployment mode that does not exist.
    """
    if ask is not None:
        service = service or ask("Service name", default_service)
        project = project or ask("Project", service)
        source = source or _choose(ask, "Source", SOURCES)
        if source in {"github", "codecommit"}:
            suggestion = f"my-org/{service}" if source == "github" else service
            repository = repository or ask("Repository", suggestion)
            branch = branch or ask("Branch that starts the pipeline", "main")
        deployment = deployment or _choose(ask, "Production deployment", DEPLOYMENTS)
        if emails is None:
            emails = _split(ask("Alert e-mails, comma-separated (blank for none)", ""))
    source = source or "github"
    deployment = deployment or "blue_green"
    for what, value, choices in (
        ("--source", source, SOURCES),
        ("--deployment", deployment, DEPLOYMENTS),
    ):
        if value not in choices:
            raise InitError(f"{what} must be {_or(choices)}, got {value!r}")
    service = service or default_service
    return InitAnswers(
        service=service,
        project=project or service,
        source=source,
        repository=repository or "",
        branch=branch or "main",
        emails=list(emails or []),
        deployment=deployment,
    )


def _choose(ask: Ask, question: str, choices: Sequence[str]) -> str:
    for _ in range(_TRIES):
        answer = ask(f"{question} ({', '.join(choices)})", choices[0]).strip()
        if answer in choices:
            return answer
    raise InitError(f"{question.lower()} must be {_or(choices)}")


def _or(choices: Sequence[str]) -> str:
    return ", ".join(choices[:-1]) + f" or {choices[-1]}"


def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[,\s]+", text) if part]


_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./@+-]*$")
_NOT_TEXT = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def _scalar(value: str) -> str:
    """A YAML scalar that reads back as the string `value`: plain when nothing in it means
    more to YAML, else double-quoted (JSON strings are YAML)."""
    if _PLAIN.match(value) and value.lower() not in _NOT_TEXT:
        return value
    return json.dumps(value, ensure_ascii=False)


def _source_block(a: InitAnswers) -> str:
    if a.source == "github":
        repo = _scalar(a.repository or f"my-org/{a.service}")
        return f"""source:
  type: github                    # GitHub, GitLab or Bitbucket through a CodeStar connection
  repository: {repo}
  branch: {_scalar(a.branch)}
  # Name of an SSM String parameter holding the CodeStar connection ARN. Create the connection
  # in the console (Developer Tools > Connections), then store its ARN:
  #   aws ssm put-parameter --type String \\
  #     --name /deployline/{a.service}/connection-arn --value <arn>
  connection_parameter: /deployline/{a.service}/connection-arn
  # paths: ["services/{a.service}/**"]   # only pushes touching these paths start the pipeline
"""
    if a.source == "s3":
        return """source:
  type: s3                        # deployline creates a versioned, encrypted source bucket
  key: source.zip                 # upload your source zip here to start the pipeline
"""
    return f"""source:
  type: codecommit                # an existing repository (new accounts cannot create one)
  repository: {_scalar(a.repository or a.service)}
  branch: {_scalar(a.branch)}
"""


def _production_block(a: InitAnswers) -> str:
    common = f"""    approval: true                # a person approves each release first
    desired_count: 2
    min_capacity: 2
    max_capacity: 4
    cpu: 512
    memory: 1024
    container_port: {a.container_port}
    health_check_path: {a.health_check_path}
    plain_http: true              # as above: give production a certificate before real traffic
"""
    if a.deployment == "rolling":
        return f"""  - name: production
    deployment: rolling           # rolling | blue_green (a test listener, then traffic shifts)
{common}"""
    return f"""  - name: production
    deployment: blue_green        # ECS blue/green: new tasks behind a test listener first
    traffic_shifting: canary_10_percent_5_minutes
{common}    test_listener_port: 8080      # the test listener; open it with test_listener_cidrs
"""


def _notifications_block(a: InitAnswers) -> str:
    if not a.emails:
        return """notifications:
  emails: []                      # who gets alerts and approval requests, e.g. [team@example.com]
"""
    return f"""notifications:
  emails: [{", ".join(_scalar(e) for e in a.emails)}]
"""


def _checks_block(a: InitAnswers) -> str:
    if a.deployment != "rolling":
        return ""
    return """
checks:
  suppress:                       # findings accepted on purpose, each with its reason
    - id: DL801                   # production deploys rolling (the checker prefers blue/green)
      reason: production deploys rolling, as chosen at deployline init; the ECS circuit breaker
        and the environment's alarms roll a bad release back
"""


def render(a: InitAnswers) -> str:
    return f"""# deployline.yaml: the delivery pipeline of one container service.
# Check it with `deployline validate`; `deployline schema` prints the JSON Schema for your editor.
service: {_scalar(a.service)}              # lowercase kebab-case; starts every resource name
project: {_scalar(a.project)}
# owner: team@example.com
# tags: {{CostCenter: "1234"}}     # on every resource, beside Environment, Project, ...

{_source_block(a)}
build:
  dockerfile: Dockerfile
  context: .
  timeout_minutes: 15             # 5..60
  cache: true                     # local Docker layer cache
  # dockerhub_secret: dockerhub/credentials   # Secrets Manager secret with username/password

test:
  commands:
    - pip install -r requirements.txt -r requirements-dev.txt
    - pytest --junitxml=reports/junit.xml --cov=. --cov-report=xml:reports/coverage.xml
  reports:
    junit: reports/junit.xml
    coverage: reports/coverage.xml

security:
  scanners: [bandit, pip-audit, trivy]
  threshold: high                 # fail at or above: critical | high | medium | low

environments:                     # in pipeline order
  - name: staging
    deployment: rolling           # ECS rolling update, circuit breaker and alarms roll back
    desired_count: 1
    min_capacity: 1
    max_capacity: 2
    cpu: 256
    memory: 512
    container_port: {a.container_port}
    health_check_path: {a.health_check_path}
    # HTTPS: domain_name with hosted_zone_id (deployline creates the certificate), or
    # domain_name with certificate_arn. Until then plain HTTP, by choice (validate warns):
    plain_http: true

{_production_block(a)}
{_notifications_block(a)}{_checks_block(a)}"""


def write_starter(path: Path, answers: InitAnswers, *, force: bool = False) -> Path:
    """Render, validate, and write atomically. Refuses to overwrite unless `force`.

    The file takes the user's umask (like any file an editor creates), or keeps the mode of the
    file it replaces; an interrupted write leaves the old file (or none), never half of one.
    """
    if path.exists() and not force:
        raise InitError(f"{path} already exists; pass --force to overwrite it")
    text = render(answers)
    parse_config_text(text, str(path))  # never write a file that does not validate
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)
    return path
