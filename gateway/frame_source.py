"""What a camera source is to the gateway: the `FrameSource` protocol every camera type
implements (`gateway.sources`), the image it hands over (decoded, or `DeferredImage` to decode
when a trigger needs it), and the exceptions that tell the grabber what happened."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


class DeferredImage(Protocol):
    """A frame kept undecoded (`decode: on_trigger`): decoded the first time it is used."""

    def decode(self) -> Image:
        """The image; raises SourceError when the frame cannot be decoded."""


def decoded(content: Image | DeferredImage) -> Image:
    return content if isinstance(content, np.ndarray) else content.decode()


class SourceError(Exception):
    """A camera could not be opened; the grabber retries with backoff."""


class SourceIdle(Exception):
    """No frame this time, and nothing wrong: a triggered camera waiting for its trigger. The
    grabber reads again (after checking whether it was stopped)."""


class SourceEnded(Exception):
    """A finite source (a video file that does not loop) has no more frames: the grabber
    stops for good instead of reconnecting, which would play the file again."""


class FrameSource(Protocol):
    """A camera. Blocking calls, made only from its grabber thread."""

    @property
    def description(self) -> str: ...

    @property
    def paced_fps(self) -> float | None:
        """Frames per second to pace reads at, for sources that would return instantly
        (files, generated frames); None for live cameras, which pace themselves."""

    def open(self) -> None: ...

    def read(self) -> Image | DeferredImage | None:
        """The next frame, or None when the camera is lost (the grabber reconnects); raises
        SourceEnded when a finite source has no more."""

    def close(self) -> None: ...
