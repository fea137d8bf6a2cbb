"""DL124: a CodeBuild project pushes an image but its role may not push to ECR."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.buildspec import project_buildspec
from deployline.checks.iam import may_perform, role_id_of
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

PUSH_ACTIONS = (
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
)


class CodeBuildEcrPush(Rule):
    id = "DL124"
    severity = Severity.HIGH
    family = "Security"
    seed = "001 §1"
    title = "CodeBuild project pushes an image without the ECR permissions to do it"
    resource_types = ("AWS::CodeBuild::Project",)
    rationale = (
        "`docker push` to ECR needs a token (ecr:GetAuthorizationToken) and the layer upload "
        "actions; a role without them fails the build after the image is built, on every run."
    )
    remediation = (
        "Allow ecr:GetAuthorizationToken on '*' and ecr:BatchCheckLayerAvailability, "
        "ecr:GetDownloadUrlForLayer, ecr:BatchGetImage, ecr:PutImage, ecr:InitiateLayerUpload, "
        "ecr:UploadLayerPart and ecr:CompleteLayerUpload on the repository ARN."
    )
    fix_example = """\
- Effect: Allow
  Action: ecr:GetAuthorizationToken
  Resource: "*"
- Effect: Allow
  Action: [ecr:BatchCheckLayerAvailability, ecr:GetDownloadUrlForLayer, ecr:BatchGetImage,
           ecr:PutImage, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload]
  Resource: !GetAtt Repository.Arn
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for project in template.of_type(*self.resource_types):
            role = role_id_of(template, project.prop("ServiceRole"))
            missing: list[str] = []
            hidden: list[str] = []
            if role is not None:
                for action in PUSH_ACTIONS:
                    answer = may_perform(template, role, action)
                    if answer is False:
                        missing.append(action)
                    elif answer is None:
                        hidden.append(action)
                if not missing and not hidden:
                    continue  # whatever the buildspec does, the role may push
            spec = project_buildspec(project)
            if not spec.inline:
                yield self.unknown(
                    project.logical_id,
                    "Properties.Source.BuildSpec",
                    f"{spec.reason}; cannot tell whether it pushes an image the role may not push",
                )
                continue
            if not spec.pushes_image:
                continue
            if role is None:
                yield self.unknown(
                    project.logical_id,
                    "Properties.ServiceRole",
                    "the buildspec pushes an image and the service role is not defined in this "
                    "template; cannot check its ECR permissions",
                )
            elif missing:
                yield self.hit(
                    project.logical_id,
                    "Properties.ServiceRole",
                    f"the buildspec pushes an image but the role {role} may not "
                    f"{', '.join(missing)}",
                )
            else:
                yield self.unknown(
                    project.logical_id,
                    "Properties.ServiceRole",
                    f"the role {role} attaches a managed policy this template does not show; "
                    f"cannot tell whether it allows {', '.join(hidden)}",
                )
