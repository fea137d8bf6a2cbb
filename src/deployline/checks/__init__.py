"""The failure-catalog checker: a pure function of a template dict.

Never imports aws_cdk, so `deployline check` starts in a fraction of a second.
"""
