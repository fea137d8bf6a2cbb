"""A parsed template with the indexes rules need: resources by type, references in both directions,
tags, and the production test. Built once per file; rules only read it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from deployline.checks.intrinsics import as_list, get_path, literal_str, referenced_names

if TYPE_CHECKING:
    from deployline.checks.pipeline import Pipeline

PRODUCTION_NAMES = frozenset({"prod", "production", "prd"})


@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    raw: dict[str, Any]
    line: int | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        value = self.raw.get("Metadata")
        return value if isinstance(value, dict) else {}

    @property
    def depends_on(self) -> list[str]:
        return [d for d in as_list(self.raw.get("DependsOn")) if isinstance(d, str)]

    @property
    def deletion_policy(self) -> Any:
        return self.raw.get("DeletionPolicy")

    @property
    def update_replace_policy(self) -> Any:
        return self.raw.get("UpdateReplacePolicy")

    def prop(self, *path: str | int) -> Any:
        """Property lookup that returns None when any step is missing."""
        return get_path(self.properties, *path)

    @cached_property
    def tags(self) -> dict[str, Any]:
        """Tags as a mapping, from the list form ([{Key, Value}]) or the map form (SAM, SSM...)."""
        raw = self.properties.get("Tags")
        if raw is None:
            raw = self.properties.get("tags")  # a few types spell it lowercase
        out: dict[str, Any] = {}
        if isinstance(raw, list):
            for item in raw:
                if isinstance(item, dict) and isinstance(item.get("Key"), str):
                    out[item["Key"]] = item.get("Value")
        elif isinstance(raw, dict):
            out.update({str(k): v for k, v in raw.items()})
        return out

    @property
    def environment_tag(self) -> str | None:
        return literal_str(self.tags.get("Environment"))

    @property
    def is_production(self) -> bool:
        env = self.environment_tag
        return env is not None and env.strip().lower() in PRODUCTION_NAMES


@dataclass
class Template:
    file: str
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)

    @cached_property
    def resources(self) -> dict[str, Resource]:
        out: dict[str, Resource] = {}
        raw = self.data.get("Resources")
        if not isinstance(raw, dict):
            return out
        for logical_id, body in raw.items():
            if not isinstance(logical_id, str) or not isinstance(body, dict):
                continue
            rtype = body.get("Type")
            props = body.get("Properties")
            out[logical_id] = Resource(
                logical_id=logical_id,
                type=rtype if isinstance(rtype, str) else "",
                properties=props if isinstance(props, dict) else {},
                raw=body,
                line=self.lines.get(logical_id),
            )
        return out

    @cached_property
    def _by_type(self) -> dict[str, list[Resource]]:
        index: dict[str, list[Resource]] = defaultdict(list)
        for res in self.resources.values():
            index[res.type].append(res)
        return index

    def of_type(self, *types: str) -> list[Resource]:
        out: list[Resource] = []
        for t in types:
            out.extend(self._by_type.get(t, ()))
        return out

    def get(self, logical_id: str | None) -> Resource | None:
        if logical_id is None:
            return None
        return self.resources.get(logical_id)

    @property
    def parameters(self) -> dict[str, Any]:
        value = self.data.get("Parameters")
        return value if isinstance(value, dict) else {}

    @property
    def outputs(self) -> dict[str, Any]:
        value = self.data.get("Outputs")
        return value if isinstance(value, dict) else {}

    @cached_property
    def references(self) -> dict[str, set[str]]:
        """logical ID -> resources it references (Ref, GetAtt, Sub in Properties, and DependsOn
        kept separately in `depends`)."""
        out: dict[str, set[str]] = {}
        for lid, res in self.resources.items():
            names = referenced_names(res.raw.get("Properties"))
            out[lid] = {n for n in names if n in self.resources and n != lid}
        return out

    @cached_property
    def referenced_by(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for lid, targets in self.references.items():
            for target in targets:
                out[target].add(lid)
        return out

    def users_of(self, logical_id: str) -> list[Resource]:
        """Resources that reference `logical_id` through Ref, Fn::GetAtt or Fn::Sub."""
        return [self.resources[u] for u in sorted(self.referenced_by.get(logical_id, ()))]

    @cached_property
    def pipelines(self) -> list[Pipeline]:
        from deployline.checks.pipeline import parse_pipelines

        return parse_pipelines(self)

    def is_parameter(self, name: str) -> bool:
        return name in self.parameters
