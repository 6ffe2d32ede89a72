"""What the gateway asks of every protocol adapter.

Every adapter is built as `Adapter(section_config, core)` (`gateway.core.Core`: the dispatcher
in, the result bus out) and only translates: its transport and its protocol's encoding over the
wire vocabulary of `gateway.wire`. It reads streams through snapshots, never their internals.
"""

from __future__ import annotations

from typing import Any, Protocol


class Adapter(Protocol):
    """Turns one protocol's input into `Trigger`s and results back into that protocol."""

    name: str

    async def start(self) -> None:
        """Begin serving; return once the adapter accepts triggers."""

    async def stop(self) -> None:
        """Stop serving and release sockets; pending results are still answered."""

    def status(self) -> dict[str, Any]:
        """Connection and counters, JSON-ready (logged at start, shown by tools)."""
