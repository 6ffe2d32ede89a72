"""The `gateway` command: run the gateway, check a config, run the demo."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import click
import structlog
import uvloop

from gateway.app import Gateway, GatewayBuildError
from gateway.cli_workflow import workflow
from gateway.config import (
    ConfigError,
    GatewayConfig,
    default_config_path,
    load_config,
)
from gateway.logs import configure_logging
from simulators.broker import Mosquitto

log = structlog.get_logger(__name__)


def _load(config_path: Path | None) -> tuple[GatewayConfig, Path]:
    path = config_path or default_config_path()
    return load_config(path), path.resolve().parent


def _run_until_signalled(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run `main(stop)` on uvloop; SIGINT/SIGTERM set `stop` for a clean shutdown."""

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as asyncio_runner:
        return asyncio_runner.run(runner())


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="inspection-gateway")
def cli() -> None:
    """Industrial inspection gateway.

    A trigger (PLC coil, OPC UA write, MQTT message, HTTP call) takes the right camera frame at
    once, runs the stream's vision workflow on it and answers on the protocol it came from.

    \b
    Start here:
      gateway run                      the gateway on the embedded demo config
      gateway run -c plant.yaml        your config (see config.example.yaml)
      gateway check-config plant.yaml  validate a config without starting
    """


config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML config file. Default: the embedded demo config (one synthetic camera).",
)


@cli.command()
@config_option
@click.option("--port", type=int, default=None, help="Override http.port (0 = any free port).")
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default=None,
    help="Override logging.format.",
)
def run(config_path: Path | None, port: int | None, log_format: str | None) -> None:
    """Run the gateway until Ctrl-C or SIGTERM.

    \b
    Then, for example:
      curl -X POST http://127.0.0.1:8000/streams/conveyor/trigger
      open http://127.0.0.1:8000/docs for every route
    """
    config, config_dir = _load_or_exit(config_path)
    if port is not None:
        config = config.model_copy(update={"http": config.http.model_copy(update={"port": port})})
    configure_logging(config.logging.level, log_format or config.logging.format)

    async def main(stop: asyncio.Event) -> int:
        gateway = _build_or_exit(config, config_dir)
        async with gateway:
            if gateway.http is not None:
                click.echo(
                    f"gateway {config.gateway_id!r} serving http://{config.http.host}:"
                    f"{gateway.http.port}  (streams: {', '.join(gateway.streams)}; Ctrl-C stops)",
                    err=True,
                )
            await stop.wait()
            log.info("shutting down")
        return 0

    sys.exit(_run_until_signalled(main))


@cli.command("check-config")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
def check_config(config_file: Path) -> None:
    """Validate CONFIG_FILE: schema, workflows and models, without starting anything.

    Problems are printed as `file:line key.path: message`; the exit code is 1 if any.
    """
    config, config_dir = _load_or_exit(config_file)
    _build_or_exit(config, config_dir)
    click.echo(
        f"{config_file}: OK ({len(config.streams)} stream(s), {len(config.workflows)} workflow(s))"
    )


@cli.command("hash-password")
@click.password_option(help="The password (prompted twice when not given).")
def hash_password_command(password: str) -> None:
    """Print a scrypt hash for `opcua.security.users[].password_hash`, so that no plain
    password is kept in the config."""
    from adapters.opcua.security import hash_password

    click.echo(hash_password(password))


@cli.command()
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
def demo(
    duration: float | None,
    rate: float,
    port: int,
    modbus_port: int,
    opcua_port: int,
    headless: bool,
) -> None:
    """The whole gateway on simulators: a synthetic conveyor of parts with QR serials (some
    scratched, missing a hole or of the wrong colour), the demo workflow, a PLC triggering over
    Modbus as each part arrives, and OPC UA, HTTP and (when Mosquitto is installed, on a private
    broker) MQTT clients triggering too. Open the printed URL for the dashboard."""
    os.environ.setdefault("GATEWAY_HTTP_PORT", str(port))
    os.environ.setdefault("GATEWAY_MODBUS_PORT", str(modbus_port))
    os.environ.setdefault("GATEWAY_OPCUA_PORT", str(opcua_port))
    config, config_dir = _load_or_exit(None)
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as workdir:
        broker = _start_demo_broker(Path(workdir))
        if broker is not None:
            mqtt = config.mqtt.model_copy(update={"enabled": True, "port": broker.port})
            config = config.model_copy(update={"mqtt": mqtt})
        try:
            code = _run_until_signalled(
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
    from simulators.demo import run_demo

    gateway = _build_or_exit(config, config_dir)
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


def _load_or_exit(config_path: Path | None) -> tuple[GatewayConfig, Path]:
    try:
        return _load(config_path)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        sys.exit(1)


def _build_or_exit(config: GatewayConfig, config_dir: Path) -> Gateway:
    try:
        return Gateway(config, config_dir=config_dir)
    except GatewayBuildError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


cli.add_command(workflow)


def main() -> None:
    cli(prog_name="gateway")
