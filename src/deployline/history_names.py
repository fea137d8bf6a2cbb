"""The physical names of the deployment history's resources, in one place for the construct that
creates them (`constructs/deployment_history.py`) and the CLI that reads them (`deployline
history`, `deployline history redrive`). No aws_cdk import: the CLI must stay light.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployline.naming import Kind, Limit, Namer

#: SQS queue names are at most 80 characters.
SQS_QUEUE = Limit("SQS queue", 80)


@dataclass(frozen=True)
class HistoryNames:
    """`{prefix-}{service}-{type}-{env}` names of the table, the recorder and its queue."""

    table: str
    recorder: str
    dead_letter_queue: str

    @classmethod
    def of(cls, namer: Namer) -> HistoryNames:
        """The names for the pipeline's namer (env = `naming.pipeline_environment`)."""
        return cls(
            table=namer.name("deployments", Kind.DYNAMODB_TABLE),
            recorder=namer.name("recorder", Kind.LAMBDA_FUNCTION),
            dead_letter_queue=namer.name("recorder-dlq", SQS_QUEUE),
        )
