"""The `gateway` command: run the gateway, check a config, run the demo."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import entry_points
from pathlib import Path

import click
import structlog
import uvloop

from gateway.app import Gateway, GatewayBuildError
from gateway.cli_camera import camera
from gateway.cli_workflow import workflow
from gateway.config import (
    ConfigError,
    GatewayConfig,
    default_config_path,
    load_config,
)
from gateway.logs import configure_logging
from gateway.model import StartError

log = structlog.get_logger(__name__)


def _load(config_path: Path | None) -> tuple[GatewayConfig, Path]:
    path = config_path or default_config_path()
    return load_config(path), path.resolve().parent


@contextlib.asynccontextmanager
async def _stopping(gateway: Gateway) -> AsyncIterator[Gateway]:
    """A started gateway, stopped on the way out (saying so: stopping takes a moment)."""
    try:
        yield gateway
    finally:
        click.echo("stopping…", err=True)
        await gateway.stop()


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
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
    config, config_dir = load_or_exit(config_path)
    if port is not None:
        config = config.model_copy(update={"http": config.http.model_copy(update={"port": port})})
    configure_logging(config.logging.level, log_format or config.logging.format)

    async def main(stop: asyncio.Event) -> int:
        gateway = build_or_exit(config, config_dir)
        try:
            await gateway.start()
        except StartError as exc:
            click.echo(f"error: {exc}", err=True)
            return 2
        async with _stopping(gateway):
            if gateway.http is not None:
                click.echo(
                    f"gateway {config.gateway_id!r} serving http://{config.http.host}:"
                    f"{gateway.http.port}  (streams: {', '.join(gateway.streams)}; Ctrl-C stops)",
                    err=True,
                )
            await stop.wait()
            log.info("shutting down")
        return 0

    sys.exit(run_until_signalled(main))


@cli.command("check-config")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
def check_config(config_file: Path) -> None:
    """Validate CONFIG_FILE: schema, workflows and models, without starting anything.

    Problems are printed as `file:line key.path: message`; the exit code is 1 if any.
    """
    config, config_dir = load_or_exit(config_file)
    build_or_exit(config, config_dir)
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


def load_or_exit(config_path: Path | None) -> tuple[GatewayConfig, Path]:
    try:
        return _load(config_path)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        sys.exit(1)


def build_or_exit(config: GatewayConfig, config_dir: Path) -> Gateway:
    try:
        return Gateway(config, config_dir=config_dir)
    except GatewayBuildError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


cli.add_command(workflow)
cli.add_command(camera)


def _add_plugin_commands() -> None:
    """Commands other packages add through the `gateway.commands` entry point (the demo
    line in simulators/ adds `gateway demo`), so the core never imports them."""
    for entry in entry_points(group="gateway.commands"):
        cli.add_command(entry.load(), entry.name)


def main() -> None:
    _add_plugin_commands()
    cli(prog_name="gateway")
