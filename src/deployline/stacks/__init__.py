"""CDK stacks, one per concern: the pipeline's own resources, and one per environment."""
