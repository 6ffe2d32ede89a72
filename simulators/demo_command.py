"""`gateway demo`: the demo line from the command line, with a private Mosquitto when installed.

Registered on the `gateway` command through the `gateway.commands` entry point (pyproject.toml),
so that the gateway's own CLI never imports the simulators.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path

import click

from gateway.cli import build_or_exit, load_or_exit, run_until_signalled
from gateway.config import GatewayConfig, StreamConfig
from gateway.logs import configure_logging
from simulators.broker import Mosquitto
from simulators.demo import STREAM, run_demo
from simulators.rtsp_camera import rtsp_available
from simulators.rtsp_scene import RtspSceneCamera

RTSP_LATENCY_MS = 150
"""Frames are stamped this much before they arrive until the camera's first RTCP sender report
(a second or two), then by the camera's own clock. The probe measures 36-41 ms render ->
decoded here; 150 leaves room for a loaded machine (one CI run got 1 part of 11 wrong
with 40): a frame time too early only makes `next` wait longer, the part rests ~0.9 s."""


@click.command()
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
@click.option(
    "--rate",
    type=float,
    default=2.0,
    show_default=True,
    help="Triggers per second from each simulated client.",
)
@click.option(
    "--port", type=int, default=8000, show_default=True, help="HTTP port (0 = any free port)."
)
@click.option(
    "--modbus-port",
    type=int,
    default=5020,
    show_default=True,
    help="Modbus TCP port of the gateway (0 = any free port).",
)
@click.option(
    "--opcua-port",
    type=int,
    default=4840,
    show_default=True,
    help="OPC UA port of the gateway (0 = any free port).",
)
@click.option(
    "--headless",
    is_flag=True,
    help="No live table: a line per PLC part and a JSON summary at the end (for CI).",
)
@click.option(
    "--camera",
    type=click.Choice(["synthetic", "rtsp"]),
    default="synthetic",
    show_default=True,
    help="rtsp: the conveyor served as H.264 by a local GStreamer RTSP server, read as a real "
    "camera (frame policy next, exposure-time stamps); needs `make system-packages`.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo's result history here (default: a fresh one each run, deleted after).",
)
def demo(
    duration: float | None,
    rate: float,
    port: int,
    modbus_port: int,
    opcua_port: int,
    headless: bool,
    camera: str,
    data_dir: Path | None,
) -> None:
    """The whole gateway on simulators: a synthetic conveyor of parts with QR serials (some
    scratched, missing a hole or of the wrong colour), the demo workflow, a PLC triggering over
    Modbus as each part arrives, and OPC UA, HTTP and (when Mosquitto is installed, on a private
    broker) MQTT clients triggering too. Open the printed URL for the dashboard."""
    os.environ.setdefault("GATEWAY_HTTP_PORT", str(port))
    os.environ.setdefault("GATEWAY_MODBUS_PORT", str(modbus_port))
    os.environ.setdefault("GATEWAY_OPCUA_PORT", str(opcua_port))
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as workdir:
        # the demo's results apart from a real gateway's: fresh each run unless --data-dir
        os.environ["GATEWAY_DATA_DIR"] = str(data_dir or Path(workdir) / "history")
        config, config_dir = load_or_exit(None)
        with contextlib.ExitStack() as running:
            scene_camera = _start_rtsp_camera(running) if camera == "rtsp" else None
            if scene_camera is not None:
                config = on_rtsp_camera(config, scene_camera.url)
            broker = _start_demo_broker(Path(workdir))
            if broker is not None:
                running.callback(broker.stop)
                mqtt = config.mqtt.model_copy(update={"enabled": True, "port": broker.port})
                config = config.model_copy(update={"mqtt": mqtt})
            code = run_until_signalled(
                lambda stop: _demo(config, config_dir, stop, rate, duration, headless, scene_camera)
            )
    sys.exit(code)


def _start_rtsp_camera(running: contextlib.ExitStack) -> RtspSceneCamera:
    missing = rtsp_available()
    if missing is not None:
        raise click.ClickException(f"--camera rtsp: {missing}")
    camera = RtspSceneCamera()
    camera.start()
    running.callback(camera.stop)
    click.echo(f"camera: {camera.url} (GStreamer RTSP server, H.264)")
    return camera


def on_rtsp_camera(config: GatewayConfig, url: str) -> GatewayConfig:
    """The demo's stream on an RTSP camera: `next` (the first frame exposed after the trigger,
    so the delay of a real camera never shows the part before), stamped by exposure time."""
    stream = config.streams[STREAM].model_dump()
    stream["source"] = {"type": "url", "url": url, "latency_ms": RTSP_LATENCY_MS}
    stream["frame_policy"] = {"type": "next", "timeout_ms": 1000}
    streams = {**config.streams, STREAM: StreamConfig.model_validate(stream)}
    return config.model_copy(update={"streams": streams})


def _start_demo_broker(workdir: Path) -> Mosquitto | None:
    try:
        broker = Mosquitto(workdir)
        broker.start()
    except (FileNotFoundError, RuntimeError) as exc:
        click.echo(f"MQTT disabled in the demo ({exc}); `apt-get install mosquitto` enables it")
        return None
    return broker


async def _demo(
    config: GatewayConfig,
    config_dir: Path,
    stop: asyncio.Event,
    rate: float,
    duration: float | None,
    headless: bool,
    scene_camera: RtspSceneCamera | None,
) -> int:
    gateway = build_or_exit(config, config_dir)
    async with gateway:
        assert gateway.http is not None
        url = f"http://127.0.0.1:{gateway.http.port}"
        click.echo(f"dashboard: {url}   (API docs {url}/docs, metrics {url}/metrics)")
        if gateway.history is not None:
            click.echo(
                f"results stored in {gateway.history.directory} "
                f"(browse {url}/results, export {url}/results.csv)"
            )
        await run_demo(
            gateway,
            stop=stop,
            rate=rate,
            duration_s=duration,
            mqtt_port=config.mqtt.port if config.mqtt.enabled else None,
            headless=headless,
            echo=click.echo,
            camera=scene_camera,
        )
    return 0
