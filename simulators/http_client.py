"""An HTTP trigger client: fires triggers at a stream at a steady rate and prints the results.

python -m simulators.http_client --url http://127.0.0.1:8000 --stream conveyor --rate 2
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from simulators.camera import PartSensor, await_part


async def trigger_loop(
    base_url: str,
    stream: str,
    *,
    rate_hz: float,
    count: int | None = None,
    duration_s: float | None = None,
    api_key: str | None = None,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
    part_sensor: PartSensor | None = None,
) -> Counter[str]:
    """Trigger `count` times or for `duration_s` (at least one bound is required). With
    `part_sensor`, each trigger waits (up to 2 s) for a part in position."""
    if count is None and duration_s is None:
        raise ValueError("give count or duration_s: the loop must be bounded")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    tally: Counter[str] = Counter()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10.0) as client:
        sent = 0
        while (count is None or sent < count) and (deadline is None or time.monotonic() < deadline):
            started = time.monotonic()
            await await_part(part_sensor)
            response = await client.post(f"/streams/{stream}/trigger", json={})
            body = response.json()
            sent += 1
            error = body.get("error")
            tally[error["name"] if error else ("pass" if body.get("pass") else "fail")] += 1
            if on_result is not None:
                on_result(response.status_code, body)
            await asyncio.sleep(max(0.0, 1.0 / rate_hz - (time.monotonic() - started)))
    return tally


def format_result(label: str, body: dict[str, Any]) -> str:
    """One line per result, e.g. `HTTP 200  #12  frame 340  PASS  class=good ...`."""
    if body.get("error"):
        return f"{label}  {body['error']['name']}: {body['error']['message']}"
    outputs = body.get("outputs", {})
    verdict = "PASS" if body.get("pass") else "FAIL"
    shown = ", ".join(
        f"{k}={v}" for k, v in outputs.items() if k != "pass" and not isinstance(v, dict | list)
    )  # scalars: an image output is a base64 object
    return (
        f"{label}  #{body['result_id']:<5} frame {body['frame_id']:<6} {verdict}  {shown}  "
        f"({body['timings']['total_ms']:.1f} ms, frame age {body['frame_age_ms']:.1f} ms)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.http_client", description="Trigger a stream over HTTP."
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="gateway base URL")
    parser.add_argument("--stream", default="conveyor")
    parser.add_argument("--rate", type=float, default=1.0, help="triggers per second")
    parser.add_argument("--count", type=int, default=10, help="number of triggers")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    tally = asyncio.run(
        trigger_loop(
            args.url,
            args.stream,
            rate_hz=args.rate,
            count=args.count,
            api_key=args.api_key,
            on_result=lambda status, body: print(format_result(f"HTTP {status}", body)),
        )
    )
    print(dict(tally))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
