"""The demo workflow really inspects: against the synthetic conveyor's ground truth, on every
kind of defect, at the demo's geometry and at another pace and defect rate."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.sources.scene import DEFECTS, ConveyorScene
from gateway.workflow import Workflow
from tests.conftest import ROOT

DEMO_WORKFLOW = ROOT / "gateway" / "defaults" / "part_inspection.yaml"


@pytest.mark.parametrize(
    "scene",
    [ConveyorScene(640, 480), ConveyorScene(640, 480, part_period_frames=24, defect_every=3)],
    ids=["demo-line", "faster-line-more-defects"],
)
def test_demo_workflow_matches_the_scene_ground_truth(scene: ConveyorScene) -> None:
    workflow = Workflow.load(DEMO_WORKFLOW)
    confusion: Counter[tuple[str, str]] = Counter()
    wrong_serials = 0
    for frame_index in range(0, 1200, 7):  # resting parts, moving belt, every defect kind
        part = scene.part_in_position(frame_index)
        truth = "no_part" if part is None else part.defect or "none"
        outputs = workflow.run(image=scene.render(frame_index))["outputs"]
        confusion[(truth, outputs["defect"])] += 1
        assert outputs["pass"] is (outputs["defect"] == "none")
        if part is not None:
            wrong_serials += outputs["serial"] != part.serial
            assert outputs["serial_number"] == (part.index if outputs["serial"] else 0)
    kinds = {truth for truth, _ in confusion}
    assert kinds == {"none", "no_part", *DEFECTS}, kinds  # the sample covers every case
    total = sum(confusion.values())
    correct = sum(n for (truth, found), n in confusion.items() if truth == found)
    assert correct / total >= 0.98, confusion
    assert wrong_serials <= total * 0.02, wrong_serials
