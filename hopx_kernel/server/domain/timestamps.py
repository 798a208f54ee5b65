"""Timestamps as the agent and control plane write them (``start_time``, frames'
``timestamp``, error bodies). Pure but for :func:`now_rfc3339`.

Example:
    >>> rfc3339(0)
    '1970-01-01T00:00:00.000000Z'
"""

from __future__ import annotations

import time
from datetime import datetime, timezone


def rfc3339(epoch: float) -> str:
    """An RFC 3339 UTC timestamp with ``Z`` and exactly 6 fractional digits."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_rfc3339() -> str:
    """The current time as :func:`rfc3339`."""
    return rfc3339(time.time())
