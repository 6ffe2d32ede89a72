"""A synthetic conveyor scene: parts with QR serials stop under the camera, every Nth defective.

Each frame is a pure function of its index, so tests know the ground truth of any frame, and
the index is written into the top rows as a binary stripe (`decode_frame_index`) so a test can
tell exactly which frame a result was computed on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import segno

from gateway.frame_source import Image

STRIPE_BITS = 24
STRIPE_ROWS = 6
QUIET_ZONE_MODULES = 2  # white modules around a QR code, as OpenCV drew it
BACKGROUND_BGR = (70, 70, 70)
BODY_BGR = (165, 135, 95)  # a steel-blue plate
WRONG_BODY_BGR = (40, 130, 230)  # the same plate in orange: the wrong material
HOLE_BGR = (30, 30, 30)
SCRATCH_BGR = (45, 45, 45)
DEFECTS = ("scratch", "missing_hole", "wrong_colour")
"""The defect kinds, in the order defective parts cycle through them."""


@dataclass(frozen=True, slots=True)
class Part:
    index: int
    center_x: float
    defect: str | None

    @property
    def defective(self) -> bool:
        return self.defect is not None

    @property
    def serial(self) -> str:
        return serial_of(self.index)


def serial_of(part_index: int) -> str:
    """The text of a part's QR code."""
    return f"SN-{part_index:06d}"


class ConveyorScene:
    """Geometry and ground truth of the generated scene: an indexing conveyor.

    Every `part_period_frames` the belt moves one pitch in `move_frames` frames, then rests
    with part k in the middle of the image around frame k * period, as a real indexing line
    stops each part under the camera. Parts are three quarters of an image width apart, so a
    resting part is alone in the image. Every `defect_every`-th part has a defect, cycling
    through `DEFECTS`; each part carries a QR code with its serial (`serial_of`).
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        part_period_frames: int = 30,
        defect_every: int = 4,
    ) -> None:
        if width < STRIPE_BITS * 2:
            raise ValueError(f"width must be at least {STRIPE_BITS * 2} pixels")
        self.width = width
        self.height = height
        self.period = part_period_frames
        self.move_frames = max(1, part_period_frames // 10)
        self.defect_every = defect_every
        self.part_size = int(height * 0.4)
        self.pitch = width * 0.75
        self._qr_cache: dict[int, Image] = {}

    def defect(self, part_index: int) -> str | None:
        """Ground truth: the defect of part `part_index`, or None for a good part."""
        n = self.defect_every
        if n <= 0 or part_index % n != n - 1:
            return None
        return DEFECTS[(part_index // n) % len(DEFECTS)]

    def is_defective(self, part_index: int) -> bool:
        return self.defect(part_index) is not None

    def belt_position(self, frame_index: int) -> float:
        """Which part is in the middle, in pitches: an integer while the belt rests."""
        nearest = (frame_index + self.period // 2) // self.period
        phase = frame_index - nearest * self.period + self.period // 2  # 0 .. period-1
        if phase >= self.move_frames:
            return float(nearest)
        return nearest - 1 + (phase + 1) / (self.move_frames + 1)

    def parts(self, frame_index: int) -> list[Part]:
        """Parts at least partly visible in frame `frame_index`."""
        half = self.part_size / 2
        position = self.belt_position(frame_index)
        visible = []
        for k in range(max(int(position) - 2, 0), int(position) + 3):
            x = self.width / 2 + (position - k) * self.pitch
            if -half < x < self.width + half:
                visible.append(Part(k, x, self.defect(k)))
        return visible

    def part_in_position(self, frame_index: int, tolerance_px: float = 0.5) -> Part | None:
        """The part resting in the middle of the image (what the line's photo-eye reports)."""
        for part in self.parts(frame_index):
            if abs(part.center_x - self.width / 2) <= tolerance_px:
                return part
        return None

    def part_arrived(self, frame_index: int) -> Part | None:
        """The photo-eye's signal: the part in position during the first half of its rest only.
        The belt moves on when a rest ends, whatever the PLC does, so a PLC still busy with
        the previous part triggers this one while it has time to be photographed, or not at
        all; a trigger at the very end of a rest would get a picture of the belt moving."""
        phase = (frame_index + self.period // 2) % self.period  # as in `belt_position`
        rest = self.period - self.move_frames
        return self.part_in_position(frame_index) if phase < self.move_frames + rest // 2 else None

    def render(self, frame_index: int) -> Image:
        image = np.empty((self.height, self.width, 3), np.uint8)
        image[:] = BACKGROUND_BGR
        # belt edges
        for y in (self.height // 6, self.height * 5 // 6):
            cv2.rectangle(image, (0, y), (self.width, y + 4), (40, 40, 40), -1)
        for part in self.parts(frame_index):
            self._draw_part(image, part)
        cv2.putText(
            image,
            f"#{frame_index}",
            (8, self.height - 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        encode_frame_index(image, frame_index)
        return image

    def _draw_part(self, image: Image, part: Part) -> None:
        """A plate with two holes on its left and a QR label on its right; defects as named."""
        size = self.part_size
        x0, y0 = round(part.center_x) - size // 2, self.height // 2 - size // 2
        cy = y0 + size // 2
        body = WRONG_BODY_BGR if part.defect == "wrong_colour" else BODY_BGR
        cv2.rectangle(image, (x0, y0), (x0 + size, y0 + size), body, -1)
        radius = max(size // 14, 2)
        hole_x = x0 + size // 4
        holes = [cy - size // 4, cy + size // 4]
        if part.defect == "missing_hole":
            holes = holes[:1]
        for hole_y in holes:
            cv2.circle(image, (hole_x, hole_y), radius, HOLE_BGR, -1)
        if part.defect == "scratch":
            start = (x0 + size * 8 // 100, cy - size * 8 // 100)
            end = (x0 + size * 50 // 100, cy + size * 6 // 100)
            cv2.line(image, start, end, SCRATCH_BGR, 2)
        code = self._qr(part.index)
        q = code.shape[0]
        lx, ly = x0 + size - q - 12, cy - q // 2
        cv2.rectangle(image, (lx - 4, ly - 4), (lx + q + 4, ly + q + 16), (255, 255, 255), -1)
        _paste(image, code, lx, ly)
        cv2.putText(
            image, part.serial, (lx, ly + q + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1
        )

    def _qr(self, part_index: int) -> Image:
        """The part's QR code as a BGR image, cached. segno encodes it in ~3 ms; OpenCV's
        encoder took 68 ms of a core per new part, which stalled the synthetic camera (frames
        late by half a second on a loaded machine at 5 parts a second)."""
        cached = self._qr_cache.get(part_index)
        if cached is not None:
            return cached
        symbol = segno.make_qr(serial_of(part_index), error="l", boost_error=False)
        modules = np.where(np.array(symbol.matrix, np.uint8) == 1, 0, 255).astype(np.uint8)
        modules = np.pad(modules, QUIET_ZONE_MODULES, constant_values=255)
        scale = max(self.part_size // 64, 2)
        big = cv2.resize(modules, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        code: Image = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR).astype(np.uint8)
        if len(self._qr_cache) >= 8:
            self._qr_cache.pop(next(iter(self._qr_cache)))
        self._qr_cache[part_index] = code
        return code


def _paste(image: Image, patch: Image, x: int, y: int) -> None:
    """Copy `patch` with its top-left corner at (x, y), clipped to the image."""
    height, width = image.shape[:2]
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + patch.shape[1], width), min(y + patch.shape[0], height)
    if left < right and top < bottom:
        image[top:bottom, left:right] = patch[top - y : bottom - y, left - x : right - x]


def sensed(signal: Callable[[int], Part | None], newest_frame: int) -> int | None:
    """A part sensor read on the newest frame sent (-1 before the first): the part's number,
    else None. `signal` is `ConveyorScene.part_in_position` or `part_arrived`."""
    part = signal(newest_frame) if newest_frame >= 0 else None
    return None if part is None else part.index


def encode_frame_index(image: Image, frame_index: int) -> None:
    """Write the index into the top rows: a black or white cell per bit, most significant first."""
    cell = image.shape[1] // STRIPE_BITS
    for bit in range(STRIPE_BITS):
        on = (frame_index >> (STRIPE_BITS - 1 - bit)) & 1
        image[:STRIPE_ROWS, bit * cell : (bit + 1) * cell] = 255 if on else 0


def decode_frame_index(image: Image) -> int:
    """Read back `encode_frame_index`; survives JPEG/H.264 compression of the stripe."""
    cell = image.shape[1] // STRIPE_BITS
    value = 0
    for bit in range(STRIPE_BITS):
        patch = image[1 : STRIPE_ROWS - 1, bit * cell + cell // 4 : (bit + 1) * cell - cell // 4]
        value = (value << 1) | int(patch.mean() > 127)
    return value
