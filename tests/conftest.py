"""Shared fixtures: real gateways on loopback port 0, real cameras (synthetic or OpenCV files)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import GatewayConfig, SourceConfig
from gateway.frame_source import FrameSource
from gateway.model import InspectionResult
from gateway.sources import SourceFactory, build_source
from simulators.broker import Mosquitto
from simulators.rtsp_camera import rtsp_available

ROOT = Path(__file__).resolve().parent.parent
SHARED_MODELS = (ROOT.parent / "shared" / "models").resolve()
DEMO_WORKFLOW = ROOT / "gateway" / "defaults" / "part_inspection.yaml"
LIGHT_WORKFLOW = ROOT / "tests" / "part_present.yaml"


@pytest.fixture
def shared_models() -> Path:
    if not SHARED_MODELS.is_dir():
        pytest.skip(f"real models not found at {SHARED_MODELS} (see shared/models/README.md)")
    return SHARED_MODELS


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's result history (and every gateway process it starts) in its own folder."""
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "gateway-data"))


def make_config(
    streams: dict[str, Any] | None = None,
    workflows: dict[str, Any] | None = None,
    **top: Any,
) -> GatewayConfig:
    """A config as a user would write it, HTTP on a free loopback port."""
    raw: dict[str, Any] = {
        "http": {"host": "127.0.0.1", "port": 0, **top.pop("http", {})},
        # `demo` is light, for protocol tests; `inspection` is the demo line's real workflow
        "workflows": workflows
        or {"demo": {"path": str(LIGHT_WORKFLOW)}, "inspection": {"path": str(DEMO_WORKFLOW)}},
        "streams": streams
        or {
            "cam": {
                "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 30},
                "workflow": "demo",
            }
        },
        **top,
    }
    return GatewayConfig.model_validate(raw, context={"base_dir": ROOT})


class RecordingSources:
    """Builds the real sources and remembers them, so a test can unplug a camera."""

    def __init__(self) -> None:
        self.sources: dict[str, FrameSource] = {}

    def __call__(self, stream_id: str, config: SourceConfig) -> FrameSource:
        source = build_source(stream_id, config)
        self.sources[stream_id] = source
        return source


@asynccontextmanager
async def running_gateway(
    config: GatewayConfig,
    source_factory: SourceFactory = build_source,
    *,
    api_key: str | None = None,
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient, list[InspectionResult]]]:
    """The whole gateway served by uvicorn on 127.0.0.1:<free port>, with an HTTP client and
    the list of every result the bus published."""
    gateway = Gateway(config, config_dir=ROOT, source_factory=source_factory)
    published: list[InspectionResult] = []
    gateway.bus.subscribe(published.append)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with gateway:
        assert gateway.http is not None
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{gateway.http.port}", headers=headers, timeout=10.0
        ) as client:
            yield gateway, client, published


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)


async def first_frame(gateway: Gateway, stream: str = "cam") -> None:
    await wait_until(lambda: gateway.streams[stream].capture.latest() is not None)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def gateway_in_thread(
    config: GatewayConfig,
) -> Iterator[tuple[Gateway, str, list[InspectionResult]]]:
    """The whole gateway on its own event loop in a thread, for synchronous fuzzers: the
    gateway, its HTTP base URL and the list of every result the bus published."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    found: list[tuple[Gateway, str, list[InspectionResult]]] = []

    async def serve() -> None:
        stop.append(asyncio.Event())
        gateway = Gateway(config, config_dir=ROOT)
        published: list[InspectionResult] = []
        gateway.bus.subscribe(published.append)
        async with gateway:
            assert gateway.http is not None
            await first_frame(gateway, next(iter(gateway.streams)))
            found.append((gateway, f"http://127.0.0.1:{gateway.http.port}", published))
            ready.set()
            await stop[0].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(30), "gateway did not start"
        yield found[0]
    finally:
        if stop:
            loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)
        loop.close()


def run_cli(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """The `gateway` command as a user runs it, from the project root."""
    return subprocess.run(
        [sys.executable, "-c", "from gateway.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
    )


def require(missing: str | None) -> None:
    """A real peer the test needs: skipped where it is missing, failed under CI (where `make
    test` installed it, so missing means broken)."""
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)


@pytest.fixture
def rtsp_ready() -> None:
    """GStreamer's RTSP server can run here (`make test` installs it)."""
    require(rtsp_available())
