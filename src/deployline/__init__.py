"""deployline: one deployline.yaml in, a secure AWS delivery pipeline for a container service out.

`from deployline import ContainerPipeline` gives CDK users the pipeline construct. Importing the
package itself stays light (no aws_cdk), so `deployline check` and the Lambda runtime start fast;
CDK symbols load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Before anything can import aws_cdk: jsii's Node.js banners are quieted through the environment
# of the Node process it starts, so the variables must be set first. Importing a submodule runs
# this file first, whatever order an import sorter gives the submodule's imports.
import deployline._jsii_env  # noqa: F401

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
