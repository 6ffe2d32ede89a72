"""`gateway demo`: the demo line from the command line, with a private Mosquitto when installed.

Registered on the `gateway` command through the `gateway.commands` entry point (pyproject.toml),
so that the gateway's own CLI never imports the simulators.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import click

from gateway.cli import build_or_exit, load_or_exit, run_until_signalled
from gateway.config import GatewayConfig
from gateway.logs import configure_logging
from simulators.broker import Mosquitto
from simulators.demo import run_demo


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
        broker = _start_demo_broker(Path(workdir))
        if broker is not None:
            mqtt = config.mqtt.model_copy(update={"enabled": True, "port": broker.port})
            config = config.model_copy(update={"mqtt": mqtt})
        try:
            code = run_until_signalled(
                lambda stop: _demo(config, config_dir, stop, rate, duration, headless)
            )
        finally:
            if broker is not None:
                broker.stop()
    sys.exit(code)


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
        )
    return 0
