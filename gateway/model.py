"""The domain model: a trigger in, exactly one inspection result out, one set of error codes.

Adapters translate their protocol into a `Trigger` and an `InspectionResult` back into their
protocol; nothing else crosses the boundary (how a result is written as JSON is `gateway.wire`).
The error codes are the same number on every protocol, so a PLC register, an OPC UA node, an
MQTT payload and an HTTP body all say "3" for a stale frame (README, "Error codes").
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any


class ErrorCode(IntEnum):
    """Result error codes, identical on every protocol."""

    OK = 0
    NO_FRAME = 1
    STREAM_NOT_RUNNING = 2
    FRAME_STALE = 3
    BUSY = 4
    TIMEOUT = 5
    WORKFLOW_ERROR = 6
    BAD_REQUEST = 7
    UNKNOWN_STREAM = 8
    CAMERA_DISCONNECTED = 9


class Origin(StrEnum):
    """The protocol a trigger arrived on; its result goes back the same way (the `source`
    field of a result on the wire, and the `source` filter of the history)."""

    HTTP = "http"
    MQTT = "mqtt"
    MODBUS = "modbus"
    OPCUA = "opcua"
    SPARKPLUG = "sparkplug"
    PYTHON = "python"
    CONTINUOUS = "continuous"
    """A stream in continuous mode, running on every new frame up to max_fps."""


@dataclass(frozen=True, slots=True)
class InspectionError:
    code: ErrorCode
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": int(self.code), "name": self.code.name, "message": self.message}


class StartError(Exception):
    """A part of the gateway could not start (a port in use, say); the message is one line
    saying what is wrong and what to change, for the command line to print as it is."""


class GatewayError(Exception):
    """An error that becomes an error result with a shared code (never a crash)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = InspectionError(code, message)


@dataclass(frozen=True, slots=True)
class Trigger:
    """One request to inspect, whatever protocol it came from.

    `received_mono` orders the trigger against frame capture times (monotonic clock, immune to
    wall-clock steps); `received_at` is the wall-clock time reported to users.
    """

    stream: str
    origin: Origin
    trigger_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parameters: dict[str, Any] = field(default_factory=dict)
    received_at: float = field(default_factory=time.time)
    received_mono: float = field(default_factory=time.monotonic)
    part_id: int | None = None
    expires_mono: float | None = None
    """A caller's deadline (e.g. MQTT Message Expiry); the stream's own timeout still applies."""


@dataclass(frozen=True, slots=True)
class Timings:
    """Where the time went, in milliseconds."""

    queue_ms: float = 0.0
    capture_ms: float = 0.0
    steps_ms: dict[str, float] = field(default_factory=dict)
    total_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue_ms": round(self.queue_ms, 3),
            "capture_ms": round(self.capture_ms, 3),
            "steps_ms": {name: round(ms, 3) for name, ms in self.steps_ms.items()},
            "total_ms": round(self.total_ms, 3),
        }


def iso_utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class InspectionResult:
    """Exactly one per accepted trigger, error results included.

    `frame_age_ms` is trigger time minus capture time: positive for a frame captured before the
    trigger (policy `latest`), negative for one captured after it (policy `next`).
    """

    stream: str
    trigger_id: str
    result_id: int
    origin: Origin
    received_at: float
    frame_timestamp: float | None = None
    frame_id: int | None = None
    frame_age_ms: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    passed: bool | None = None
    timings: Timings = field(default_factory=Timings)
    error: InspectionError | None = None
    part_id: int | None = None
    image: Any = field(default=None, repr=False, compare=False)
    """The frame the workflow saw (a BGR array; not serialised), for the result history. Only
    the result bus carries it; whatever keeps results (futures, buffers) keeps them without."""
    output_jpegs: Mapping[str, bytes] = field(default_factory=dict, repr=False, compare=False)
    """Image outputs by path (`drawn`, `crops.1`) as JPEG, encoded once on the inference
    thread; every body that carries or links an image uses these bytes."""
    encoded: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)
    """The serialised bodies, one per image transport, made once and shared by every sink and
    reply (`gateway.wire.encode_result`). A copy with another result_id starts empty."""

    def without_frame(self) -> InspectionResult:
        return self if self.image is None else dataclasses.replace(self, image=None)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_code(self) -> ErrorCode:
        return ErrorCode.OK if self.error is None else self.error.code

    @property
    def result_code(self) -> int:
        """The fieldbus verdict (Modbus RESULT_CODE, OPC UA ResultCode): 1 pass, 2 fail, 0 done
        without a verdict, minus the error code on error."""
        if self.error is not None:
            return -int(self.error.code)
        if self.passed is None:
            return 0
        return 1 if self.passed else 2

    def output(self, path: str) -> Any:
        """An output by dotted path into nested objects and lists (`a.b.0.c`); None if absent."""
        node: Any = self.outputs
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node


def error_result(
    trigger: Trigger, code: ErrorCode, message: str, result_id: int = 0
) -> InspectionResult:
    """The result for a trigger that could not be inspected."""
    return InspectionResult(
        stream=trigger.stream,
        trigger_id=trigger.trigger_id,
        result_id=result_id,
        origin=trigger.origin,
        received_at=trigger.received_at,
        error=InspectionError(code, message),
        part_id=trigger.part_id,
        timings=Timings(total_ms=(time.monotonic() - trigger.received_mono) * 1000.0),
    )
