"""Config: the example validates, and every broken config names file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import Gateway, GatewayBuildError
from gateway.config import (
    ConfigError,
    LatestFramePolicy,
    NextFramePolicy,
    SyntheticSourceConfig,
    load_config,
    load_default_config,
    parse_config,
)
from tests.conftest import ROOT, run_cli

GOOD = """\
workflows:
  w:
    path: {workflow}
streams:
  cam:
    source: {{type: synthetic}}
    workflow: w
"""


def good_text() -> str:
    return GOOD.format(workflow=ROOT / "gateway" / "defaults" / "part_inspection.yaml")


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "plant.yaml", env=env or {})
    return [str(issue) for issue in caught.value.issues]


def test_example_config_validates_and_builds() -> None:
    config = load_config(ROOT / "config.example.yaml", env={})
    assert set(config.streams) == {"conveyor", "recorded", "ip_camera", "usb_cam"}
    assert isinstance(config.streams["recorded"].frame_policy, NextFramePolicy)
    assert config.http.api_key is not None and config.http.api_key.get_secret_value() == ""
    assert {sid: base for sid, (base, _) in config.modbus_streams().items()} == {
        "conveyor": 0,
        "recorded": 100,
    }
    Gateway(config, config_dir=ROOT)  # workflows compile, models load


def test_embedded_default_config_is_one_synthetic_stream() -> None:
    config = load_default_config(env={})
    assert list(config.streams) == ["conveyor"]
    stream = config.streams["conveyor"]
    assert isinstance(stream.source, SyntheticSourceConfig)
    assert isinstance(stream.frame_policy, LatestFramePolicy)
    assert config.http.port == 8000


def test_unknown_key_names_file_line_and_path() -> None:
    text = good_text().replace("    workflow: w\n", "    workflow: w\n    queue_sise: 3\n")
    assert problems(text) == ["plant.yaml:8 streams.cam.queue_sise: Extra inputs are not permitted"]


def test_wrong_type_inside_a_union_names_the_real_path() -> None:
    text = good_text().replace("{type: synthetic}", "{type: synthetic, fps: fast}")
    (message,) = problems(text)
    assert message.startswith("plant.yaml:6 streams.cam.source.fps: Input should be a valid number")


def test_unknown_source_type_is_reported() -> None:
    (message,) = problems(good_text().replace("synthetic", "genicam"))
    assert message.startswith("plant.yaml:6 streams.cam.source")
    assert "'synthetic', 'video_file', 'url', 'usb', 'gige'" in message


def test_missing_required_key_is_reported_at_its_parent() -> None:
    text = good_text().replace("    workflow: w\n", "")
    assert problems(text) == ["plant.yaml:5 streams.cam.workflow: Field required"]


def test_workflow_that_does_not_exist_is_named() -> None:
    (message,) = problems(good_text().replace("workflow: w", "workflow: nope"))
    assert "streams.cam.workflow: no workflow named 'nope' (known: w)" in message


def test_environment_substitution_and_missing_variable() -> None:
    text = good_text() + "http:\n  api_key: ${KEY}\n  port: ${PORT:-9000}\n"
    config = parse_config(text, "plant.yaml", env={"KEY": "s3cret"})
    assert config.http.api_key is not None and config.http.api_key.get_secret_value() == "s3cret"
    assert config.http.port == 9000
    assert problems(text) == ["plant.yaml:9 http.api_key: environment variable KEY is not set"]


def test_yaml_syntax_error_has_a_line() -> None:
    (message,) = problems("streams:\n  cam: [unclosed\n")
    assert message.startswith("plant.yaml:3")
    assert "YAML syntax" in message


def test_every_problem_is_listed_at_once() -> None:
    text = good_text().replace("{type: synthetic}", "{type: synthetic, fps: -1, width: 8}")
    found = problems(text)
    assert len(found) == 2
    assert any("streams.cam.source.fps: Input should be greater than 0" in p for p in found)
    assert any(
        "streams.cam.source.width: Input should be greater than or equal to 32" in p for p in found
    )


def test_bad_workflow_fails_the_build_naming_step_and_field(tmp_path: Path) -> None:
    workflow = tmp_path / "bad.yaml"
    workflow.write_text(
        "inputs: [{type: WorkflowImage, name: image}]\n"
        "steps:\n"
        "  - {type: onnx_classification, name: cls, image: $inputs.image, model: missing.onnx}\n"
        "outputs: [{type: JsonField, name: top, selector: $steps.cls.top}]\n"
    )
    config_file = tmp_path / "plant.yaml"
    config_file.write_text(GOOD.format(workflow="bad.yaml"))
    config = load_config(config_file)
    with pytest.raises(GatewayBuildError) as caught:
        Gateway(config, config_dir=tmp_path)
    message = str(caught.value)
    assert "workflow 'w'" in message and "bad.yaml" in message
    assert "step 'cls' field 'model': model file not found" in message


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("check-config", "config.example.yaml")
    assert ok.returncode == 0, ok.stderr
    assert "OK (4 stream(s), 2 workflow(s))" in ok.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(good_text().replace("{type: synthetic}", "{type: synthetic, fps: fast}"))
    bad = run_cli("check-config", str(broken))
    assert bad.returncode == 1
    assert f"{broken}:6 streams.cam.source.fps: Input should be a valid number" in bad.stderr
    missing = run_cli("check-config", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 1 and "No such file or directory" in missing.stderr
