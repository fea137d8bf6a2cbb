"""Lists that age (deprecated runtimes, outdated images, `*`-only actions, deprecated policies).

Each list is one YAML file here with `checked: <date>` (when it was last compared with AWS's
documentation), `source:` (where), and `items:`. `load(name)` reads one, cached.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed data file `<name>.yaml` (a mapping with at least `checked` and `items`)."""
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoader
    if not isinstance(data, dict) or "items" not in data or "checked" not in data:
        raise ValueError(f"data file {name}.yaml must be a mapping with 'checked' and 'items'")
    return data


def items(name: str) -> list[Any]:
    value = load(name)["items"]
    return list(value) if isinstance(value, list) else []
