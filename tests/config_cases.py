"""Shared by the config fuzz and the `init` tests: a hypothesis strategy that draws whole
deployline.yaml documents over every setting (mostly valid values, some edge and invalid ones),
and `synthesize_together`, which builds several configs into one CDK app and synthesizes it once.

Synthesis costs seconds (jsii starts Node, every stack is built), so the tests put several configs
with distinct service names into one app instead of paying for one app each.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from deployline.config import DeploylineConfig, TrafficShifting
from deployline.contract import FARGATE_SIZES

# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

_LOWER = string.ascii_lowercase
kebab_words = st.text(_LOWER + string.digits, min_size=1, max_size=6).filter(
    lambda w: w[0].isalpha()
)


def kebab(max_size: int) -> st.SearchStrategy[str]:
    return (
        st.lists(kebab_words, min_size=1, max_size=4)
        .map("-".join)
        .filter(lambda name: len(name) <= max_size)
    )


def sometimes(
    strategy: st.SearchStrategy[Any], *, odd: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Mostly `strategy`, one draw in forty from `odd` (edge or invalid values): a document draws
    a few dozen values, and most documents should validate, to be synthesized."""
    return st.integers(0, 39).flatmap(lambda n: odd if n == 0 else strategy)


cidrs = st.sampled_from(
    ["0.0.0.0/0", "10.0.0.0/8", "192.168.1.0/24", "203.0.113.7/32", "172.16.0.0/12"]
)
odd_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "a\nb", "١٢٣", "x" * 300, "root", "0", "-main", "main..x"]),
)
branches = sometimes(
    st.sampled_from(["main", "develop", "release/2.1", "feature/a-b_c", "v1.0", "x" * 200]),
    odd=odd_text,
)
emails = st.sampled_from(
    ["ops@example.com", "team+alerts@example.org", "a.b@sub.example.co", "Ops@Example.com"]
)
arn_account = st.sampled_from(["111111111111", "222222222222"])
regions = st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2"])


@st.composite
def github_source(draw: st.DrawFn) -> dict[str, Any]:
    source: dict[str, Any] = {
        "type": "github",
        "repository": draw(sometimes(st.just("acme/orders"), odd=odd_text)),  # owner/name
        "branch": draw(branches),
    }
    if draw(st.booleans()):
        source["connection_parameter"] = draw(
            sometimes(st.just("/deployline/orders/connection-arn"), odd=odd_text)
        )
    else:
        source["connection_arn"] = (
            "arn:aws:codestar-connections:us-east-1:111111111111:connection/"
            "0123abcd-0123-4567-89ab-0123456789ab"
        )
    globs = sometimes(
        st.sampled_from(["src/**", "services/a/**", "*.md", "x" * 255]),
        odd=st.text(max_size=260),
    )
    for key in ("paths", "exclude_paths"):
        if draw(st.booleans()):
            source[key] = draw(st.lists(globs, max_size=draw(st.sampled_from([3, 9]))))
    if draw(st.booleans()):
        source["full_clone"] = draw(st.booleans())
    return source


@st.composite
def s3_source(draw: st.DrawFn) -> dict[str, Any]:
    source: dict[str, Any] = {"type": "s3"}
    if draw(st.booleans()):
        source["bucket"] = draw(sometimes(st.just("acme-orders-source"), odd=odd_text))
    if draw(st.booleans()):
        source["key"] = draw(sometimes(st.sampled_from(["source.zip", "a/b/c.zip"]), odd=odd_text))
    return source


@st.composite
def codecommit_source(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "type": "codecommit",
        "repository": draw(sometimes(st.sampled_from(["orders", "Orders_Repo.2"]), odd=odd_text)),
        "branch": draw(branches),
    }


@st.composite
def network(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": draw(st.sampled_from(["public", "private", "endpoints"]))}
    if draw(st.integers(0, 9)) == 0:
        out.update(
            vpc_id="vpc-0abc1234",
            availability_zones=["us-east-1a", "us-east-1b"],
            public_subnet_ids=["subnet-0abc1234", "subnet-0abc1235"],
        )
        if out["mode"] != "public":
            out["private_subnet_ids"] = ["subnet-0abc1236", "subnet-0abc1237"]
        return out
    out["max_azs"] = draw(st.integers(2, 6))
    # the smallest VPC whose subnets are still /28 for this many zones and subnet groups
    subnets = out["max_azs"] * (1 if out["mode"] == "public" else 2)
    smallest = 32 - (16 * subnets - 1).bit_length()
    out["vpc_cidr"] = draw(
        sometimes(
            st.sampled_from(["10.0.0.0/16", "10.1.0.0/20", f"10.2.0.0/{smallest}"]),
            odd=st.sampled_from(
                [
                    "10.0.0.0/9",
                    "10.0.0.0/28",
                    "10.0.0.0/15",
                    "300.0.0.0/16",
                    f"10.0.0.0/{smallest + 1}",
                ]
            ),
        )
    )
    if out["mode"] == "private":
        out["nat_gateways"] = draw(st.integers(1, out["max_azs"]))
    if out["mode"] == "endpoints" and draw(st.booleans()):
        out["extra_endpoints"] = draw(
            st.lists(st.sampled_from(["secretsmanager", "ssm", "sts", "kms"]), unique=True)
        )
    out["flow_logs"] = draw(st.booleans())
    return out


@st.composite
def environment(draw: st.DrawFn, name: str) -> dict[str, Any]:
    blue_green = draw(st.booleans())
    cpu = draw(st.sampled_from(sorted(FARGATE_SIZES)[:4]))
    low = draw(st.integers(1, 3))
    high = draw(st.integers(low, 6))
    env: dict[str, Any] = {
        "name": name,
        "deployment": "blue_green" if blue_green else "rolling",
        "desired_count": draw(st.integers(low, high)),
        "min_capacity": low,
        "max_capacity": high,
        "cpu": cpu,
        "memory": draw(st.sampled_from(FARGATE_SIZES[cpu])),
        "container_port": draw(st.sampled_from([8080, 3000, 80])),
        "health_check_path": draw(
            sometimes(st.sampled_from(["/health", "/", "/api/v1/health~x%20"]), odd=odd_text)
        ),
        "ingress_cidrs": draw(st.lists(cidrs, min_size=1, max_size=3, unique=True)),
        "network": draw(network()),
    }
    if blue_green:
        if draw(st.booleans()):
            env["traffic_shifting"] = draw(st.sampled_from([t.value for t in TrafficShifting]))
        if draw(st.booleans()):
            env["bake_minutes"] = draw(st.integers(0, 60))
        if draw(st.booleans()):
            env["test_listener_cidrs"] = draw(st.lists(cidrs, max_size=2, unique=True))
        env["test_listener_port"] = draw(st.sampled_from([8080, 8443, 9000]))
        if env["test_listener_port"] == env.get("listener_port", 80):
            env["test_listener_port"] = 8081
    if draw(st.integers(0, 4)) == 0:
        env["certificate_arn"] = (
            "arn:aws:acm:us-east-1:111111111111:certificate/0123abcd-0123-4567-89ab-0123456789ab"
        )
        env["domain_name"] = "orders.example.com"
    if draw(st.booleans()):
        env["container_user"] = draw(
            sometimes(st.sampled_from(["1000:1000", "app", "65534:65534"]), odd=odd_text)
        )
    if draw(st.booleans()):
        env["writable_paths"] = draw(
            st.lists(st.sampled_from(["/tmp", "/var/cache/app", "/run"]), max_size=3, unique=True)
        )
    if draw(st.booleans()):
        env["log_retention_days"] = draw(st.sampled_from([1, 7, 30, 365, 3653]))
    if draw(st.booleans()):
        env["alarms"] = {
            "error_rate_percent": draw(st.floats(0.5, 100)),
            "p99_latency_ms": draw(st.integers(1, 60_000)),
            "evaluation_minutes": draw(st.integers(1, 60)),
        }
    if draw(st.integers(0, 3)) == 0:
        env["production"] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        env["listener_port"] = draw(st.sampled_from([80, 443, 8080, 8081, 65535]))
    if draw(st.integers(0, 3)) == 0:
        env.update(
            health_check_grace_seconds=draw(st.integers(0, 3600)),
            deregistration_delay_seconds=draw(st.integers(0, 3600)),
            target_cpu_percent=draw(st.integers(10, 95)),
            target_requests_per_task=draw(st.integers(1, 1_000_000)),
            access_log_expiry_days=draw(st.integers(1, 3650)),
            read_only_root_filesystem=draw(st.booleans()),
            container_health_check=draw(st.booleans()),
        )
    if draw(st.integers(0, 5)) == 0:
        env["container_health_check_command"] = draw(
            sometimes(st.just("wget -qO- http://127.0.0.1:8080/health"), odd=odd_text)
        )
    if draw(st.integers(0, 5)) == 0:
        env["placeholder_image"] = draw(
            st.sampled_from(
                [
                    "public.ecr.aws/nginx/nginx:stable",
                    "111111111111.dkr.ecr.us-east-1.amazonaws.com/x:1",
                ]
            )
        )
        env["placeholder_image_command"] = draw(
            st.sampled_from([None, ["serve", "--port", "8080"]])
        )
    if draw(st.integers(0, 5)) == 0:
        env["destroy_on_delete"] = draw(st.booleans())
    return env


@st.composite
def config_documents(draw: st.DrawFn, *, service: str | None = None) -> dict[str, Any]:
    """A whole deployline.yaml as a mapping, over every section; most draws validate."""
    count = draw(st.integers(1, 3))
    names = draw(st.lists(kebab(12), min_size=count, max_size=count, unique=True))
    names = [n if n != "shared" else "qa" for n in names]
    envs = [draw(environment(n)) for n in names]
    if count > 1 and draw(st.integers(0, 9)) > 0:
        envs[-1]["approval"] = True
    for env in envs[:-1]:
        if draw(st.integers(0, 3)) == 0:
            env["approval"] = True
    doc: dict[str, Any] = {
        "service": service or draw(kebab(28)),
        "project": draw(kebab(32)),
        "source": draw(st.one_of(github_source(), s3_source(), codecommit_source())),
        "environments": envs,
    }
    if draw(st.booleans()):
        doc["owner"] = draw(
            sometimes(st.sampled_from(["team@example.com", "Orders Team"]), odd=odd_text)
        )
    if draw(st.booleans()):
        doc["tags"] = draw(
            st.dictionaries(
                st.text(string.ascii_letters, min_size=1, max_size=20),
                st.text(string.ascii_letters + string.digits + " -", max_size=40),
                max_size=draw(st.sampled_from([3, 44])),
            )
        )
    notifications: dict[str, Any] = {}
    if draw(st.integers(0, 3)) > 0:
        notifications["emails"] = draw(
            sometimes(st.lists(emails, max_size=3, unique_by=str.lower), odd=st.lists(emails))
        )
    if draw(st.integers(0, 3)) == 0:
        notifications["sns_topic_arn"] = f"arn:aws:sns:us-east-1:{draw(arn_account)}:alerts"
    if draw(st.integers(0, 3)) == 0:
        notifications["https_endpoint"] = draw(
            sometimes(
                st.just("https://hooks.example.com/deployline"),
                odd=st.just("https://user:secret@hooks.example.com/x"),
            )
        )
    if notifications:
        doc["notifications"] = notifications
    if draw(st.booleans()):
        doc["naming"] = {"prefix": draw(kebab(12))}
        if draw(st.booleans()):
            doc["naming"]["pipeline_environment"] = draw(kebab(12))
    pipeline: dict[str, Any] = {}
    if draw(st.integers(0, 3)) == 0:
        pipeline.update(account=draw(arn_account), region=draw(regions))
        for env in envs:
            if draw(st.integers(0, 2)) == 0:
                env["account"] = draw(arn_account)
            if draw(st.integers(0, 4)) == 0:
                env["region"] = draw(regions)
    if draw(st.integers(0, 3)) == 0:
        expiry = draw(st.integers(1, 3650))
        pipeline.update(
            artifact_expiry_days=expiry,
            noncurrent_expiry_days=draw(
                sometimes(st.integers(1, expiry), odd=st.integers(1, 3650))
            ),
            ecr_keep_images=draw(st.integers(1, 1000)),
            execution_mode=draw(st.sampled_from(["queued", "superseded"])),
            log_retention_days=draw(st.sampled_from([1, 14, 3653])),
            bootstrap_qualifier=draw(st.sampled_from(["hnb659fds", "abc123"])),
        )
    if pipeline:
        doc["pipeline"] = pipeline
    if draw(st.integers(0, 3)) == 0:
        doc["build"] = {
            "timeout_minutes": draw(st.integers(5, 60)),
            "platform": draw(st.sampled_from(["linux/amd64", "linux/arm64"])),
            "cache": draw(st.booleans()),
            "dockerfile": draw(st.sampled_from(["Dockerfile", "docker/app.Dockerfile"])),
            "context": draw(st.sampled_from([".", "services/api"])),
        }
        if draw(st.booleans()):
            doc["build"]["dockerhub_secret"] = draw(st.sampled_from(["dockerhub/creds", "x" * 512]))
    if draw(st.integers(0, 3)) == 0:
        doc["test"] = {
            "commands": draw(st.lists(st.sampled_from(["make test", "pytest -q"]), min_size=1)),
            "reports": {
                "junit": draw(st.sampled_from([None, "reports/junit.xml"])),
                "coverage": draw(st.sampled_from([None, "reports/coverage.xml"])),
            },
            "timeout_minutes": draw(st.integers(5, 60)),
        }
    if draw(st.integers(0, 3)) == 0:
        doc["security"] = {
            "scanners": draw(
                st.lists(st.sampled_from(["bandit", "pip-audit", "trivy"]), min_size=1, unique=True)
            ),
            "threshold": draw(st.sampled_from(["critical", "high", "medium", "low"])),
            "allow_unverified": draw(st.booleans()),
            "paths": draw(st.lists(st.sampled_from([".", "src", "services/api"]), min_size=1)),
        }
    if draw(st.integers(0, 4)) == 0:
        doc["checks"] = {
            "severity_threshold": draw(st.sampled_from(["low", "HIGH", "Critical"])),
            "suppress": [{"id": "DL405", "reason": "one environment in practice"}],
        }
    return doc


# --------------------------------------------------------------------------------------------
# Synthesis of several configs at once
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Synthesized:
    """What one app held: each config's stack templates (by stack name), and the directory."""

    outdir: Path
    templates: dict[str, dict[str, Any]]


def synthesize_together(configs: Sequence[DeploylineConfig], outdir: Path) -> Synthesized:
    """Build every config into one CDK app (their service names must differ) and synthesize it.

    A construct that refuses a config raises here, naming the config's service."""
    from aws_cdk import App

    from deployline.app import APP_CONTEXT, build_app, feature_flags

    services = [c.service for c in configs]
    assert len(set(services)) == len(services), f"service names must differ: {services}"
    app = App(
        outdir=str(outdir),
        context={**feature_flags(), **APP_CONTEXT},
        builtin_cloud_formation_validation=False,
    )
    for config in configs:
        try:
            build_app(config, app=app)
        except Exception as exc:
            raise AssertionError(f"{config.service}: {type(exc).__name__}: {exc}") from exc
    app.synth()
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    templates = {}
    for artifact in manifest["artifacts"].values():
        if artifact.get("type") == "aws:cloudformation:stack":
            path = outdir / artifact["properties"]["templateFile"]
            templates[artifact.get("displayName") or path.stem] = json.loads(path.read_text())
    return Synthesized(outdir, templates)
