"""Reading values that may be CloudFormation intrinsics.

Rules never guess through an intrinsic: `literal_str` returns None for anything that is not a plain
literal, `is_intrinsic` says when the template does not hold the answer, and `render` gives a text
with `${...}` holes for searching (buildspecs built with Fn::Join / Fn::Sub).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)

_SUB_VAR = re.compile(r"\$\{(?!!)([^}]+)\}")
DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:(ssm|ssm-secure|secretsmanager):", re.IGNORECASE)

Path = tuple[str | int, ...]


def is_intrinsic(value: Any) -> bool:
    """A single-key mapping `Ref`/`Fn::*`/`Condition`, or a string with a dynamic reference."""
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return isinstance(key, str) and (
            key == "Ref" or key.startswith("Fn::") or key == "Condition"
        )
    if isinstance(value, str):
        return bool(DYNAMIC_REFERENCE.search(value))
    return False


def is_dynamic_reference(value: Any) -> bool:
    return isinstance(value, str) and bool(DYNAMIC_REFERENCE.search(value))


def literal_str(value: Any) -> str | None:
    """The value if it is a plain string (not a dynamic reference), else None."""
    if isinstance(value, str) and not DYNAMIC_REFERENCE.search(value):
        return value
    return None


def bool_of(value: Any) -> bool | None:
    """True/False for a literal boolean (CloudFormation also accepts "true"/"false"), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return None


def int_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def sub_variables(template_string: str) -> list[str]:
    """Names referenced by a Fn::Sub string (`${X}`, `${X.Attr}`; `${!X}` is a literal)."""
    return [m.group(1).strip() for m in _SUB_VAR.finditer(template_string)]


def referenced_names(value: Any) -> set[str]:
    """Logical IDs / parameter names referenced through Ref, Fn::GetAtt and Fn::Sub (deep)."""
    out: set[str] = set()
    _collect_refs(value, out)
    return out - PSEUDO_PARAMETERS


def _collect_refs(value: Any, out: set[str]) -> None:
    if isinstance(value, dict):
        if len(value) == 1:
            key, arg = next(iter(value.items()))
            if key == "Ref" and isinstance(arg, str):
                out.add(arg)
                return
            if key == "Fn::GetAtt":
                if isinstance(arg, list) and arg and isinstance(arg[0], str):
                    out.add(arg[0])
                elif isinstance(arg, str):
                    out.add(arg.split(".", 1)[0])
                return
            if key == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (None, {})
                if isinstance(arg, list) and arg:
                    text = arg[0] if isinstance(arg[0], str) else None
                    local = arg[1] if len(arg) > 1 and isinstance(arg[1], dict) else {}
                    _collect_refs(local, out)
                if isinstance(text, str):
                    for name in sub_variables(text):
                        base = name.split(".", 1)[0]
                        if base not in local:
                            out.add(base)
                return
        for item in value.values():
            _collect_refs(item, out)
    elif isinstance(value, list):
        for item in value:
            _collect_refs(item, out)


def ref_target(value: Any) -> str | None:
    """The logical ID named by `{"Ref": X}` or `{"Fn::GetAtt": [X, ...]}` (or `!GetAtt X.Y`)."""
    if isinstance(value, dict) and len(value) == 1:
        key, arg = next(iter(value.items()))
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt":
            if isinstance(arg, list) and arg and isinstance(arg[0], str):
                return arg[0]
            if isinstance(arg, str):
                return arg.split(".", 1)[0]
    return None


def render(value: Any) -> str:
    """Best-effort text of a value: literals as they are, Fn::Join/Fn::Sub assembled, every other
    intrinsic as a `${...}` hole. For searching text (commands, names); never for deciding that a
    value IS something."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        key, arg = next(iter(value.items()))
        if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            sep = arg[0] if isinstance(arg[0], str) else ""
            parts = arg[1] if isinstance(arg[1], list) else [arg[1]]
            return sep.join(render(p) for p in parts)
        if key == "Fn::Sub":
            if isinstance(arg, str):
                return arg
            if isinstance(arg, list) and arg and isinstance(arg[0], str):
                return arg[0]
        if key == "Ref" and isinstance(arg, str):
            return "${" + arg + "}"
        if key == "Fn::GetAtt":
            target = ref_target(value)
            attr = arg[1] if isinstance(arg, list) and len(arg) > 1 else None
            if isinstance(arg, str) and "." in arg:
                attr = arg.split(".", 1)[1]
            return "${" + (target or "?") + "." + (attr if isinstance(attr, str) else "attr") + "}"
        return "${?}"
    if isinstance(value, list):
        return ",".join(render(v) for v in value)
    if isinstance(value, dict):
        return "${?}"
    return ""


def walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every scalar leaf with its path (dict keys and list indexes)."""
    stack: list[tuple[Path, Any]] = [(path, value)]
    while stack:
        p, v = stack.pop()
        if isinstance(v, dict):
            for k, item in v.items():
                stack.append(((*p, str(k)), item))
        elif isinstance(v, list):
            for i, item in enumerate(v):
                stack.append(((*p, i), item))
        else:
            yield p, v


def format_path(parts: Path) -> str:
    """("Properties", "Policies", 0) -> "Properties.Policies[0]"."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def get_path(value: Any, *parts: str | int) -> Any:
    """Nested lookup that returns None instead of raising on a missing key or a wrong type."""
    for part in parts:
        if isinstance(part, int):
            if isinstance(value, list) and -len(value) <= part < len(value):
                value = value[part]
            else:
                return None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value
