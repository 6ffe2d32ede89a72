"""The synthetic conveyor's photo-eye: on as each part comes to rest, off before its rest ends."""

from __future__ import annotations

from gateway.sources.scene import ConveyorScene


def test_the_photo_eye_signals_each_part_for_the_first_half_of_its_rest() -> None:
    scene = ConveyorScene(part_period_frames=30)
    for part in range(1, 6):
        resting = [f for f in range(part * 30 - 15, part * 30 + 15) if scene.part_in_position(f)]
        signalled = [f for f in resting if scene.part_arrived(f)]
        assert all(scene.part_in_position(f).index == part for f in resting)  # type: ignore[union-attr]
        assert signalled == resting[: len(signalled)]  # from the first resting frame on
        assert len(resting) == 27 and len(signalled) == 13  # off with half the rest to go
