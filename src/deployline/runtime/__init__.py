"""Code that runs in AWS Lambda: boto3 and the standard library only, never aws_cdk.

The modules here take the names the layers share (severities, stack parameters and outputs,
action names) from `deployline.contract`, as `from . import contract`. The Lambda asset holds
`contract.py` beside this package (the asset's root is the deployline directory, see
constructs/runtime_function.py), so in Lambda this package is the top-level `runtime` and the
contract the top-level `contract`; installed, they are `deployline.runtime` and
`deployline.contract`. The one import below finds it in both places.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployline import contract as contract
else:
    _parent = __name__.rpartition(".")[0]
    contract = import_module(f"{_parent}.contract" if _parent else "contract")
