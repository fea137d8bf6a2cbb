"""`python -m deployline.checks PATHS...` runs `deployline check`; `python -m deployline.checks
rules [ID]` lists the rules. Light: no aws_cdk, pydantic, boto3 or jsii."""

from __future__ import annotations

import sys

from deployline.checks.cli import main

if __name__ == "__main__":
    sys.exit(main())
