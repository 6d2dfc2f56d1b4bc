"""``python -m ems``: the ``ems`` command (ems.cli), for a checkout run without its console script."""

from __future__ import annotations

import sys

from ems.cli import main

sys.exit(main())
