"""Finds every rule: each module under `deployline.checks.rules` defines one Rule subclass."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from functools import lru_cache

from deployline.checks import rules as rules_package
from deployline.checks.model import Rule

#: Named rule sets: the rules each leaves out. `third-party`: deployline's house conventions
#: (tags DL701, names DL702, outputs DL704, a deployment record DL506), which templates written
#: elsewhere need not follow; `all`: every rule.
PROFILES: dict[str, tuple[str, ...]] = {
    "all": (),
    "third-party": ("DL701", "DL702", "DL704", "DL506"),
}


@lru_cache(maxsize=1)
def rule_classes() -> tuple[type[Rule], ...]:
    """Every registered rule class, sorted by ID. Raises if two rules share an ID."""
    found: dict[str, type[Rule]] = {}
    prefix = rules_package.__name__ + "."
    for info in pkgutil.walk_packages(rules_package.__path__, prefix):
        if info.ispkg:
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Rule)
                and value is not Rule
                and value.__module__ == module.__name__
                and value.id
            ):
                if value.id in found and found[value.id] is not value:
                    raise RuntimeError(
                        f"rule ID {value.id} is defined twice: {found[value.id].__module__} "
                        f"and {value.__module__}"
                    )
                found[value.id] = value
    return tuple(found[k] for k in sorted(found))


def select_rules(
    only: list[str] | None = None,
    skip: list[str] | None = None,
    options: Mapping[str, Mapping[str, object]] | None = None,
) -> list[Rule]:
    """Instantiate the selected rules. `only`/`skip` take IDs or prefixes (`DL1` = DL100-DL199).
    Raises ValueError naming an ID that matches no rule."""
    classes = rule_classes()
    ids = [c.id for c in classes]

    def expand(patterns: list[str], what: str) -> set[str]:
        out: set[str] = set()
        for raw in patterns:
            pattern = raw.strip().upper()
            if not pattern:
                continue
            matched = {
                i for i in ids if i == pattern or (len(pattern) < 5 and i.startswith(pattern))
            }
            if not matched:
                raise ValueError(f"{what}: no rule matches {raw!r} (see `deployline rules`)")
            out |= matched
        return out

    chosen = expand(only, "--rules") if only else set(ids)
    chosen -= expand(skip or [], "--skip")
    opts = options or {}
    return [c(opts.get(c.id)) for c in classes if c.id in chosen]
