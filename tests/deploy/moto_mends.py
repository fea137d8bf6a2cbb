"""Four bugs of moto 5.2.6's CloudFormation that stop the real CDK CLI from deploying deployline's
environment stack, mended for a test server's lifetime. Each mend does what moto's own code does
on a neighbouring path (or what AWS answers); nothing else about moto changes.

1. An AWS::KMS::Key from a template is stored as the template gives it: its `Tags` (Key/Value)
   go to a tagger that expects KMS's TagKey/TagValue, which fails the whole change set (HTTP 500,
   and ListStackResources with it), and its `KeyPolicy` stays an object where the API keeps a
   JSON string, which fails every DescribeKey (HTTP 500). Every environment stack has such a key.
2. On a stack update, the new AWS::ECS::TaskDefinition revision is registered from the template's
   PascalCase container definitions without the conversion to the API's camelCase that moto makes
   on create: the new revision has no image.
3. A change set that does not exist: DescribeChangeSet answers ValidationError ("Stack with id
   ... does not exist") where AWS answers ChangeSetNotFound, and DeleteChangeSet fails (HTTP 500)
   where AWS succeeds. Before each update and diff the CLI deletes its previous change set and
   waits for ChangeSetNotFound, so every update and diff failed.
4. A parameter passed with UsePreviousValue gets its previous *resolved* value. For an SSM-typed
   parameter (the `BootstrapVersion` every CDK stack has) that is the version (`"30"`), which the
   update then looks up as a parameter name and fails (HTTP 500). AWS keeps the name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest


def mend(mp: pytest.MonkeyPatch) -> None:
    """Apply the four mends through `mp` (undone when it is)."""
    _kms_key_tags(mp)
    _task_definition_update(mp)
    _change_set_not_found(mp)
    _previous_ssm_parameter_names(mp)


def _kms_key_tags(mp: pytest.MonkeyPatch) -> None:
    from moto.kms import models

    create = models.Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def fixed(
        cls: Any, name: str, cfn: dict[str, Any], account: str, region: str, /, **kw: Any
    ) -> Any:
        properties = dict(cfn.get("Properties", {}))
        properties["Tags"] = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties.get("Tags", [])
        ]
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        return create(cls, name, {**cfn, "Properties": properties}, account, region, **kw)

    mp.setattr(models.Key, "create_from_cloudformation_json", classmethod(fixed))


def _task_definition_update(mp: pytest.MonkeyPatch) -> None:
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys
    from moto.ecs import models

    update = models.TaskDefinition.update_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def fixed(cls: Any, /, *, cloudformation_json: dict[str, Any], **kwargs: Any) -> Any:
        properties = dict(cloudformation_json["Properties"])
        for key in ("ContainerDefinitions", "Volumes"):
            if key in properties:
                properties[key] = remap_nested_keys(properties[key], pascal_to_camelcase)
        cfn = {**cloudformation_json, "Properties": properties}
        return update(cls, cloudformation_json=cfn, **kwargs)

    mp.setattr(models.TaskDefinition, "update_from_cloudformation_json", classmethod(fixed))


def _change_set_not_found(mp: pytest.MonkeyPatch) -> None:
    from moto.cloudformation import models
    from moto.cloudformation.exceptions import CloudFormationError

    class ChangeSetNotFound(CloudFormationError):
        code = "ChangeSetNotFound"
        status_code = 404

        def __init__(self, name: str) -> None:
            super().__init__(self.code, f"ChangeSet [{name}] does not exist")

    backend = models.CloudFormationBackend
    describe, delete = backend.describe_change_set, backend.delete_change_set

    def known(self: Any, name: str) -> bool:
        return name in self.change_sets or any(
            c.change_set_name == name for c in self.change_sets.values()
        )

    def fixed_describe(self: Any, change_set_name: str) -> Any:
        if not known(self, change_set_name):
            raise ChangeSetNotFound(change_set_name)
        return describe(self, change_set_name)

    def fixed_delete(self: Any, change_set_name: str) -> None:
        if known(self, change_set_name):
            delete(self, change_set_name)

    mp.setattr(backend, "describe_change_set", fixed_describe)
    mp.setattr(backend, "delete_change_set", fixed_delete)


def _previous_ssm_parameter_names(mp: pytest.MonkeyPatch) -> None:
    from moto.cloudformation import models

    def previous(self: Any) -> dict[str, Any]:
        resources = self.resource_map
        values: dict[str, Any] = dict(resources.resolved_parameters)
        declared = self.template_dict.get("Parameters", {})
        for name, slot in declared.items():
            if str(slot.get("Type", "")).startswith("AWS::SSM::Parameter::"):
                values[name] = resources.input_parameters.get(name, slot.get("Default"))
        return values

    mp.setattr(models.Stack, "stack_parameters", property(previous))
