"""The floor of CDK in Python: an app that synthesizes one empty bucket. `make bench` times
`deployline synth` against it, so the ratio shows what deployline adds on top of CDK itself."""

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "14,16,18,19,20,21,23")

from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

app = App(outdir=sys.argv[1] if len(sys.argv) > 1 else "cdk.out.floor")
stack = Stack(app, "Floor")
s3.Bucket(stack, "Bucket")
app.synth()
