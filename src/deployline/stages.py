"""The one definition of what the build, test and scan stages run.

The CodeBuild buildspecs in the synthesized pipeline and `deployline run-local` both come from
here, so a developer runs on their laptop exactly the commands the pipeline runs. Each stage is a
`StageSpec`: an ordered list of `Step`s (a name, one bash command and the buildspec phase it belongs
to), the files it produces, and the environment variables the pipeline must set for it.

    stage = build_stage(config)        # or test_stage, scan_stage, synth_stage
    spec = build_buildspec(config)
    codebuild.BuildSpec.from_object(spec)        # in the pipeline stack

Pure Python, no aws_cdk import. The buildspecs are plain dicts for `BuildSpec.from_object`.

Shell semantics (the same in CodeBuild and locally): every stage runs under bash (`env.shell:
bash`), and all the commands of a build share one shell, so a variable or a `cd` set by one
command is seen by the next (buildspec version 0.2). A command fails when its last statement fails;
a failing command stops the build (`on-failure: ABORT`). No literal account ID or region appears in
any command: the registry host comes from `$REPOSITORY_URI` and the region from CodeBuild's
`$AWS_DEFAULT_REGION`.

What the pipeline sets on each CodeBuild project (names from this module, so both sides agree):

- build: `REPOSITORY_URI` (the ECR repository URI). Needs privileged mode, and IAM:
  `ecr:GetAuthorizationToken` (only `*` is allowed), push and `ecr:DescribeImages` on the
  repository, and `secretsmanager:GetSecretValue` on `build.dockerhub_secret` when set. Exports
  `IMAGE_TAG` and `IMAGE_URI` (exported-variables).
- synth: nothing; IAM: `sts:AssumeRole` on the `cdk bootstrap` file-publishing role of every
  account and region the app deploys to (cdk-assets assumes it, as the asset manifests name it).
- scan: `REPOSITORY_URI` and `IMAGE_TAG` (pass the build action's exported `IMAGE_TAG`) when Trivy
  should scan the pushed image; pull access to the repository (`ecr:GetAuthorizationToken`,
  `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer`). Without `REPOSITORY_URI` the image scan is
  skipped and `trivy-image.json` is absent.
- test: nothing; the report groups are passed to `test_buildspec`.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from deployline import contract
from deployline.config import CONFIG_FILENAME, DeploylineConfig
from deployline.naming import CONTAINER_NAME

StageName = Literal["test", "scan", "build", "synth"]
Phase = Literal["install", "pre_build", "build", "post_build"]
PHASES: tuple[Phase, ...] = ("install", "pre_build", "build", "post_build")

#: Environment variables the build and scan stages read.
REPOSITORY_URI = contract.REPOSITORY_URI
IMAGE_TAG = contract.IMAGE_TAG
IMAGE_URI = contract.IMAGE_URI

#: Where the scan stage writes its reports (the base directory of its output artifact).
SCAN_REPORT_DIR = "security-reports"
#: The report files each scanner writes into SCAN_REPORT_DIR. They match the security gate's
#: `deployline.runtime.security_gate.REPORT_FILES` (a test pins the two together).
SCANNER_REPORTS: Mapping[str, tuple[str, ...]] = {
    "bandit": ("bandit.json",),
    "pip-audit": ("pip-audit.json",),
    "trivy": ("trivy-fs.json", "trivy-image.json"),
}
#: Reports that may be absent without failing the gate (the image scan is skipped when no image
#: is named, e.g. on a developer's machine without Docker).
OPTIONAL_REPORTS = frozenset({"trivy-image.json"})

#: Where the build stage writes its deployment files (the base directory of its artifact).
BUILD_ARTIFACT_DIR = "image-artifacts"
IMAGE_DEFINITIONS = "imagedefinitions.json"
IMAGE_DETAIL = "imageDetail.json"

#: Scanner versions the pipeline installs. Checked 2026-05: current, no known vulnerabilities.
BANDIT_VERSION = "1.9.4"
PIP_AUDIT_VERSION = "2.10.1"
#: Trivy, from its official GitHub release, verified against these SHA-256 sums (from the
#: release's trivy_0.70.0_checksums.txt). v0.69.4 was a malicious release: never float this pin.
TRIVY_VERSION = "0.70.0"
TRIVY_SHA256: Mapping[str, str] = {
    "Linux-64bit": "8b4376d5d6befe5c24d503f10ff136d9e0c49f9127a4279fd110b727929a5aa9",
    "Linux-ARM64": "2f6bb988b553a1bbac6bdd1ce890f5e412439564e17522b88a4541b4f364fc8d",
}
#: The scan stage's CodeBuild timeout (the test and build stages take theirs from the config).
SCAN_TIMEOUT_MINUTES = 20
#: The synth stage's CodeBuild timeout: installing deployline and aws-cdk-lib, synthesizing and
#: publishing assets take a few minutes.
SYNTH_TIMEOUT_MINUTES = 20

#: The CDK's own asset publisher (npm `cdk-assets`), pinned. Checked 2026-12: the newest 4.x.
CDK_ASSETS_VERSION = "4.7.3"
#: Where the synth stage writes the cloud assembly (the base directory of its artifact).
SYNTH_OUTPUT_DIR = "cdk.out"
#: Where the synth stage installs cdk-assets (outside the source tree, so it is never scanned).
CDK_ASSETS_PREFIX = "/tmp/deployline-cdk-assets"  # noqa: S108  (CodeBuild's scratch space)

#: Directories no scanner looks into (virtualenvs, caches, build output).
_SCAN_EXCLUDES = (".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", "cdk.out")


@dataclass(frozen=True)
class Step:
    """One command of a stage.

    Attributes:
        name: what the step does, shown in progress output ("Run Bandit").
        command: one bash command (it may span lines); it fails when its last statement fails.
        phase: the buildspec phase it runs in.
        pipeline_only: True when it needs the pipeline's AWS context (ECR login, push, the task
            definition) or installs a binary the pipeline fetches; `run-local` skips it and says
            why in `local_note`. Default: False.
        needs_docker: True when it needs a Docker engine; `run-local` runs it only when
            `docker info` answers. Default: False.
        scanner: the scanner this step belongs to (`bandit`, `pip-audit`, `trivy`), so that
            `run-local --skip-scanner` can skip it. Default: None.
        local_note: why `run-local` does not run it (pipeline-only steps). Default: "".
    """

    name: str
    command: str
    phase: Phase
    pipeline_only: bool = False
    needs_docker: bool = False
    scanner: str | None = None
    local_note: str = ""

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {self.phase!r}")
        if not self.command.strip():
            raise ValueError(f"step {self.name!r} has an empty command")
        if self.pipeline_only and not self.local_note:
            raise ValueError(f"pipeline-only step {self.name!r} needs a local_note saying why")


@dataclass(frozen=True)
class Report:
    """A test report file and its CodeBuild report format (JUNITXML, COBERTURAXML)."""

    path: str
    file_format: str


@dataclass(frozen=True)
class StageSpec:
    """Everything one stage deployline builds runs and produces: the specification its
    buildspec and `run-local` are made from (a stage parsed from a template is
    `deployline.checks.pipeline.Stage`).

    Attributes:
        name: test, scan or build.
        steps: the commands, in order (phases in buildspec order).
        output_dir: directory (relative to the source root) that holds `outputs`; the base
            directory of the stage's artifact. "." for the test stage.
        outputs: files the stage writes into `output_dir`: the artifact of scan and build, the
            report files of test. Optional ones may be absent (`optional_outputs`).
        optional_outputs: the subset of `outputs` that may be missing (the skipped image scan).
        reports: test reports for CodeBuild report groups (test stage only).
        timeout_minutes: the CodeBuild timeout the stage is designed for.
        inputs: environment variables the pipeline sets on the project (see the module doc).
        secrets: buildspec `env.secrets-manager` entries (variable -> "secret:json-key").
        exported: variables the stage exports to later pipeline actions.
        cache_paths: directories worth caching between builds (pip, Trivy's database).
    """

    name: StageName
    steps: tuple[Step, ...]
    output_dir: str
    outputs: tuple[str, ...]
    timeout_minutes: int
    optional_outputs: frozenset[str] = frozenset()
    reports: tuple[Report, ...] = ()
    inputs: tuple[str, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)
    exported: tuple[str, ...] = ()
    cache_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        order = [PHASES.index(s.phase) for s in self.steps]
        if order != sorted(order):
            raise ValueError(
                f"stage {self.name}: steps must be listed in phase order {PHASES}, "
                f"got {[s.phase for s in self.steps]}"
            )
        extra = sorted(self.optional_outputs - set(self.outputs))
        if extra:
            raise ValueError(f"stage {self.name}: optional_outputs {extra} are not outputs")

    def commands(self, phase: Phase | None = None) -> list[str]:
        """The commands of one phase (or of every phase, in order)."""
        return [s.command for s in self.steps if phase is None or s.phase == phase]

    def buildspec(self, *, report_groups: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The buildspec (version 0.2) for `BuildSpec.from_object`.

        `report_groups` maps a report path (one of `reports`) to the report group ARN or name
        that receives it; reports without a group are left out. Default: none.
        """
        env: dict[str, Any] = {"shell": "bash"}
        if self.secrets:
            env["secrets-manager"] = dict(self.secrets)
        if self.exported:
            env["exported-variables"] = list(self.exported)
        phases: dict[str, Any] = {}
        for phase in PHASES:
            commands = self.commands(phase)
            if commands:
                phases[phase] = {"on-failure": "ABORT", "commands": commands}
        spec: dict[str, Any] = {"version": "0.2", "env": env, "phases": phases}
        groups = dict(report_groups or {})
        unknown = sorted(set(groups) - {r.path for r in self.reports})
        if unknown:
            raise ValueError(
                f"report_groups names {unknown}, which stage {self.name} does not write; "
                f"it writes {[r.path for r in self.reports]}"
            )
        reports: dict[str, Any] = {}
        for report in self.reports:
            group = groups.get(report.path)
            if group is None:
                continue
            base, name = posixpath.split(report.path)
            reports[group] = {
                "files": [name],
                "base-directory": base or ".",
                "file-format": report.file_format,
            }
        if reports:
            spec["reports"] = reports
        if self.name != "test":
            spec["artifacts"] = {"files": list(self.outputs), "base-directory": self.output_dir}
        if self.cache_paths:
            spec["cache"] = {"paths": list(self.cache_paths)}
        return spec


# --------------------------------------------------------------------------------------------
# test
# --------------------------------------------------------------------------------------------


def test_stage(config: DeploylineConfig) -> StageSpec:
    """The unit-test stage: `test.commands`, one step each, and the JUnit and coverage reports."""
    steps = tuple(
        Step(name=_command_title(cmd), command=cmd, phase="build") for cmd in config.test.commands
    )
    reports = []
    if config.test.reports.junit:
        reports.append(Report(_clean_path(config.test.reports.junit), "JUNITXML"))
    if config.test.reports.coverage:
        reports.append(Report(_clean_path(config.test.reports.coverage), "COBERTURAXML"))
    return StageSpec(
        name="test",
        steps=steps,
        output_dir=".",
        outputs=tuple(r.path for r in reports),
        reports=tuple(reports),
        timeout_minutes=config.test.timeout_minutes,
        cache_paths=("/root/.cache/pip/**/*",),
    )


def test_buildspec(
    config: DeploylineConfig, *, junit_report_group: str, coverage_report_group: str
) -> dict[str, Any]:
    """The test project's buildspec.

    Runs `test.commands`; sends `test.reports.junit` (JUNITXML) to `junit_report_group` and
    `test.reports.coverage` (COBERTURAXML) to `coverage_report_group` (report group ARNs or
    names). A report the config turns off (null) is left out.
    """
    stage = test_stage(config)
    groups = {}
    for report in stage.reports:
        groups[report.path] = (
            junit_report_group if report.file_format == "JUNITXML" else coverage_report_group
        )
    return stage.buildspec(report_groups=groups)


# --------------------------------------------------------------------------------------------
# scan
# --------------------------------------------------------------------------------------------


def scan_stage(config: DeploylineConfig) -> StageSpec:
    """The security-scan stage: the configured scanners over `security.paths`.

    Each scanner writes its JSON report into `security-reports/`. A scanner's non-zero exit
    (findings) never fails the build and never hides its report: the security gate reads the
    reports, applies `security.threshold`, and fails closed on a report that is missing (a scanner
    that crashed). Bandit and pip-audit are installed with pip at pinned versions; Trivy from its
    release archive, checksum-verified. Trivy scans the files (`trivy fs`: vulnerabilities and
    secrets) and, when `$REPOSITORY_URI` is set, the pushed image (`trivy image`, fixable
    vulnerabilities only: an unfixable base-image CVE would block every release with no remedy).
    """
    scanners = list(config.security.scanners)
    paths = [_clean_path(p) for p in config.security.paths]
    quoted = " ".join(shlex.quote(p) for p in paths)
    out = SCAN_REPORT_DIR
    steps: list[Step] = []
    outputs: list[str] = []

    if "bandit" in scanners:
        steps.append(
            Step(
                name=f"Install Bandit {BANDIT_VERSION}",
                command=f"python3 -m pip install --quiet bandit=={BANDIT_VERSION}",
                phase="install",
                scanner="bandit",
            )
        )
    if "pip-audit" in scanners:
        steps.append(
            Step(
                name=f"Install pip-audit {PIP_AUDIT_VERSION}",
                command=f"python3 -m pip install --quiet pip-audit=={PIP_AUDIT_VERSION}",
                phase="install",
                scanner="pip-audit",
            )
        )
    if "trivy" in scanners:
        steps.append(
            Step(
                name=f"Install Trivy {TRIVY_VERSION}",
                command=_install_trivy_command(),
                phase="install",
                scanner="trivy",
                pipeline_only=True,
                local_note="Trivy is a separate binary: run-local uses the trivy on your PATH",
            )
        )
        steps.append(
            Step(
                name="Resolve the image tag",
                command=_image_tag_command(required=False),
                phase="pre_build",
                scanner="trivy",
            )
        )
    steps.append(
        Step(
            name="Prepare the report directory",
            command=f"rm -rf {out} && mkdir -p {out}",
            phase="pre_build",
        )
    )

    if "bandit" in scanners:
        excludes = ",".join(f"*/{d}/*" for d in _SCAN_EXCLUDES)
        steps.append(
            Step(
                name="Run Bandit",
                command=(
                    f"python3 -m bandit --recursive {quoted} --format json "
                    f"--output {out}/bandit.json --exclude {shlex.quote(excludes)} --quiet; "
                    'echo "bandit exited $?; the security gate decides"'
                ),
                phase="build",
                scanner="bandit",
            )
        )
        outputs.append("bandit.json")
    if "pip-audit" in scanners:
        prune = " ".join(f"-not -path {shlex.quote(f'*/{d}/*')}" for d in _SCAN_EXCLUDES)
        steps.append(
            Step(
                name="Run pip-audit",
                command=(
                    "reqs=(); while IFS= read -r -d '' f; do reqs+=(--requirement \"$f\"); "
                    f"done < <(find {quoted} -type f -name 'requirements*.txt' {prune} -print0 "
                    "| sort -z); "
                    'if [ "${#reqs[@]}" -eq 0 ]; then '
                    f'echo "pip-audit: no requirements*.txt under {" ".join(paths)}: nothing to '
                    "audit, so no report (the gate fails closed; drop pip-audit from "
                    'security.scanners if that is intended)" >&2; '
                    'else python3 -m pip_audit "${reqs[@]}" --format json '
                    f"--output {out}/pip-audit.json --progress-spinner off; "
                    'echo "pip-audit exited $?; the security gate decides"; fi'
                ),
                phase="build",
                scanner="pip-audit",
            )
        )
        outputs.append("pip-audit.json")
    if "trivy" in scanners:
        steps.append(
            Step(
                name="Run Trivy on the files",
                command=_trivy_fs_command(paths),
                phase="build",
                scanner="trivy",
            )
        )
        steps.append(
            Step(
                name="Run Trivy on the image",
                command=(
                    f'if [ -n "${{{REPOSITORY_URI}:-}}" ]; then '
                    'trivy image --image-src "${TRIVY_IMAGE_SRC:-remote}" --scanners vuln '
                    f"--ignore-unfixed --format json --output {out}/trivy-image.json "
                    f'--no-progress --exit-code 0 "${REPOSITORY_URI}:${IMAGE_TAG}"; '
                    'echo "trivy image exited $?; the security gate decides"; '
                    f'else echo "{REPOSITORY_URI} is not set: image scan skipped '
                    '(trivy-image.json absent)"; fi'
                ),
                phase="build",
                scanner="trivy",
                needs_docker=True,
            )
        )
        outputs.extend(["trivy-fs.json", "trivy-image.json"])

    cache = ["/root/.cache/pip/**/*"]
    if "trivy" in scanners:
        cache.append("/root/.cache/trivy/**/*")
    return StageSpec(
        name="scan",
        steps=tuple(steps),
        output_dir=out,
        outputs=tuple(outputs),
        optional_outputs=OPTIONAL_REPORTS & set(outputs),
        timeout_minutes=SCAN_TIMEOUT_MINUTES,
        inputs=(REPOSITORY_URI, IMAGE_TAG) if "trivy" in scanners else (),
        cache_paths=tuple(cache),
    )


def scan_buildspec(config: DeploylineConfig) -> dict[str, Any]:
    """The scan project's buildspec; its artifact is `security-reports/` (see `scan_stage`)."""
    return scan_stage(config).buildspec()


def _install_trivy_command() -> str:
    amd64 = TRIVY_SHA256["Linux-64bit"]
    arm64 = TRIVY_SHA256["Linux-ARM64"]
    return (
        'case "$(uname -m)" in '
        f"x86_64|amd64) TRIVY_ASSET=Linux-64bit; TRIVY_SHA256={amd64} ;; "
        f"aarch64|arm64) TRIVY_ASSET=Linux-ARM64; TRIVY_SHA256={arm64} ;; "
        '*) TRIVY_ASSET=""; echo "no pinned Trivy build for $(uname -m)" >&2 ;; esac; '
        '[ -n "$TRIVY_ASSET" ] && mkdir -p /tmp/trivy-dl && '
        "curl --fail --silent --show-error --location --retry 3 --output /tmp/trivy-dl/trivy.tgz "
        f'"https://github.com/aquasecurity/trivy/releases/download/v{TRIVY_VERSION}/'
        f'trivy_{TRIVY_VERSION}_${{TRIVY_ASSET}}.tar.gz" && '
        'echo "$TRIVY_SHA256  /tmp/trivy-dl/trivy.tgz" | sha256sum --check --strict - && '
        "tar -xzf /tmp/trivy-dl/trivy.tgz -C /tmp/trivy-dl trivy && "
        "install -m 0755 /tmp/trivy-dl/trivy /usr/local/bin/trivy && trivy --version"
    )


def _trivy_fs_command(paths: Sequence[str]) -> str:
    out = SCAN_REPORT_DIR
    skip = ",".join(d for d in _SCAN_EXCLUDES if d != ".git")
    flags = (
        f"--scanners vuln,secret --skip-dirs {shlex.quote(skip)} "
        "--format json --no-progress --exit-code 0"
    )
    if len(paths) == 1:
        return (
            f"trivy fs {flags} --output {out}/trivy-fs.json {shlex.quote(paths[0])}; "
            'echo "trivy fs exited $?; the security gate decides"'
        )
    # trivy fs takes one target: scan each path, then merge the Results into one report.
    parts = [
        f"trivy fs {flags} --output {out}/.trivy-fs-{i}.json {shlex.quote(p)}"
        for i, p in enumerate(paths)
    ]
    merge = (
        "python3 -c 'import json,sys; docs=[json.load(open(p)) for p in sys.argv[2:]]; "
        'out=dict(docs[0]); out["ArtifactName"]=",".join(d.get("ArtifactName","") for d in docs); '
        'out["Results"]=[r for d in docs for r in (d.get("Results") or [])]; '
        'json.dump(out,open(sys.argv[1],"w"))\' '
        f"{out}/trivy-fs.json " + " ".join(f"{out}/.trivy-fs-{i}.json" for i in range(len(paths)))
    )
    return (
        "; ".join(parts) + f"; {merge} && rm -f {out}/.trivy-fs-*.json; "
        'echo "trivy fs exited $?; the security gate decides"'
    )


# --------------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------------


def build_stage(config: DeploylineConfig) -> StageSpec:
    """The image build: build, tag with the commit, push to ECR, write the image files.

    The tag is the commit SHA (`$CODEBUILD_RESOLVED_SOURCE_VERSION`; `$IMAGE_TAG` overrides it).
    ECR tags are immutable, so when the tag already exists (a re-run of the same commit) the build
    and the push are skipped and the existing image is deployed. With `build.cache`, the build
    reuses layers of the newest image in the repository (BuildKit inline cache) and of the
    project's local Docker layer cache. Writes, into `image-artifacts/`,
    `imagedefinitions.json` `[{"name": "app", "imageUri": ...}]` and `imageDetail.json`
    `{"ImageURI": ...}`: the record of what was built. The image reaches the services through
    CloudFormation (the environment stacks' `ImageTag` parameter, set from the exported
    `IMAGE_TAG`), never through these files.
    """
    out = BUILD_ARTIFACT_DIR
    context = _clean_path(config.build.context)
    dockerfile = _clean_path(posixpath.join(context, config.build.dockerfile))
    steps: list[Step] = [
        Step(
            name="Resolve the image tag",
            command=_image_tag_command(required=True),
            phase="pre_build",
        ),
        Step(
            name="Log in to Amazon ECR",
            command=(
                'aws ecr get-login-password --region "$AWS_DEFAULT_REGION" | docker login '
                f'--username AWS --password-stdin "${{{REPOSITORY_URI}%%/*}}"'
            ),
            phase="pre_build",
            pipeline_only=True,
            local_note="needs the pipeline's AWS role; the local image stays on your machine",
        ),
    ]
    secrets: dict[str, str] = {}
    if config.build.dockerhub_secret:
        secrets = {
            "DOCKERHUB_USERNAME": f"{config.build.dockerhub_secret}:username",
            "DOCKERHUB_PASSWORD": f"{config.build.dockerhub_secret}:password",
        }
        steps.append(
            Step(
                name="Log in to Docker Hub",
                command=(
                    "printf '%s' \"$DOCKERHUB_PASSWORD\" | docker login "
                    '--username "$DOCKERHUB_USERNAME" --password-stdin'
                ),
                phase="pre_build",
                pipeline_only=True,
                local_note="reads build.dockerhub_secret from Secrets Manager; locally your "
                "own docker login applies",
            )
        )
    steps.append(
        Step(
            name="Check whether the image already exists",
            command=(
                'IMAGE_EXISTS=0; if out="$(aws ecr describe-images --repository-name '
                f'"${{{REPOSITORY_URI}#*/}}" --image-ids imageTag="${IMAGE_TAG}" 2>&1)"; then '
                f'IMAGE_EXISTS=1; echo "${IMAGE_URI} exists (ECR tags are immutable): '
                'build and push skipped"; '
                "elif printf '%s' \"$out\" | grep -q ImageNotFoundException; then "
                f'echo "${IMAGE_URI} is new"; '
                "else printf '%s\\n' \"$out\" >&2; false; fi"
            ),
            phase="pre_build",
            pipeline_only=True,
            local_note="asks ECR; locally the image is always built",
        )
    )
    cache_args = ""
    if config.build.cache:
        steps.append(
            Step(
                name="Find the newest image to reuse its layers",
                command=(
                    'CACHE_IMAGE="$(aws ecr describe-images --repository-name '
                    f'"${{{REPOSITORY_URI}#*/}}" --filter tagStatus=TAGGED '
                    "--query 'sort_by(imageDetails,&imagePushedAt)[-1].imageTags[0]' "
                    '--output text 2>/dev/null || true)"; '
                    'case "$CACHE_IMAGE" in ""|None) CACHE_IMAGE="" ;; '
                    f'*) CACHE_IMAGE="${REPOSITORY_URI}:$CACHE_IMAGE" ;; esac; '
                    'echo "layer cache: ${CACHE_IMAGE:-none}"'
                ),
                phase="pre_build",
                pipeline_only=True,
                local_note="asks ECR; locally Docker's own layer cache applies",
            )
        )
        cache_args = (
            '--build-arg BUILDKIT_INLINE_CACHE=1 ${CACHE_IMAGE:+--cache-from "$CACHE_IMAGE"} '
        )
    steps.append(
        Step(
            name="Build the image",
            command=(
                'if [ "${IMAGE_EXISTS:-0}" = 1 ]; then echo "build skipped: image exists"; '
                "else DOCKER_BUILDKIT=1 docker build --pull "
                f"--platform {shlex.quote(config.build.platform)} "
                f"--file {shlex.quote(dockerfile)} {cache_args}"
                f'--label org.opencontainers.image.revision="${IMAGE_TAG}" '
                f'--tag "${IMAGE_URI}" {shlex.quote(context)}; fi'
            ),
            phase="build",
            needs_docker=True,
        )
    )
    steps.append(
        Step(
            name="Push the image",
            command=(
                'if [ "${IMAGE_EXISTS:-0}" = 1 ]; then echo "push skipped: image exists"; '
                f'else docker push "${IMAGE_URI}"; fi'
            ),
            phase="build",
            pipeline_only=True,
            needs_docker=True,
            local_note="needs the pipeline's ECR login; the local image is not pushed",
        )
    )
    steps.append(
        Step(
            name=f"Write {IMAGE_DEFINITIONS} and {IMAGE_DETAIL}",
            command=(
                f"mkdir -p {out} && "
                f'printf \'[{{"name":"%s","imageUri":"%s"}}]\\n\' {CONTAINER_NAME} '
                f'"${IMAGE_URI}" > {out}/{IMAGE_DEFINITIONS} && '
                f'printf \'{{"ImageURI":"%s"}}\\n\' "${IMAGE_URI}" > {out}/{IMAGE_DETAIL} && '
                f"cat {out}/{IMAGE_DEFINITIONS}"
            ),
            phase="build",
        )
    )
    return StageSpec(
        name="build",
        steps=tuple(steps),
        output_dir=out,
        outputs=(IMAGE_DEFINITIONS, IMAGE_DETAIL),
        timeout_minutes=config.build.timeout_minutes,
        inputs=(REPOSITORY_URI,),
        secrets=secrets,
        exported=(IMAGE_TAG, IMAGE_URI),
    )


def build_buildspec(config: DeploylineConfig) -> dict[str, Any]:
    """The build project's buildspec; its artifact is `image-artifacts/` (see `build_stage`)."""
    return build_stage(config).buildspec()


# --------------------------------------------------------------------------------------------
# synth
# --------------------------------------------------------------------------------------------


def synth_stage(config: DeploylineConfig) -> StageSpec:
    """The synth: this commit's `deployline.yaml` into CloudFormation, and its assets published.

    Installs `pipeline.deployline_requirement` (the deployline that wrote the pipeline, pinned),
    runs `deployline synth` (which also runs `deployline check` and fails at the configured
    threshold), then publishes the file assets (the runtime functions' code) with the CDK's own
    `cdk-assets`, once per account and region, every destination in parallel
    (`python3 -m deployline.assets`). Its artifact is the cloud assembly: the templates the
    CloudFormation actions deploy.
    """
    prefix = CDK_ASSETS_PREFIX
    steps = (
        Step(
            name="Install deployline",
            command=(
                "python3 -m pip install --quiet --disable-pip-version-check "
                f"{shlex.quote(config.pipeline.deployline_requirement)}"
            ),
            phase="install",
            pipeline_only=True,
            local_note="run-local uses the deployline it runs with",
        ),
        Step(
            name=f"Install cdk-assets {CDK_ASSETS_VERSION}",
            command=(
                f"npm install --silent --no-save --no-fund --no-audit --prefix {prefix} "
                f"cdk-assets@{CDK_ASSETS_VERSION}"
            ),
            phase="install",
            pipeline_only=True,
            local_note="publishing assets needs the pipeline's bootstrap roles",
        ),
        Step(
            name="Synthesize and check the app",
            command=(
                f"rm -rf {SYNTH_OUTPUT_DIR} && deployline synth --config {CONFIG_FILENAME} "
                f"--out {SYNTH_OUTPUT_DIR}"
            ),
            phase="build",
        ),
        Step(
            name="Publish the file assets",
            command=(
                f"python3 -m deployline.assets {SYNTH_OUTPUT_DIR} "
                f'--cdk-assets "${{CDK_ASSETS:-{prefix}/node_modules/.bin/cdk-assets}}"'
            ),
            # build, not post_build: post_build runs even after a failed synth.
            phase="build",
            pipeline_only=True,
            local_note="publishing assets needs the pipeline's bootstrap roles",
        ),
    )
    return StageSpec(
        name="synth",
        steps=steps,
        output_dir=SYNTH_OUTPUT_DIR,
        outputs=("**/*",),
        timeout_minutes=SYNTH_TIMEOUT_MINUTES,
        cache_paths=("/root/.cache/pip/**/*", "/root/.npm/**/*"),
    )


def synth_buildspec(config: DeploylineConfig) -> dict[str, Any]:
    """The synth project's buildspec; its artifact is the cloud assembly `cdk.out/`."""
    return synth_stage(config).buildspec()


def _image_tag_command(*, required: bool) -> str:
    """Sets IMAGE_TAG (sanitized to ECR's tag rules) and IMAGE_URI; the same in build and scan."""
    if required:
        missing = (
            f'echo "{REPOSITORY_URI} is not set: the pipeline sets it to the ECR repository URI" '
            ">&2; false"
        )
    else:
        missing = f'echo "{REPOSITORY_URI} is not set: no image to scan"'
    return (
        f'if [ -z "${{{REPOSITORY_URI}:-}}" ]; then {missing}; else '
        f'{IMAGE_TAG}="${{{IMAGE_TAG}:-${{CODEBUILD_RESOLVED_SOURCE_VERSION:-'
        'build-${CODEBUILD_BUILD_NUMBER:-0}}}"; '
        f"{IMAGE_TAG}=\"$(printf '%s' \"${IMAGE_TAG}\" | tr -c 'A-Za-z0-9_.-' '-' "
        '| cut -c1-128)"; '
        f'{IMAGE_URI}="${REPOSITORY_URI}:${IMAGE_TAG}"; export {IMAGE_TAG} {IMAGE_URI}; '
        f'echo "image: ${IMAGE_URI}"; fi'
    )


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def stages(config: DeploylineConfig) -> dict[StageName, StageSpec]:
    """Every stage run-local can run, by name (the synth runs as `deployline synth` locally)."""
    return {"test": test_stage(config), "scan": scan_stage(config), "build": build_stage(config)}


def _clean_path(path: str) -> str:
    """A repository-relative path in POSIX form, without a leading './' or trailing '/'."""
    cleaned = posixpath.normpath(path.replace("\\", "/"))
    if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../"):
        raise ValueError(f"paths must stay inside the repository (relative, no '..'), got {path!r}")
    return cleaned


def _command_title(command: str) -> str:
    first = command.strip().splitlines()[0]
    return first if len(first) <= 72 else first[:69] + "..."


# `test_stage` and `test_buildspec` are not tests: keep pytest from collecting them where imported.
test_stage.__test__ = False  # type: ignore[attr-defined]
test_buildspec.__test__ = False  # type: ignore[attr-defined]
