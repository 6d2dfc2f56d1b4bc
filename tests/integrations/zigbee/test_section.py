"""Starting the Zigbee stack: zigpy's import of a library for a feature the appliance turns off
(jsonschema, for OTA firmware indexes) is deferred until something uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import json, sys
from integrations.zigbee.section import import_off_loop
import asyncio
asyncio.run(import_off_loop("integrations.zigbee_se.link"))
import zigpy.ota.providers as providers
deferred = sorted(m for m in sys.modules if m.split(".")[0] in ("jsonschema", "referencing", "rpds"))
providers.jsonschema.validate({"a": 1}, {"type": "object"})  # OTA turned on later: the real module, now
import jsonschema.validators
print(json.dumps({"deferred": deferred, "loaded": "jsonschema.validators" in sys.modules,
                  "same": sys.modules["jsonschema"].validate is providers.jsonschema.validate}))
"""


def test_the_zigbee_stack_starts_without_jsonschema_which_still_loads_when_used():
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    found = json.loads(result.stdout)
    assert found["deferred"] == ["jsonschema"]  # the stand-in only: none of its code ran
    assert found["loaded"] and found["same"]
