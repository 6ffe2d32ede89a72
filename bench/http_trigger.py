"""HTTP trigger latency and throughput, beside the bare floor measured in the same run.

The gateway runs in a child process (uvloop + httptools, one synthetic camera, a trivial
one-step workflow) with an extra FastAPI echo route on the same server: the floor is that echo
route, hit by the same client over the same keep-alive connection, interleaved with triggers.

    python -m bench.http_trigger [--requests 2000] [--clients 8] [--seconds 10]

Writes bench/results/http_trigger.json and .md and prints the table. Run by hand, not in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from bench.report import TRIVIAL_WORKFLOW, summary, write_report


def serve(history: bool = True) -> None:
    """Child process: the gateway plus an echo route, until stdin closes."""
    import uvloop
    from fastapi import Request
    from fastapi.responses import Response

    from gateway.app import Gateway
    from gateway.config import GatewayConfig
    from gateway.logs import configure_logging

    configure_logging("warning")
    config = GatewayConfig.model_validate(
        {
            "http": {"host": "127.0.0.1", "port": 0},
            "history": {"enabled": history},
            "workflows": {"trivial": {"specification": TRIVIAL_WORKFLOW}},
            "streams": {
                "cam": {
                    "source": {"type": "synthetic", "width": 640, "height": 480, "fps": 30},
                    "workflow": "trivial",
                    "queue_size": 64,
                }
            },
        }
    )

    async def main() -> None:
        gateway = Gateway(config)
        assert gateway.http is not None

        async def echo(request: Request) -> Response:
            return Response(await request.body(), media_type="application/json")

        gateway.http.app.add_api_route("/bench/echo", echo, methods=["POST"])
        async with gateway:
            print(f"PORT {gateway.http.port}", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def latency(port: int, requests: int) -> dict[str, Any]:
    """Echo and trigger interleaved on one keep-alive connection, in milliseconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    echo_ms: list[float] = []
    trigger_ms: list[float] = []
    for _ in range(50):  # warm-up (connection, first frame)
        post(conn, "/bench/echo", b"{}")
        post(conn, "/streams/cam/trigger", b"{}")
    failures = 0
    for i in range(requests):
        start = time.perf_counter()
        post(conn, "/bench/echo", b"{}")
        echo_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        status, body = post(
            conn, "/streams/cam/trigger", json.dumps({"trigger_id": f"l{i}"}).encode()
        )
        trigger_ms.append((time.perf_counter() - start) * 1000)
        failures += status != 200 or not json.loads(body)["success"]
    conn.close()
    return {"echo": summary(echo_ms), "trigger": summary(trigger_ms), "failures": failures}


def sustained(port: int, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` keep-alive connections triggering as fast as answered, for `seconds`."""
    deadline = time.monotonic() + seconds
    sent: list[int] = [0] * clients
    outcomes: list[dict[str, int]] = [{} for _ in range(clients)]
    trigger_ids: list[list[str]] = [[] for _ in range(clients)]

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while time.monotonic() < deadline:
            trigger_id = f"c{index}-{sent[index]}"
            _, body = post(
                conn, "/streams/cam/trigger", json.dumps({"trigger_id": trigger_id}).encode()
            )
            result = json.loads(body)
            sent[index] += 1
            name = result["error"]["name"] if result["error"] else "OK"
            outcomes[index][name] = outcomes[index].get(name, 0) + 1
            trigger_ids[index].append(result["trigger_id"])
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - started
    total = sum(sent)
    answered = [tid for ids in trigger_ids for tid in ids]
    merged: dict[str, int] = {}
    for outcome in outcomes:
        for name, count in outcome.items():
            merged[name] = merged.get(name, 0) + count
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "triggers": total,
        "rate_per_s": total / elapsed,
        "outcomes": merged,
        "each_answered_once": len(answered) == total == len(set(answered)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_trigger", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--no-history",
        action="store_true",
        help="without the result history (an answer then does not wait for its commit)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(history=not args.no_history)
        return 0
    extra = ["--no-history"] if args.no_history else []
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.http_trigger", "--serve", *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "GATEWAY_DATA_DIR": tempfile.mkdtemp(prefix="gateway-bench-")},
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()
        while line and not line.startswith("PORT "):
            line = child.stdout.readline()
        port = int(line.split()[1])
        time.sleep(0.5)
        lat = latency(port, args.requests)
        load = sustained(port, args.clients, args.seconds)
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/streams/cam")
        counters = json.loads(conn.getresponse().read())["counters"]
        conn.close()
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=20)
    echo, trig = lat["echo"], lat["trigger"]
    report = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "latency": lat,
        "ratio_p50": trig["p50_ms"] / echo["p50_ms"],
        "added_p50_ms": trig["p50_ms"] - echo["p50_ms"],
        "sustained": load,
        "stream_counters": counters,
    }
    rows = [
        ("echo route (floor)", echo),
        ("trigger, trivial workflow", trig),
    ]
    lines = ["| HTTP, keep-alive, 1 client | p50 ms | p99 ms | n |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['n']} |" for name, r in rows]
    lines.append(
        f"| ratio / added | {report['ratio_p50']:.2f}x | | +{report['added_p50_ms']:.3f} ms |"
    )
    lines += [
        "",
        f"Sustained, {load['clients']} keep-alive clients for {load['seconds']} s: "
        f"{load['triggers']} triggers, {load['rate_per_s']:.0f}/s, "
        f"outcomes {load['outcomes']}, each answered exactly once: "
        f"{load['each_answered_once']}; failures in the latency run: {lat['failures']}.",
    ]
    write_report("http_trigger", report, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
