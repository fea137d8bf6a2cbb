"""`deployline deploy | diff | rollback | destroy`: the synthesized app, deployed with the real CDK
CLI (npm `aws-cdk`, pinned), checked before anything is created.

- `cdk`: finds (or installs, on first use) the pinned CDK CLI and runs it, streaming its output.
- `assembly`: what a synthesized cloud assembly holds (stacks, where they go, what they need).
- `aws`: credentials, and clients in each target account (through the bootstrap roles).
- `preflight`: the checks that run before anything is created; each failure names its fix.
- `operations`: deploy and diff.
- `rollback`: an earlier image from the deployment history, through the `ImageTag` parameter.
- `destroy`: an environment's stack, the resources it keeps on delete, and what is left.
- `cli`: the typer commands (thin).

None of these modules import aws_cdk: deployline synthesizes in-process (`deployline.synth`) and
hands the CLI `--app <cdk.out>`.
"""
