"""Secrets never leave the gateway: passwords in camera URLs (`rtsp://admin:pw@cam/...`) are
masked wherever text can surface (logs, API answers, MQTT, OPC UA, the history)."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any, Final

_USERINFO: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/@:]*)(:[^\s/]*)?@(?=[^\s@/]*(/|\s|$))"
)
"""scheme://user[:password]@host: the password may hold a raw `@` (up to the host's)."""
MASK: Final = "***"


def redact(text: str) -> str:
    """`rtsp://admin:secret@10.0.0.5/stream` -> `rtsp://admin:***@10.0.0.5/stream`."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def redact_event(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: every string value of a log event, redacted."""
    for key, value in event.items():
        if isinstance(value, str) and "@" in value:
            event[key] = redact(value)
    return event
