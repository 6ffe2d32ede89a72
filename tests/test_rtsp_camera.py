"""A real RTSP camera (GStreamer's RTSP server, `simulators/rtsp_server.py`) read by the gateway
through PyAV: connect and trigger on both frame policies; a stall (SIGSTOP) is noticed within
the read timeout and answered CAMERA_DISCONNECTED, never with a stale frame; the camera comes
back after SIGCONT and after a restart, serving no frame from before the outage; stopping and
starting a stream during a stall does not crash; a stalled camera does not hold up another."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from structlog.testing import capture_logs

from gateway.app import Gateway
from gateway.cli_camera import timecode_ms
from gateway.frame_source import decoded
from gateway.model import Origin, Trigger
from gateway.sources.pyav import PyAVSource
from simulators.rtsp_camera import RtspCamera
from tests.conftest import make_config, run_cli, running_gateway, wait_until
from tests.test_http_trigger import RAW_IMAGE_WORKFLOW


@pytest.fixture
def camera(rtsp_ready: None) -> Iterator[RtspCamera]:
    with RtspCamera(width=320, height=240, fps=30) as rtsp:
        yield rtsp


def rtsp_stream(url: str, **extra: Any) -> dict[str, Any]:
    source = {"type": "url", "url": url, "open_timeout_s": 3, "read_timeout_s": 2}
    reconnect = {"initial_s": 0.2, "max_s": 1.0}
    return {"source": source, "workflow": "demo", "reconnect": reconnect, **extra}


def connected(gateway: Gateway, stream: str = "cam") -> bool:
    return gateway.dispatcher.snapshot(stream).camera.connected


def delivering(gateway: Gateway, stream: str = "cam") -> bool:
    """Connected, with a frame since (connecting comes a moment before the first frame)."""
    return connected(gateway, stream) and gateway.dispatcher.latest_frame(stream) is not None


async def trigger(client: httpx.AsyncClient, stream: str = "cam") -> dict[str, Any]:
    body: dict[str, Any] = (await client.post(f"/streams/{stream}/trigger")).json()
    return body


async def test_triggers_on_both_frame_policies(camera: RtspCamera) -> None:
    streams = {
        "cam": rtsp_stream(camera.url),
        "next": rtsp_stream(camera.url, frame_policy={"type": "next", "timeout_ms": 2000}),
    }
    async with running_gateway(make_config(streams=streams)) as (gateway, client, _):
        await wait_until(lambda: delivering(gateway) and delivering(gateway, "next"), 20)
        for stream in ("cam", "next"):
            for _ in range(5):
                body = await trigger(client, stream)
                assert body["success"] is True, body
        latest = client.get("/streams/cam/latest_frame")
        assert (await latest).headers["content-type"] == "image/jpeg"
        await wait_until(lambda: gateway.dispatcher.snapshot("cam").camera.fps > 20, 10)


async def test_a_stall_is_noticed_and_never_answered_with_a_stale_frame(
    camera: RtspCamera,
) -> None:
    streams = {"cam": rtsp_stream(camera.url)}
    async with running_gateway(make_config(streams=streams)) as (gateway, client, _):
        await wait_until(lambda: delivering(gateway), 20)
        assert (await trigger(client))["success"] is True
        camera.stall()
        stalled_at = time.time()
        await wait_until(lambda: not connected(gateway), 15)  # read timeout: 2 s
        body = await trigger(client)
        assert body["success"] is False
        assert body["error"]["name"] == "CAMERA_DISCONNECTED", body
        assert "camera not connected" in body["error"]["message"]
        image = await client.get("/streams/cam/latest_frame")  # not the pre-stall image
        assert image.status_code == 503
        assert image.json()["error"]["name"] == "CAMERA_DISCONNECTED"
        camera.resume()
        await wait_until(lambda: delivering(gateway), 20)
        frame = gateway.dispatcher.latest_frame("cam")
        assert frame is not None and frame.captured_at > stalled_at  # nothing from before


async def test_a_restarted_camera_reconnects_without_serving_old_frames(
    camera: RtspCamera,
) -> None:
    streams = {"cam": rtsp_stream(camera.url)}
    with capture_logs() as logs:
        async with running_gateway(make_config(streams=streams)) as (gateway, client, _):
            await restart_and_check(camera, gateway, client)
    events = [entry["event"] for entry in logs if entry.get("stream") == "cam"]
    assert events[:3] == ["camera connected", "camera lost", "camera reconnected"], events
    lost = next(entry for entry in logs if entry["event"] == "camera lost")
    assert lost["reason"] and lost["retry_in_s"] > 0 and lost["camera"] == f"camera {camera.url}"


async def restart_and_check(
    camera: RtspCamera, gateway: Gateway, client: httpx.AsyncClient
) -> None:
    await wait_until(lambda: delivering(gateway), 20)
    before = gateway.dispatcher.latest_frame("cam")
    assert before is not None
    camera.stop()
    await wait_until(lambda: not connected(gateway), 15)
    camera.start()
    await wait_until(lambda: connected(gateway), 30)
    await wait_until(lambda: gateway.dispatcher.latest_frame("cam") is not None, 10)
    after = gateway.dispatcher.latest_frame("cam")
    assert after is not None and after.captured_at > before.captured_at
    assert gateway.dispatcher.snapshot("cam").camera.reconnects >= 1
    assert (await trigger(client))["success"] is True


async def test_terminate_and_resume_during_a_stall_do_not_crash(camera: RtspCamera) -> None:
    streams = {"cam": rtsp_stream(camera.url)}
    async with running_gateway(make_config(streams=streams)) as (gateway, client, _):
        await wait_until(lambda: delivering(gateway), 20)
        camera.stall()
        assert (await client.post("/streams/cam/terminate")).status_code == 200
        assert (await client.post("/streams/cam/resume")).status_code == 200
        camera.resume()
        await wait_until(lambda: delivering(gateway), 30)
        assert (await trigger(client))["success"] is True


async def test_a_stalled_camera_does_not_hold_up_another(camera: RtspCamera) -> None:
    """Opens are independent: one camera hanging in its open does not delay another's."""
    with RtspCamera(width=320, height=240) as stalled:
        stalled.stall()  # accepts the connection, answers nothing: its open hangs
        streams = {
            "stuck": rtsp_stream(stalled.url, source={"type": "url", "url": stalled.url,
                                                      "open_timeout_s": 30}),
            "cam": rtsp_stream(camera.url),
        }  # fmt: skip
        async with running_gateway(make_config(streams=streams)) as (gateway, _, _):
            await wait_until(lambda: delivering(gateway), 20)
            stuck = gateway.dispatcher.snapshot("stuck").camera
            assert not stuck.connected and stuck.last_error is None  # still opening


def test_camera_probe_prints_what_a_camera_delivers(camera: RtspCamera, tmp_path: Path) -> None:
    snapshot = tmp_path / "shot.jpg"
    done = run_cli("camera", "probe", camera.url, "--seconds", "2", "--snapshot", str(snapshot))
    assert done.returncode == 0, done.stderr
    shown = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert shown["size"] == "320x240" and shown["codec"] == "h264"
    assert 20 < float(shown["fps"].split()[0]) < 40  # a 30 fps camera
    image = cv2.imread(str(snapshot))
    assert image is not None and image.shape == (240, 320, 3)
    refused = run_cli("camera", "probe", "rtsp://127.0.0.1:9/none", "--timeout", "2")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: cannot open camera rtsp://127.0.0.1:9/none")


def measured_latency_ms(url: str) -> float:
    """The camera's latency as a user measures it: `gateway camera probe --timecode`."""
    done = run_cli("camera", "probe", url, "--seconds", "1", "--timecode")
    assert done.returncode == 0, done.stderr
    shown = dict(line.split(None, 1) for line in done.stdout.splitlines())
    return float(shown["latency_ms"].split()[0])


@pytest.mark.parametrize("triggers", [150])
async def test_next_never_uses_an_image_generated_before_the_trigger(
    rtsp_ready: None, triggers: int
) -> None:
    """On a camera that paints each frame's generation time into it and sends RTCP sender
    reports: with the latency_ms the probe measured, every `next` result's image was generated
    after its trigger; half the triggers come once the camera's first sender report is in, and
    each of their frame times is its true generation time to a few ms."""
    with RtspCamera(width=480, height=240, pattern="timecode") as coded:
        latency_ms = measured_latency_ms(coded.url)
        stream = rtsp_stream(coded.url, frame_policy={"type": "next", "timeout_ms": 2000})
        stream["source"]["latency_ms"] = latency_ms
        stream["workflow"] = "raw"
        config = make_config(streams={"cam": stream}, workflows={"raw": RAW_IMAGE_WORKFLOW})
        async with running_gateway(config) as (gateway, _, _):
            await wait_until(lambda: delivering(gateway), 20)
            early, apart = [], []
            for index in range(triggers):
                if index == triggers // 2:  # the first sender report comes within seconds
                    await wait_until(lambda: time_source(gateway) == "sender_report", 15)
                await asyncio.sleep((index % 7) * 0.005)  # triggers at every phase of a frame
                trigger = Trigger("cam", Origin.PYTHON)
                result = await gateway.dispatcher.inspect(trigger)
                assert result.error is None, result.error
                generated = timecode_ms(result.outputs["image"])  # whole ms: in [code, code+1)
                if generated + 1 <= trigger.received_at * 1000:
                    early.append(round(trigger.received_at * 1000 - generated, 3))
                assert result.frame_timestamp is not None
                if index >= triggers // 2:
                    apart.append(generated - result.frame_timestamp * 1000)
            assert time_source(gateway) == "sender_report"
    assert early == [], f"{len(early)} of {triggers} images generated before the trigger: {early}"
    apart.sort()
    # never late (codes are whole ms, plus µs of 90 kHz RTP ticks and NTP rounding), and close;
    # before the first report, frame times are the RTP mapping's, early by up to latency_ms
    # less the delay (the safe side for `next`), so they are not held to this
    assert apart[0] > -1.05 and apart[-1] < 10, apart


def time_source(gateway: Gateway) -> str:
    return gateway.dispatcher.snapshot("cam").camera.time_source


async def test_decode_on_trigger_gives_the_frame_the_result_names(rtsp_ready: None) -> None:
    """`decode: on_trigger` keeps packets, not images; a trigger decodes the GOP through the
    newest frame: the image the workflow saw is the one generated at the frame's time."""
    with RtspCamera(width=480, height=240, pattern="timecode", gop=15) as coded:
        stream = rtsp_stream(coded.url)
        stream["source"].update(decode="on_trigger", latency_ms=measured_latency_ms(coded.url))
        stream["workflow"] = "raw"
        config = make_config(streams={"cam": stream}, workflows={"raw": RAW_IMAGE_WORKFLOW})
        async with running_gateway(config) as (gateway, client, _):
            await wait_until(lambda: delivering(gateway), 20)
            frame = gateway.dispatcher.latest_frame("cam")
            assert frame is not None and not isinstance(frame.content, np.ndarray)  # undecoded
            apart = []
            for index in range(30):
                await asyncio.sleep((index % 5) * 0.007)
                result = await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON))
                assert result.error is None and result.frame_timestamp is not None
                generated = timecode_ms(result.outputs["image"])
                apart.append(abs(generated - result.frame_timestamp * 1000))
            assert max(apart) < 1000 / 30 / 2, apart  # within half a frame: that very frame
            assert (await client.get("/streams/cam/latest_frame")).status_code == 200


async def test_damaged_frames_are_counted_and_never_inspected(rtsp_ready: None) -> None:
    """Every keyframe loses a slice: every frame is damaged, so none may reach a workflow;
    the count shows in health and /metrics, and a trigger is refused, not answered OK."""
    with RtspCamera(width=320, height=240, gop=10, damage=1) as damaged:
        config = make_config(streams={"cam": rtsp_stream(damaged.url)})
        async with running_gateway(config) as (gateway, client, _):
            await wait_until(
                lambda: gateway.dispatcher.snapshot("cam").camera.damaged_frames > 30, 20
            )
            health = gateway.dispatcher.snapshot("cam").camera
            assert health.connected and health.frames == 0  # nothing was handed out
            body = await trigger(client)
            assert body["error"]["code"] == 1, body  # NO_FRAME: no damaged frame inspected
            metrics = (await client.get("/metrics")).text
            assert 'gateway_camera_damaged_frames_total{stream="cam"}' in metrics


async def test_clean_keyframes_end_the_damage(rtsp_ready: None) -> None:
    """Every other keyframe is damaged: its GOP is skipped, the clean GOPs between come
    through and are inspected."""
    with RtspCamera(width=320, height=240, gop=10, damage=2) as damaged:
        config = make_config(streams={"cam": rtsp_stream(damaged.url)})
        async with running_gateway(config) as (gateway, client, _):
            await wait_until(lambda: gateway.dispatcher.snapshot("cam").camera.frames > 40, 20)
            health = gateway.dispatcher.snapshot("cam").camera
            assert health.damaged_frames > 0
            assert (await trigger(client))["error"] is None


async def test_decode_on_trigger_refuses_a_damaged_gop(rtsp_ready: None) -> None:
    """`on_trigger` finds the damage when it decodes: the trigger is refused with the reason."""
    with RtspCamera(width=320, height=240, gop=10, damage=1) as damaged:
        stream = rtsp_stream(damaged.url)
        stream["source"]["decode"] = "on_trigger"
        async with running_gateway(make_config(streams={"cam": stream})) as (gateway, client, _):
            await wait_until(lambda: delivering(gateway), 20)
            body = await trigger(client)
            assert body["error"]["code"] == 1 and "damaged" in body["error"]["message"], body


def test_the_first_frame_after_connecting_is_the_cameras_newest(rtsp_ready: None) -> None:
    """No burst of frames buffered while FFmpeg probed the stream at open (they were up to a
    second old and stamped too young): the first frame read is a fresh one."""
    with RtspCamera(width=480, height=240, pattern="timecode") as coded:
        time.sleep(1.0)  # the camera has been running a while
        source = PyAVSource(coded.url)
        source.open()
        try:
            image = source.read()
            assert image is not None
            age_ms = time.time() * 1000 - timecode_ms(decoded(image))
        finally:
            source.close()
    assert age_ms < 300, f"the first frame was {age_ms:.0f} ms old"
