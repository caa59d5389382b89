"""What the sandbox's HTTP server and its clients agree on, beyond HTTP itself."""

from __future__ import annotations

# Time travel (issue 7): a client asks for answers as of another time with this header; the service
# honours it only when the sandbox's time_travel mode is on. Its value is an instant with a zone
# (``qtsp.core.instants.parse_instant``).
TIME_HEADER = "X-QTSP-Time"
