"""CDK constructs, one per file. Each takes typed keyword arguments and never reads deployline.yaml."""
