"""What the simulators that run as processes share: `with Simulator() as sim:` starts and
stops it."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class SimulatorProcess:
    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
