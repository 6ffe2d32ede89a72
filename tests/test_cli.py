"""The `gateway` command as a user runs it: a port in use is one line saying what to change."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import LIGHT_WORKFLOW, run_cli


def test_a_port_in_use_is_one_line_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "plant.yaml"
        config.write_text(
            f"http: {{host: 127.0.0.1, port: {port}}}\n"
            "history: {enabled: false}\n"
            f"workflows: {{demo: {{path: {LIGHT_WORKFLOW}}}}}\n"
            "streams: {cam: {source: {type: synthetic, width: 64, height: 64}, workflow: demo}}\n"
        )
        done = run_cli("run", "-c", str(config))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    # the one error line; the camera's lifecycle log may come first (it starts before HTTP)
    lines = [text for text in done.stderr.splitlines() if text.strip()]
    assert all("camera connected" in text for text in lines[:-1]), lines
    line = lines[-1]
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert "`gateway run --port N`" in line and "GATEWAY_HTTP_PORT" in line
