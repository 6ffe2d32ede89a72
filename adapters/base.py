"""What the gateway asks of every protocol adapter."""

from __future__ import annotations

from typing import Protocol


class Adapter(Protocol):
    """Turns one protocol's input into `Trigger`s and results back into that protocol."""

    name: str

    async def start(self) -> None:
        """Begin serving; return once the adapter accepts triggers."""

    async def stop(self) -> None:
        """Stop serving and release sockets; pending results are still answered."""
