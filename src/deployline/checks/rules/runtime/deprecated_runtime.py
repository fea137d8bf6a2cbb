"""DL601: a Lambda function on a runtime that AWS has deprecated."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from deployline.checks import data
from deployline.checks.intrinsics import as_list, get_path, literal_str, ref_target
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


@lru_cache(maxsize=1)
def deprecated_runtimes() -> dict[str, dict[str, Any]]:
    """Runtime identifier -> its data entry (deprecation date, successor)."""
    return {str(i["runtime"]): i for i in data.items("deprecated_lambda_runtimes")}


class DeprecatedLambdaRuntime(Rule):
    """Reads `Runtime` of `AWS::Lambda::Function` and `AWS::Serverless::Function` (falling back
    to SAM `Globals.Function.Runtime`). The list is a dated data file. A runtime from a
    parameter is UNKNOWN unless every AllowedValue is supported; container-image functions
    have no Runtime and are skipped."""

    id = "DL601"
    severity = Severity.HIGH
    family = "Runtime"
    seed = "002 §5"
    title = "Lambda function on a deprecated runtime"
    resource_types = ("AWS::Lambda::Function", "AWS::Serverless::Function")
    rationale = (
        "Deprecated runtimes get no security patches, and AWS blocks creating (then updating) "
        "functions on them: the next deploy of the stack fails. Node.js 14.x, which a seed "
        "asks for, is one of them."
    )
    remediation = "Move to a supported runtime (nodejs22.x/24.x, python3.12+, java21, ...)."
    fix_example = """\
SmokeTest:
  Type: AWS::Lambda::Function
  Properties:
    Runtime: python3.13
"""

    def check(self, template: Template) -> Iterator[Hit]:
        globals_runtime = get_path(template.data.get("Globals"), "Function", "Runtime")
        for fn in template.of_type(*self.resource_types):
            value = fn.prop("Runtime")
            path = "Properties.Runtime"
            if value is None and fn.type == "AWS::Serverless::Function":
                value, path = globals_runtime, "Globals.Function.Runtime"
            if value is None:
                continue
            text = literal_str(value)
            if text is not None:
                entry = deprecated_runtimes().get(text.strip())
                if entry is not None:
                    yield self.hit(
                        fn.logical_id,
                        path,
                        f"runtime {text} was deprecated on {entry['deprecated']}; move to "
                        f"{entry['successor']}",
                    )
                continue
            target = ref_target(value)
            if target is not None and template.is_parameter(target):
                allowed = get_path(template.parameters.get(target), "AllowedValues")
                values = [v for v in as_list(allowed) if isinstance(v, str)]
                if values and not any(v in deprecated_runtimes() for v in values):
                    continue
            yield self.unknown(fn.logical_id, path, "the runtime is computed by an intrinsic")
