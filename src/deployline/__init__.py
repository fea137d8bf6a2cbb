"""deployline: one deployline.yaml in, a secure AWS delivery pipeline for a container service out.

`from deployline import ContainerPipeline` gives CDK users the pipeline construct. Importing the
package itself stays light (no aws_cdk), so `deployline check` and the Lambda runtime start fast;
CDK symbols load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ContainerPipeline": "deployline.constructs.container_pipeline",
    "build_app": "deployline.app",
    "load_config": "deployline.config",
    "DeploylineConfig": "deployline.config",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'deployline' has no attribute {name!r}")
    return getattr(import_module(module), name)
