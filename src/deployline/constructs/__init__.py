"""CDK constructs, one per file. Each takes typed keyword arguments, never deployline.yaml."""
