"""What every adapter is built from: the gateway's id, the dispatcher (the way in) and the result
bus (the way out), plus the services some front ends show (workflows, history, figures).

Every adapter's constructor is `Adapter(section_config, core)`; the composition root
(`gateway.app`) makes one `Core` and hands it to each.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.bus import ResultBus
from gateway.dispatcher import Dispatcher
from gateway.latency import LatencyWindow
from gateway.metrics import GatewayMetrics
from gateway.results import ResultStore
from gateway.runtime_streams import RuntimeStreams
from gateway.workflow_library import WorkflowLibrary


@dataclass(frozen=True, slots=True)
class Core:
    gateway_id: str
    dispatcher: Dispatcher
    bus: ResultBus
    workflows: WorkflowLibrary
    metrics: GatewayMetrics
    latency: LatencyWindow
    runtime_streams: RuntimeStreams
    """Streams clients add and remove while the gateway runs."""
    history: ResultStore | None = None
