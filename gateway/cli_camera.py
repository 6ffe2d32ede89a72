"""`gateway camera probe SOURCE`: what a camera delivers, before it goes into a config.

Opens the source the way a stream would (a URL through PyAV with its timeouts, a USB index or a
video file through OpenCV), reads frames for a few seconds, and prints the size, the frame rate
measured on arrival, the codec, how long the first frame took and how regular the frames came;
`--snapshot` saves the last frame.
"""

from __future__ import annotations

import itertools
import math
import statistics
import sys
import time
from pathlib import Path

import click
import cv2

from gateway.config import UrlSourceConfig
from gateway.frame_source import FrameSource, Image, SourceEnded, SourceError, decoded
from gateway.pipeline import source_config
from gateway.sources import PyAVSource, build_source


def _open(reference: str, timeout_s: float) -> FrameSource:
    config = source_config(int(reference) if reference.isdigit() else reference)
    if isinstance(config, UrlSourceConfig):
        return PyAVSource(reference, open_timeout_s=timeout_s, read_timeout_s=timeout_s)
    return build_source("probe", config)


def timecode_ms(image: Image) -> int:
    """The generation time a time-coded test source paints into its frames: 48 black/white
    blocks across the top (ms since the epoch, most significant bit first)."""
    bits = 48
    gray = image.mean(axis=2) if image.ndim == 3 else image
    row = gray[gray.shape[0] // 8]
    block = gray.shape[1] // bits
    value = 0
    for bit in range(bits):
        middle = row[bit * block + block // 4 : (bit + 1) * block - block // 4]
        value = (value << 1) | int(middle.mean() > 128)
    return value


def measure_latency_ms(
    source: FrameSource, frames: int = 150, skip: int = 45
) -> tuple[list[float], list[float]]:
    """On a time-coded source, per frame: generation → decoded, and (where the camera sends
    RTCP sender reports) the frame's sender-clock time minus its generation time. The first `skip`
    are left out: frames queued before the connection arrive in a burst."""
    delays, sender_errors = [], []
    for index in range(frames):
        image = source.read()
        if image is None:
            break
        if index >= skip:
            generated = timecode_ms(decoded(image))
            delays.append(time.time() * 1000 - generated)
            sender: float | None = getattr(source, "sender_time_s", None)
            if sender is not None:
                sender_errors.append(sender * 1000 - generated)
    return delays, sender_errors


def _show_latency(delays: list[float], sender_errors: list[float]) -> None:
    """The camera's delay and the latency_ms that makes arrival-based frame times safe (a
    frame time a little early only makes `next` wait longer: rounded up), and how close the
    sender-report times are where the camera sends them."""
    low, middle, high = delays[0], delays[len(delays) // 2], delays[-1]
    click.echo(f"latency      {low:.1f} ms min, {middle:.1f} p50, {high:.1f} max "
               "(generation -> decoded)")  # fmt: skip
    click.echo(f"latency_ms   {math.ceil(low)} (for frame times from arrival or RTP timestamps)")
    if sender_errors:
        middle, early, late = (
            sender_errors[len(sender_errors) // 2],
            sender_errors[0],
            sender_errors[-1],
        )
        click.echo(f"clock        RTCP sender reports: frame time - generation {middle:.1f} ms "
                   f"p50 ({early:.1f} to {late:.1f}); frame times come from them")  # fmt: skip


def _read(source: FrameSource, seconds: float) -> tuple[list[float], Image | None]:
    """Arrival times of the frames read within `seconds`, and the last frame."""
    arrivals: list[float] = []
    image = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame = source.read()
        except SourceEnded:
            break
        if frame is None:
            break
        image = decoded(frame)
        arrivals.append(time.monotonic())
    return arrivals, image


@click.group()
def camera() -> None:
    """Cameras: see what a source delivers."""


@camera.command()
@click.argument("source")
@click.option("--seconds", type=float, default=5.0, show_default=True, help="How long to read.")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=5.0,
    show_default=True,
    help="Give up opening or reading after this long.",
)
@click.option(
    "--snapshot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save the last frame here (JPEG or PNG by the suffix).",
)
@click.option("--timecode", is_flag=True,
              help="SOURCE paints its generation time (the RTSP simulator's timecode "
                   "pattern): also measure generation -> decoded, its latency_ms.")  # fmt: skip
def probe(
    source: str, seconds: float, timeout_s: float, snapshot: Path | None, timecode: bool
) -> None:
    """Open SOURCE (rtsp://..., http://..., a USB index such as 0, or a video file) and print
    what it delivers: size, fps, codec, time to the first frame, frame interval jitter."""
    camera_source = _open(source, timeout_s)
    started = time.monotonic()
    try:
        camera_source.open()
    except SourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    opened = time.monotonic()
    try:
        arrivals, image = _read(camera_source, seconds)
        delays, sender_errors = measure_latency_ms(camera_source) if timecode else ([], [])
    finally:
        camera_source.close()
    if image is None:
        click.echo(f"error: {camera_source.description} delivered no frame", err=True)
        sys.exit(1)
    intervals = [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)]
    span = arrivals[-1] - arrivals[0]
    click.echo(f"source       {camera_source.description}")
    click.echo(f"size         {image.shape[1]}x{image.shape[0]}")
    click.echo(f"frames       {len(arrivals)} in {span:.2f} s")
    if intervals:
        median = statistics.median(intervals)
        rate = (len(arrivals) - 1) / span if span > 0 else 0.0
        # the median interval, not the count: frames buffered before the open arrive in a burst
        click.echo(f"fps          {1000 / median:.2f} (median interval; {rate:.1f} arrived/s)")
        jitter = statistics.pstdev(intervals)
        click.echo(f"interval     {median:.1f} ms median, {jitter:.1f} ms sd")
    codec = getattr(camera_source, "codec", None)
    if codec:
        click.echo(f"codec        {codec}")
    click.echo(f"open         {(opened - started) * 1000:.0f} ms")
    click.echo(f"first frame  {(arrivals[0] - opened) * 1000:.0f} ms after open")
    if delays:
        _show_latency(sorted(delays), sorted(sender_errors))
    if snapshot is not None:
        if not cv2.imwrite(str(snapshot), image):
            click.echo(f"error: cannot write {snapshot}", err=True)
            sys.exit(1)
        click.echo(f"snapshot     {snapshot}")
