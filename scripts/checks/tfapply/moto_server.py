"""moto's server mode for scripts/checks/tf-apply.sh, with one gap of moto closed first.

moto 5 gives every RDS DB instance the same DbiResourceId ("db-M5ENSHXFPU6XHZ4G4ZEI5QIO2U").
The AWS provider tracks an instance by that id, so with dev and prod in one account the second
environment's apply waits on the first environment's instance and fails ("couldn't find
resource"). AWS gives each instance its own id; so does this launcher, and nothing else changes.

Usage: python moto_server.py PORT  (binds 127.0.0.1 only).
"""

from __future__ import annotations

import secrets
import string
import sys
from typing import Any

from moto.rds import models as rds_models
from moto.server import main

_ID_ALPHABET = string.ascii_uppercase + string.digits
_original_init = rds_models.DBInstance.__init__


def _init_with_unique_resource_id(self: Any, *args: Any, **kwargs: Any) -> None:
    """Build the instance as moto does, then give it a resource id of its own, shaped like AWS's."""
    _original_init(self, *args, **kwargs)
    self.dbi_resource_id = "db-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


rds_models.DBInstance.__init__ = _init_with_unique_resource_id  # type: ignore[method-assign]

if __name__ == "__main__":
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
