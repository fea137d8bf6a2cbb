"""`deployline init`: write a commented starter deployline.yaml that validates as written."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from deployline.config import parse_config_text
from deployline.naming import kebab


@dataclass(frozen=True)
class InitAnswers:
    service: str
    project: str
    source: str = "github"  # github | s3 | codecommit
    repository: str = ""
    branch: str = "main"
    emails: list[str] = field(default_factory=list)
    container_port: int = 8080
    health_check_path: str = "/health"


def default_service_name(directory: Path) -> str:
    name = kebab(directory.resolve().name) or "my-service"
    if not name[0].isalpha():
        name = f"svc-{name}"
    return name[:28].rstrip("-")


def _source_block(a: InitAnswers) -> str:
    if a.source == "github":
        repo = a.repository or f"my-org/{a.service}"
        return f"""source:
  type: github                    # github (GitHub, GitLab, Bitbucket via a CodeStar connection) | s3 | codecommit
  repository: {repo}
  branch: {a.branch}
  # Name of an SSM String parameter holding the CodeStar connection ARN. Create the connection
  # in the console (Developer Tools > Connections), then store its ARN:
  #   aws ssm put-parameter --type String --name /deployline/{a.service}/connection-arn --value <arn>
  connection_parameter: /deployline/{a.service}/connection-arn
  # paths: ["services/{a.service}/**"]   # only pushes touching these paths start the pipeline
"""
    if a.source == "s3":
        return """source:
  type: s3                        # deployline creates a versioned, encrypted source bucket
  key: source.zip                 # upload your source zip here to start the pipeline
"""
    repo = a.repository or a.service
    return f"""source:
  type: codecommit                # an existing repository (new accounts cannot create CodeCommit repos)
  repository: {repo}
  branch: {a.branch}
"""


def render(a: InitAnswers) -> str:
    emails = ", ".join(a.emails)
    return f"""# deployline.yaml: the delivery pipeline of one container service.
# Check it with `deployline synth`; `deployline schema` prints the JSON Schema for your editor.
service: {a.service}              # lowercase kebab-case; starts every resource name
project: {a.project}
# owner: team@example.com
# tags: {{CostCenter: "1234"}}     # added to every resource, beside Environment/Project/ManagedBy/Service

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
    deployment: rolling           # rolling (ECS circuit breaker + rollback) | blue_green (CodeDeploy)
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

  - name: production
    deployment: blue_green
    traffic_shifting: canary_10_percent_5_minutes
    approval: true                # manual approval before this environment
    desired_count: 2
    min_capacity: 2
    max_capacity: 4
    cpu: 512
    memory: 1024
    container_port: {a.container_port}
    health_check_path: {a.health_check_path}
    test_listener_port: 8080
    plain_http: true              # as above: give production a certificate before real traffic

notifications:
  emails: [{emails}]
"""


class InitError(Exception):
    pass


def write_starter(path: Path, answers: InitAnswers, *, force: bool = False) -> Path:
    """Render, validate, and write atomically. Refuses to overwrite unless `force`."""
    if path.exists() and not force:
        raise InitError(f"{path} already exists; pass --force to overwrite it")
    text = render(answers)
    parse_config_text(text, str(path))  # never write a file that does not validate
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
