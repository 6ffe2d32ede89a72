"""Building streams: the one way a stream is made from its config, used for the config's streams
at start and for the streams clients add while the gateway runs (Roboflow's
`/inference_pipelines/initialise`).

Streams added at run time are bounded in number (`http.max_runtime_streams`) and are not kept
across a restart: after a restart a line comes back to exactly what its config says, not to
what some client asked for last week. A client that wants a stream to stay puts it in the
config.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

from gateway.bus import ResultBus
from gateway.capture import CaptureBuffer
from gateway.config import GigESourceConfig, StreamConfig, UrlSourceConfig
from gateway.dispatcher import Dispatcher
from gateway.model import ErrorCode, GatewayError
from gateway.results import ResultStore
from gateway.sources import SourceFactory
from gateway.stream import Stream
from gateway.workflow import CompiledWorkflow


class StreamBuilder:
    """Camera source, capture buffer and stream from a `StreamConfig` and its workflow."""

    def __init__(self, source_factory: SourceFactory, bus: ResultBus) -> None:
        self._source_factory = source_factory
        self._bus = bus
        self.encode_images = True
        """Whether any front end carries image outputs (else none are encoded)."""

    def build(self, stream_id: str, config: StreamConfig, workflow: CompiledWorkflow) -> Stream:
        """Raises ValueError or ParameterError for a workflow the stream cannot run."""
        source = config.source
        latency_ms = (
            source.latency_ms if isinstance(source, UrlSourceConfig | GigESourceConfig) else 0.0
        )
        capture = CaptureBuffer(
            stream_id,
            self._source_factory(stream_id, config.source),
            frames_kept=config.frames_kept,
            reconnect=config.reconnect,
            latency_s=latency_ms / 1000.0,
        )
        stream = Stream(stream_id, config, capture, workflow, self._bus.publish)
        stream.encode_images = self.encode_images
        return stream


class RuntimeStreams:
    """Streams added and removed while the gateway runs, at most `limit` at once."""

    def __init__(
        self,
        builder: StreamBuilder,
        dispatcher: Dispatcher,
        limit: int,
        history: Callable[[], ResultStore | None] = lambda: None,
    ) -> None:
        self._builder = builder
        self._dispatcher = dispatcher
        self._limit = limit
        self._history = history
        self._ids: set[str] = set()

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._ids)

    async def add(self, config: StreamConfig, workflow: CompiledWorkflow) -> str:
        """Build, register and start a stream; its id is new (a UUID, as Roboflow's)."""
        if len(self._ids) >= self._limit:
            raise GatewayError(
                ErrorCode.BUSY,
                f"{len(self._ids)} streams added at run time already (http.max_runtime_streams:"
                f" {self._limit}); terminate one first",
            )
        stream_id = str(uuid.uuid4())
        try:
            stream = self._builder.build(stream_id, config, workflow)
        except ValueError as exc:
            raise GatewayError(ErrorCode.BAD_REQUEST, str(exc)) from None
        history = self._history()
        if history is not None:
            stream.number_results_with(functools.partial(history.ids.next_id, stream_id))
        self._dispatcher.add(stream)
        self._ids.add(stream_id)
        await stream.start()
        return stream_id

    async def remove(self, stream_id: str) -> bool:
        """Stop and forget a stream added at run time; False for a stream of the config."""
        if stream_id not in self._ids:
            return False
        self._ids.discard(stream_id)
        await self._dispatcher.remove(stream_id)
        return True

    async def stop_all(self) -> None:
        for stream_id in list(self._ids):
            await self.remove(stream_id)
