"""moto's server mode for scripts/checks/tf-apply.sh, with two gaps of moto 5 closed first.

1. moto gives every RDS DB instance the same DbiResourceId ("db-M5ENSHXFPU6XHZ4G4ZEI5QIO2U").
   The AWS provider tracks an instance by that id, so with dev and prod in one account the second
   environment's apply waits on the first environment's instance and fails ("couldn't find
   resource"). AWS gives each instance its own id; so does this launcher.
2. moto has no SSM State Manager associations (CreateAssociation is "not implemented"). The node
   bootstrap association (terraform/node_bootstrap.tf) needs Create/Describe/Update/Delete/List
   and its tags; this launcher keeps them in memory, in the API's shape, and runs nothing (moto
   has no instances to run them on).

Nothing else changes. Usage: python moto_server.py PORT  (binds 127.0.0.1 only).
"""

from __future__ import annotations

import os
import secrets
import string
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.rds import models as rds_models
from moto.server import main
from moto.ssm import models as ssm_models
from moto.ssm.exceptions import SSMException
from moto.ssm.responses import SimpleSystemManagerResponse

_ID_ALPHABET = string.ascii_uppercase + string.digits
_original_db_init = rds_models.DBInstance.__init__


def _db_init_with_unique_resource_id(self: Any, *args: Any, **kwargs: Any) -> None:
    """Build the instance as moto does, then give it a resource id of its own, shaped like AWS's."""
    _original_db_init(self, *args, **kwargs)
    self.dbi_resource_id = "db-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


rds_models.DBInstance.__init__ = _db_init_with_unique_resource_id  # type: ignore[method-assign]


# --- SSM associations ----------------------------------------------------------------------------

# The request fields an association keeps and describes back (CreateAssociation/UpdateAssociation).
_ASSOCIATION_FIELDS = (
    "Name",
    "DocumentVersion",
    "AssociationName",
    "Targets",
    "Parameters",
    "ScheduleExpression",
    "ScheduleOffset",
    "OutputLocation",
    "ComplianceSeverity",
    "MaxConcurrency",
    "MaxErrors",
    "SyncCompliance",
    "ApplyOnlyAtCronInterval",
    "AutomationTargetParameterName",
    "CalendarNames",
    "TargetLocations",
    "TargetMaps",
    "Duration",
    "AlarmConfiguration",
    "InstanceId",
)
# (account, region) -> association id -> AssociationDescription
_associations: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}


class AssociationDoesNotExist(SSMException):
    """The error AWS answers for an unknown association id."""

    def __init__(self) -> None:
        super().__init__("AssociationDoesNotExist", "The specified association does not exist.")


def _store(response: SimpleSystemManagerResponse) -> dict[str, dict[str, Any]]:
    return _associations.setdefault((response.current_account, response.region), {})


def _find(response: SimpleSystemManagerResponse) -> dict[str, Any]:
    association = _store(response).get(response._get_param("AssociationId") or "")
    if association is None:
        raise AssociationDoesNotExist()
    return association


def _create_association(self: SimpleSystemManagerResponse) -> ActionResult:
    now = datetime.now(UTC)
    association_id = str(uuid.uuid4())
    association: dict[str, Any] = {
        key: self._get_param(key) for key in _ASSOCIATION_FIELDS if self._get_param(key) is not None
    }
    association.update(
        AssociationId=association_id,
        AssociationVersion="1",
        Date=now,
        LastUpdateAssociationDate=now,
        Status={"Date": now, "Name": "Pending", "Message": "Associated with no instance yet"},
        Overview={"Status": "Pending", "AssociationStatusAggregatedCount": {}},
    )
    association.setdefault("DocumentVersion", "$DEFAULT")
    _store(self)[association_id] = association
    tags = {tag["Key"]: tag["Value"] for tag in self._get_param("Tags") or []}
    self.ssm_backend._resource_tags["Association"][association_id] = tags
    return ActionResult({"AssociationDescription": association})


def _describe_association(self: SimpleSystemManagerResponse) -> ActionResult:
    return ActionResult({"AssociationDescription": _find(self)})


def _update_association(self: SimpleSystemManagerResponse) -> ActionResult:
    association = _find(self)
    for key in _ASSOCIATION_FIELDS:
        value = self._get_param(key)
        if value is not None:
            association[key] = value
    association["AssociationVersion"] = str(int(association["AssociationVersion"]) + 1)
    association["LastUpdateAssociationDate"] = datetime.now(UTC)
    return ActionResult({"AssociationDescription": association})


def _delete_association(self: SimpleSystemManagerResponse) -> EmptyResult:
    association = _find(self)
    del _store(self)[association["AssociationId"]]
    self.ssm_backend._resource_tags["Association"].pop(association["AssociationId"], None)
    return EmptyResult()


def _list_associations(self: SimpleSystemManagerResponse) -> ActionResult:
    listed = [
        {
            k: a[k]
            for k in (
                "Name",
                "AssociationId",
                "AssociationVersion",
                "AssociationName",
                "Targets",
                "DocumentVersion",
            )
            if k in a
        }
        for a in _store(self).values()
    ]
    return ActionResult({"Associations": listed})


for _action, _handler in {
    "create_association": _create_association,
    "describe_association": _describe_association,
    "update_association": _update_association,
    "delete_association": _delete_association,
    "list_associations": _list_associations,
}.items():
    setattr(SimpleSystemManagerResponse, _action, _handler)

_original_validate = ssm_models.SimpleSystemManagerBackend._validate_resource_type_and_id


def _validate_with_associations(self: Any, resource_type: str, resource_id: str) -> str:
    """Tags of an association (ListTagsForResource/AddTagsToResource, ResourceType=Association)."""
    if resource_type == "Association":
        if resource_id not in self._resource_tags["Association"]:
            raise AssociationDoesNotExist()
        return resource_id
    result: str = _original_validate(self, resource_type, resource_id)
    return result


ssm_models.SimpleSystemManagerBackend._validate_resource_type_and_id = _validate_with_associations  # type: ignore[method-assign]


def _exit_with_parent() -> None:
    """End the server when tf-apply.sh is gone (killed before its cleanup could stop us)."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(2)
    os._exit(0)


if __name__ == "__main__":
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
