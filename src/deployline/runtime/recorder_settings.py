"""The recorder's configuration: its environment variables, read and checked.

See recorder.py for what each variable means. Standard library only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import contract, ecs_events

_ENVIRONMENT_KEYS = ("name", "stage", "approve_stage", "cluster", "service", "account", "region")
_ACCOUNT = re.compile(r"^[0-9]{12}$")


class SettingsError(ValueError):
    """The function's environment variables are wrong; the message names the fix."""


@dataclass(frozen=True)
class EnvironmentSpec:
    """An environment the pipeline deploys: its stages and its ECS service."""

    name: str
    stage: str
    cluster: str
    service: str
    account: str
    region: str
    approve_stage: str | None = None

    def stages(self) -> tuple[str, ...]:
        return (self.stage, self.approve_stage) if self.approve_stage else (self.stage,)

    def runs(self, service: ecs_events.ServiceRef) -> bool:
        """Is `service` this environment's service? (An old-format ARN names no cluster.)"""
        return (
            service.service == self.service
            and service.account == self.account
            and service.region == self.region
            and service.cluster in (None, self.cluster)
        )


def _environment(index: int, entry: Any, account: str, region: str) -> EnvironmentSpec:
    strings = ("name", "stage", "cluster", "service")
    if (
        not isinstance(entry, Mapping)
        or any(not isinstance(entry.get(k), str) or not entry.get(k) for k in strings)
        or any(not isinstance(entry.get(k), (str, type(None))) for k in _ENVIRONMENT_KEYS)
    ):
        raise SettingsError(
            f"ENVIRONMENTS[{index}] must be an object with string {list(strings)} and string or "
            f"null approve_stage, account and region, got {json.dumps(entry)[:300]}"
        )
    own_account = entry.get("account") or account
    if not _ACCOUNT.match(own_account):
        raise SettingsError(f"ENVIRONMENTS[{index}].account must be 12 digits, got {own_account!r}")
    return EnvironmentSpec(
        name=entry["name"],
        stage=entry["stage"],
        cluster=entry["cluster"],
        service=entry["service"],
        account=own_account,
        region=entry.get("region") or region,
        approve_stage=entry.get("approve_stage") or None,
    )


@dataclass(frozen=True)
class RecorderSettings:
    """The recorder's configuration (see the module docstring)."""

    table_name: str
    service: str
    pipeline: str
    environments: tuple[EnvironmentSpec, ...]
    namespace: str = "deployline"
    production: str | None = None
    self_update_stage: str = contract.UPDATE_PIPELINE_STAGE
    gate_action: str = contract.GATE_ACTION

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RecorderSettings:
        required = (
            "TABLE_NAME",
            "SERVICE_NAME",
            "PIPELINE_NAME",
            "PIPELINE_ACCOUNT",
            "PIPELINE_REGION",
            "ENVIRONMENTS",
        )
        missing = [name for name in required if not env.get(name, "").strip()]
        if missing:
            raise SettingsError(
                f"environment variable(s) {missing} must be set (DeploymentHistory sets them)"
            )
        raw = env["ENVIRONMENTS"]
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"ENVIRONMENTS is not valid JSON ({exc.msg}): {raw[:200]!r}"
            ) from None
        if not isinstance(value, list) or not value:
            raise SettingsError(
                'ENVIRONMENTS must be a non-empty JSON list like [{"name": "staging", "stage": '
                '"Deploy-staging", "approve_stage": null, "cluster": "...", "service": "...", '
                f'"account": null, "region": null}}], got {raw[:200]!r}'
            )
        account = env["PIPELINE_ACCOUNT"].strip()
        region = env["PIPELINE_REGION"].strip()
        specs = tuple(_environment(i, entry, account, region) for i, entry in enumerate(value))
        production = env.get("PRODUCTION_ENVIRONMENT", "").strip() or None
        if production and production not in {s.name for s in specs}:
            raise SettingsError(
                f"PRODUCTION_ENVIRONMENT {production!r} is not one of the ENVIRONMENTS "
                f"{[s.name for s in specs]}"
            )
        return cls(
            table_name=env["TABLE_NAME"].strip(),
            service=env["SERVICE_NAME"].strip(),
            pipeline=env["PIPELINE_NAME"].strip(),
            environments=specs,
            namespace=env.get("METRICS_NAMESPACE", "").strip() or "deployline",
            production=production,
            self_update_stage=env.get("SELF_UPDATE_STAGE", "").strip()
            or contract.UPDATE_PIPELINE_STAGE,
            gate_action=env.get("GATE_ACTION", "").strip() or contract.GATE_ACTION,
        )

    def by_stage(self, stage: Any) -> EnvironmentSpec | None:
        """The environment whose deploy stage is `stage`."""
        return next((e for e in self.environments if e.stage == stage), None)

    def by_any_stage(self, stage: Any) -> EnvironmentSpec | None:
        """The environment `stage` belongs to (its deploy or its approve stage)."""
        return next((e for e in self.environments if stage in e.stages()), None)

    def by_service(self, service: ecs_events.ServiceRef) -> EnvironmentSpec | None:
        return next((e for e in self.environments if e.runs(service)), None)
