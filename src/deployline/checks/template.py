"""A parsed template with the indexes rules need: resources by type, references in both directions,
tags, and the production test. Built once per file; rules only read it."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from deployline.checks.intrinsics import (
    Resolver,
    as_list,
    get_path,
    literal_str,
    ref_target,
    referenced_names,
    render,
    sub_variables,
)

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


def _may_render_to(value: Any, text: str) -> bool:
    """Could an intrinsic name render to `text`? (`${...}` holes match anything)."""
    pattern = re.sub(r"\\\$\\\{[^}]*\\\}", ".*", re.escape(render(value)))
    return re.fullmatch(pattern, text) is not None


@dataclass(frozen=True)
class Lookup:
    """Which resource a property value names, or why the template cannot tell.

    `resource` is set when found. Otherwise `external` is True when the value is a literal name
    that no resource of the wanted types carries (the thing lives outside the template), and
    `reason` says why (for UNKNOWN messages)."""

    resource: Resource | None = None
    reason: str = ""
    external: bool = False

    @property
    def found(self) -> bool:
        return self.resource is not None


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(path: str) -> list[str | int]:
    """`Properties.Stages[3].Actions[0]` -> ["Properties", "Stages", 3, "Actions", 0]."""
    return [int(i) if i else name for name, i in _PATH_PART.findall(path)]


@dataclass(frozen=True)
class StackContext:
    """What a cloud assembly manifest says about a template (nothing, for a lone file).

    `stack_name` is the deployed stack's name (`properties.stackName`, else the artifact ID);
    `account`/`region` its pinned environment (`aws://<account>/<region>`; None when
    environment-agnostic); `assembly_accounts`/`assembly_regions` every concrete account and
    region any stack of the assembly is pinned to (the environments the deployment reaches)."""

    stack_name: str | None = None
    account: str | None = None
    region: str | None = None
    assembly_accounts: frozenset[str] = frozenset()
    assembly_regions: frozenset[str] = frozenset()
    #: The other stacks' templates of the assembly, parsed on first use (a resource named by a
    #: literal physical name may live in one of them: an artifact store of another region).
    siblings: Callable[[], Sequence[Template]] | None = field(default=None, compare=False)

    @property
    def pinned(self) -> bool:
        return self.account is not None or self.region is not None


@dataclass
class Template:
    file: str
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)
    text: str = field(default="", repr=False)  # the source text, for locating non-resource keys
    context: StackContext = field(default_factory=StackContext)

    @property
    def stack_name(self) -> str | None:
        return self.context.stack_name

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

    @cached_property
    def types(self) -> frozenset[str]:
        """The resource types the template holds."""
        return frozenset(self._by_type)

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
    def pipelines(self) -> list[Pipeline]:
        from deployline.checks.pipeline import parse_pipelines

        return parse_pipelines(self)

    def is_parameter(self, name: str) -> bool:
        return name in self.parameters

    def parameter_default(self, name: str) -> Any:
        """The Default of parameter `name`, or None when it has none (or is not a parameter)."""
        return get_path(self.parameters, name, "Default")

    @cached_property
    def resolver(self) -> Resolver:
        mappings = self.data.get("Mappings")
        return Resolver(self.parameters, mappings if isinstance(mappings, dict) else {})

    def resolve(self, value: Any) -> Any:
        """`value` with the intrinsics the template resolves replaced by their literal (the
        template as deployed with its parameter defaults; see `intrinsics.Resolver`). Anything
        else is returned unchanged, so an intrinsic stays an intrinsic and callers still report
        UNKNOWN for it."""
        return self.resolver.value(value)

    def candidates(self, value: Any) -> list[Any] | None:
        """Every value `value` may take (both branches of each Fn::If), or None when one of them
        depends on what the template does not hold."""
        return self.resolver.candidates(value)

    def text_of(self, value: Any) -> str:
        """`value` as text, with `${...}` holes where it does not resolve."""
        return self.resolver.text(value)

    def named(self, value: Any, types: Iterable[str], name_prop: str | None = None) -> Lookup:
        """The resource of one of `types` that `value` names: `Ref`/`GetAtt`/`${X}` to its logical
        ID, or a literal equal to its literal physical name `name_prop` (e.g. "BucketName")."""
        wanted = tuple(types)
        kinds = " or ".join(wanted)
        if value is None:
            return Lookup(reason="the value is not set")
        if name_prop is not None and not isinstance(value, str):
            for res in self.of_type(*wanted):  # the same intrinsic names both (e.g. one parameter)
                if res.prop(name_prop) == value:
                    return Lookup(resource=res)
        target = ref_target(value)
        if target is None and isinstance(value, dict) and len(value) == 1 and "Fn::Sub" in value:
            arg = value["Fn::Sub"]
            first = arg[0] if isinstance(arg, list) and arg else arg
            text = first if isinstance(first, str) else ""
            names = sub_variables(text)
            if len(names) == 1 and text.strip() == "${" + names[0] + "}":
                target = names[0].split(".", 1)[0]
        if target is not None:
            found = self.get(target)
            if found is not None:
                if found.type in wanted:
                    return Lookup(resource=found)
                return Lookup(reason=f"{target} is a {found.type}, not a {kinds}")
            if self.is_parameter(target):
                default = literal_str(self.parameter_default(target))
                if default is not None and name_prop is not None:
                    return self.named(default, wanted, name_prop)
                return Lookup(reason=f"the value comes from the parameter {target}")
            return Lookup(reason=f"{target} is not a resource of this template")
        literal = literal_str(value)
        if literal is not None:
            text = literal
            if name_prop is not None:
                for res in self.of_type(*wanted):
                    if literal_str(res.prop(name_prop)) == text:
                        return Lookup(resource=res)
                for res in self._sibling_resources(wanted):
                    if literal_str(res.prop(name_prop)) == text:
                        return Lookup(resource=res)
                for res in self.of_type(*wanted):
                    name = res.prop(name_prop)
                    if (
                        name is not None
                        and literal_str(name) is None
                        and _may_render_to(name, text)
                    ):
                        return Lookup(
                            reason=f"{text!r} may be the computed {name_prop} of {res.logical_id}"
                        )
            return Lookup(reason=f"no {kinds} in this template is named {text!r}", external=True)
        return Lookup(reason="the value is computed by an intrinsic the template does not resolve")

    def _sibling_resources(self, types: tuple[str, ...]) -> Iterator[Resource]:
        """Resources of `types` in the assembly's other stacks (none for a lone template)."""
        if self.context.siblings is None:
            return
        for sibling in self.context.siblings():
            if sibling.file != self.file:
                yield from sibling.of_type(*types)

    @cached_property
    def _node_lines(self) -> dict[tuple[str | int, ...], int]:
        from deployline.checks.loader import node_lines

        return node_lines(self.text) if self.text else {}

    def line_at(self, resource: str, path: str) -> int | None:
        """1-based line of the deepest node of `path` (a finding's property path, e.g.
        `Properties.Stages[3].Actions[0]`) under the resource, read from the YAML/JSON nodes;
        the resource's own line when the path is not there; None when the text is unknown."""
        if resource not in self.resources:
            return self.line_of(resource)
        lines = self._node_lines
        where: tuple[str | int, ...] = ("Resources", resource)
        found = lines.get(where)
        for depth, part in enumerate(split_path(path)):
            where = (*where, part)
            if where not in lines:
                break
            if depth > 0 or part != "Properties":  # a missing property: the resource's line
                found = lines[where]
        return found if found is not None else self.resources[resource].line

    def line_of(self, key: str) -> int | None:
        """1-based line of the first mapping key `key` in the source text (for findings on
        parameters, outputs or top-level sections), or of the resource `key`."""
        if key in self.lines:
            return self.lines[key]
        if not self.text or not key:
            return None
        name = key.rsplit(".", 1)[-1]
        m = re.search(r'^[ \t]*"?' + re.escape(name) + r'"?[ \t]*:', self.text, re.MULTILINE)
        return self.text.count("\n", 0, m.start()) + 1 if m else None
