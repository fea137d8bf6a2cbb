"""Reading values that may be CloudFormation intrinsics.

Rules never guess through an intrinsic: `literal_str` returns None for anything that is not a plain
literal, `is_intrinsic` says when the template does not hold the answer, and `render` gives a text
with `${...}` holes for searching (buildspecs built with Fn::Join / Fn::Sub).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

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


def ref_like(value: Any) -> str | None:
    """The logical ID or parameter named by Ref/GetAtt, or by a Fn::Sub that is exactly `${X}`."""
    target = ref_target(value)
    if target is not None:
        return target
    if isinstance(value, dict) and len(value) == 1 and "Fn::Sub" in value:
        arg = value["Fn::Sub"]
        text = arg if isinstance(arg, str) else arg[0] if isinstance(arg, list) and arg else None
        if isinstance(text, str):
            names = sub_variables(text)
            if len(names) == 1 and text.strip() == "${" + names[0] + "}":
                return names[0].split(".", 1)[0]
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


# The resolver -----------------------------------------------------------------------------------

#: How many branch combinations of `Fn::If` a value may expand to before the resolver gives up.
MAX_CANDIDATES = 16
_HOLE = "${?}"


class Resolver:
    """Resolves intrinsics as far as the template holds the answer, the one way every rule does.

    Known: `Ref` to a parameter with a literal `Default`; `Fn::Sub` in both forms (a string, or
    `[string, {variables}]`), `${!Literal}` escapes included; `Fn::Join`; `Fn::Select` over a
    known list; `Fn::Split` of known text; `Fn::FindInMap` whose keys resolve; `Fn::If` as both
    of its branches (`AWS::NoValue` drops the property). Unknown, and kept as a `${...}` hole in
    text: pseudo parameters (`${AWS::Region}`), resources (`${Bucket}`, `${Bucket.Arn}`),
    parameters without a default, imports and dynamic references.

    - `value(v)`: `v` with what resolves replaced by its literal; what does not stays as it was,
      so a caller that needs a literal still sees an intrinsic (and reports UNKNOWN).
    - `candidates(v)`: every value `v` may take (both branches of each `Fn::If`), or None when
      one of them does not resolve.
    - `text(v)`: text with `${...}` holes for what does not resolve (one `${?}` for a branch
      point whose branches differ), for searching and ARN matching, never for deciding that a
      value IS something.
    """

    def __init__(self, parameters: dict[str, Any], mappings: dict[str, Any]) -> None:
        self.parameters = parameters
        self.mappings = mappings

    # values -----------------------------------------------------------------------------------

    def value(self, value: Any) -> Any:
        found = self.candidates(value)
        if found is not None and len(found) == 1:
            return found[0]
        return value

    def candidates(self, value: Any) -> list[Any] | None:
        try:
            out = self._candidates(value, 0)
        except _Unresolved:
            return None
        unique: list[Any] = []
        for item in out:
            if item not in unique:
                unique.append(item)
        return unique

    def _candidates(self, value: Any, depth: int) -> list[Any]:
        if depth > 32:
            raise _Unresolved
        if isinstance(value, dict):
            if len(value) == 1:
                key, arg = next(iter(value.items()))
                handler = self._HANDLERS.get(key) if isinstance(key, str) else None
                if handler is not None:
                    found: list[Any] = handler(self, arg, depth + 1)
                    return found
                if isinstance(key, str) and (key.startswith("Fn::") or key == "Condition"):
                    raise _Unresolved
            return self._combine_dict(value, depth)
        if isinstance(value, list):
            return self._combine_list(value, depth)
        if isinstance(value, str) and DYNAMIC_REFERENCE.search(value):
            raise _Unresolved
        return [value]

    def _combine_dict(self, value: dict[Any, Any], depth: int) -> list[Any]:
        out: list[dict[Any, Any]] = [{}]
        for k, v in value.items():
            options = self._candidates(v, depth + 1)
            out = [{**o, k: opt} for o in out for opt in options if opt is not _NO_VALUE] + [
                o for o in out if _NO_VALUE in options
            ]
            _cap(out)
        return list(out)

    def _combine_list(self, value: list[Any], depth: int) -> list[Any]:
        out: list[list[Any]] = [[]]
        for item in value:
            options = self._candidates(item, depth + 1)
            out = [[*o, opt] for o in out for opt in options if opt is not _NO_VALUE] + [
                o for o in out if _NO_VALUE in options
            ]
            _cap(out)
        return list(out)

    def _ref(self, arg: Any, depth: int) -> list[Any]:
        if arg == "AWS::NoValue":
            return [_NO_VALUE]
        if isinstance(arg, str) and arg in self.parameters:
            default = get_path(self.parameters, arg, "Default")
            if default is not None and not isinstance(default, dict | list):
                kind = str(get_path(self.parameters, arg, "Type") or "")
                if kind.startswith("List<") or kind == "CommaDelimitedList":
                    return [[p.strip() for p in str(default).split(",")]]
                return [default if isinstance(default, str) else str(default)]
        raise _Unresolved

    def _sub(self, arg: Any, depth: int) -> list[Any]:
        text, variables = _sub_parts(arg)
        if text is None:
            raise _Unresolved
        names = sorted({n for n in sub_variables(text)})
        options: list[dict[str, str]] = [{}]
        for name in names:
            if name in variables:
                found = self._candidates(variables[name], depth + 1)
            elif "." in name:
                raise _Unresolved  # a resource attribute
            else:
                found = self._ref(name, depth)
            strings = [_scalar_text(f) for f in found]
            options = [{**o, name: s} for o in options for s in strings]
            _cap(options)
        return [_substitute(text, o) for o in options]

    def _join(self, arg: Any, depth: int) -> list[Any]:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
            raise _Unresolved
        lists = self._candidates(arg[1], depth + 1)
        out = []
        for items in lists:
            if not isinstance(items, list):
                raise _Unresolved
            out.append(arg[0].join(_scalar_text(i) for i in items))
        return out

    def _select(self, arg: Any, depth: int) -> list[Any]:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise _Unresolved
        out = []
        for index in self._candidates(arg[0], depth + 1):
            position = int_of(index)
            for items in self._candidates(arg[1], depth + 1):
                if position is None or not isinstance(items, list):
                    raise _Unresolved
                if not 0 <= position < len(items):
                    raise _Unresolved
                out.append(items[position])
        return out

    def _split(self, arg: Any, depth: int) -> list[Any]:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
            raise _Unresolved
        return [str(t).split(arg[0]) for t in self._candidates(arg[1], depth + 1)]

    def _find_in_map(self, arg: Any, depth: int) -> list[Any]:
        if not (isinstance(arg, list) and len(arg) >= 3):
            raise _Unresolved
        out = []
        keys = [self._candidates(k, depth + 1) for k in arg[:3]]
        for a in keys[0]:
            for b in keys[1]:
                for c in keys[2]:
                    found = get_path(self.mappings, str(a), str(b), str(c))
                    if found is None:
                        raise _Unresolved
                    out.append(found)
        return out

    def _if(self, arg: Any, depth: int) -> list[Any]:
        if not (isinstance(arg, list) and len(arg) == 3):
            raise _Unresolved
        return [*self._candidates(arg[1], depth + 1), *self._candidates(arg[2], depth + 1)]

    _HANDLERS: ClassVar[dict[str, Any]] = {
        "Ref": _ref,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::FindInMap": _find_in_map,
        "Fn::If": _if,
    }

    # text ---------------------------------------------------------------------------------------

    def text(self, value: Any) -> str:
        """`value` as text with `${...}` holes where it does not resolve."""
        return self._text(value, 0)

    def _text(self, value: Any, depth: int) -> str:
        found = self.candidates(value) if depth < 16 else None
        if found is not None and len(found) == 1 and not isinstance(found[0], dict | list):
            return _scalar_text(found[0])
        if isinstance(value, dict) and len(value) == 1:
            key, arg = next(iter(value.items()))
            if key == "Ref" and isinstance(arg, str):
                return "${" + arg + "}"
            if key == "Fn::GetAtt":
                return render(value)
            if key == "Fn::Sub":
                text, variables = _sub_parts(arg)
                if text is None:
                    return _HOLE
                return _SUB_VAR.sub(
                    lambda m: self._sub_hole(m.group(1).strip(), variables, depth), text
                )
            if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
                sep = arg[0] if isinstance(arg[0], str) else ""
                parts = arg[1] if isinstance(arg[1], list) else [arg[1]]
                return sep.join(self._text(p, depth + 1) for p in parts)
            return _HOLE
        if isinstance(value, list):
            return ",".join(self._text(v, depth + 1) for v in value)
        if isinstance(value, dict):
            return _HOLE
        if isinstance(value, str | int | float | bool):
            return _scalar_text(value)
        return ""

    def _sub_hole(self, name: str, variables: dict[str, Any], depth: int) -> str:
        if name in variables:
            return self._text(variables[name], depth + 1)
        if "." not in name and name in self.parameters:
            return self._text({"Ref": name}, depth + 1)
        return "${" + name + "}"


class _Unresolved(Exception):
    """Raised inside the resolver when a value depends on what the template does not hold."""


_NO_VALUE = object()  # AWS::NoValue: the property is removed


def _cap(items: list[Any]) -> None:
    if len(items) > MAX_CANDIDATES:
        raise _Unresolved


def _sub_parts(arg: Any) -> tuple[str | None, dict[str, Any]]:
    if isinstance(arg, str):
        return arg, {}
    if isinstance(arg, list) and arg and isinstance(arg[0], str):
        variables = arg[1] if len(arg) > 1 and isinstance(arg[1], dict) else {}
        return arg[0], variables
    return None, {}


def _substitute(text: str, values: dict[str, str]) -> str:
    out = _SUB_VAR.sub(lambda m: values.get(m.group(1).strip(), m.group(0)), text)
    return out.replace("${!", "${")


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise _Unresolved
