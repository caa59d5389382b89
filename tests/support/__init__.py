"""What the tests share besides fixtures: helpers that start real parts (server, pg, bao, softhsm,
nginx, loopback, chaos, docs_runner, java/) and the helpers several test files use (api, cli, ...).

Imported as ``support.<module>`` (``tests/`` is on ``sys.path`` through pyproject's ``pythonpath``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout
SAMPLE_ORG = "PSDBE-NBB-0123456789"  # registered in the session's template sandbox (conftest) with PSP_AI,PSP_PI
