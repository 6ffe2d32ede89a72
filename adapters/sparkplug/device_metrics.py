"""What a stream looks like as a Sparkplug Device: its metric names, types and values.

State metrics come from the stream's snapshot (sent in DBIRTH and, when they change, DDATA);
result metrics from each result (DDATA on every result); `Trigger`, `Part Id` and `Parameters`
are what a host writes by DCMD. Names are README "Fleet and SCADA" > "Sparkplug B".
"""

from __future__ import annotations

from typing import Any, Final

from adapters.sparkplug.payload import BY_NAME, DataType, Metric
from gateway.config.sparkplug import SparkplugOutput
from gateway.model import InspectionResult
from gateway.snapshot import StreamSnapshot

TRIGGER: Final = "Trigger"
PART_ID: Final = "Part Id"
PARAMETERS: Final = "Parameters"
REBIRTH: Final = "Node Control/Rebirth"

COMMANDS: Final = (
    Metric(TRIGGER, DataType.BOOLEAN, False),
    Metric(PART_ID, DataType.UINT32, None),
    Metric(PARAMETERS, DataType.STRING, None),
)
COMMAND_TYPES: Final = {
    **{metric.name: metric.datatype for metric in COMMANDS},
    REBIRTH: DataType.BOOLEAN,
}
"""What a host may write, by name: the types its NCMD and DCMD leave out."""


def state_metrics(snapshot: StreamSnapshot) -> list[Metric]:
    camera = snapshot.camera
    metrics = [
        Metric("State", DataType.STRING, snapshot.activity),
        Metric("Mode", DataType.STRING, snapshot.mode),
        Metric("Workflow", DataType.STRING, snapshot.workflow),
        Metric("Camera/Connected", DataType.BOOLEAN, camera.connected),
        Metric("Camera/FPS", DataType.DOUBLE, float(round(camera.fps))),  # not every jitter
        Metric("Camera/Reconnects", DataType.UINT64, camera.reconnects),
        Metric("Camera/Damaged Frames", DataType.UINT64, camera.damaged_frames),
        Metric("Camera/Last Error", DataType.STRING, camera.last_error),
    ]
    metrics += [
        Metric(f"Counters/{name.replace('_', ' ').title()}", DataType.UINT64, value)
        for name, value in sorted(snapshot.counters.items())
    ]
    return metrics


def result_metrics(result: InspectionResult | None, outputs: list[SparkplugOutput]) -> list[Metric]:
    """The last result's metrics (all null before the first, for DBIRTH)."""

    def value(get: Any) -> Any:
        return None if result is None else get(result)

    metrics = [
        Metric("Result/Pass", DataType.BOOLEAN, value(lambda r: r.passed)),
        Metric("Result/Code", DataType.INT32, value(lambda r: r.result_code)),
        Metric("Result/Error Code", DataType.INT32, value(lambda r: int(r.error_code))),
        Metric("Result/Error", DataType.STRING, value(lambda r: r.error and r.error.message)),
        Metric("Result/Id", DataType.UINT64, value(lambda r: r.result_id)),
        Metric("Result/Trigger Id", DataType.STRING, value(lambda r: r.trigger_id)),
        Metric("Result/Source", DataType.STRING, value(lambda r: str(r.origin))),
        Metric("Result/Part Id", DataType.UINT64, value(lambda r: r.part_id)),
        Metric("Result/Processing ms", DataType.DOUBLE, value(lambda r: r.timings.total_ms)),
    ]
    for output in outputs:
        datatype = BY_NAME[output.type]
        raw = None if result is None else result.output(output.output)
        metrics.append(Metric(output.metric_name, datatype, _typed(raw, datatype)))
    return metrics


def _typed(raw: Any, datatype: DataType) -> Any:
    """An output as the metric's type; None (sent as null) when it does not convert."""
    if raw is None or isinstance(raw, dict | list):
        return None
    try:
        if datatype is DataType.BOOLEAN:
            return bool(raw)
        if datatype is DataType.STRING:
            return str(raw)
        if datatype in (DataType.FLOAT, DataType.DOUBLE):
            return float(raw)
        number = int(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    low, high = _RANGES[datatype]
    return number if low <= number <= high else None


_RANGES: Final = {
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
