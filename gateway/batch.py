"""Run a workflow over image files, folders and video files: one `results.json` per image or
sampled frame (image outputs written beside it as JPEG), then `aggregated_results.csv` and
`.jsonl` over everything done so far. Resumable: an item whose results.json exists is skipped,
so an interrupted run picks up where it stopped. Failures go to `failures.jsonl`."""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson

from gateway.serialise import encode_jpeg, to_json
from gateway.workflow import CompiledWorkflow, StepFailed

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg"})
RESULTS = "results.json"


@dataclass(frozen=True, slots=True)
class BatchInput:
    """One input file: an image, or a video sampled every `every` frames."""

    path: Path
    name: str
    """Its folder under OUT: the path relative to the folder it was found in, without the
    extension for an image (`shots/part_001`), with it for a video (`line.avi/frame_000001`)."""
    video: bool

    def total(self, every: int) -> int:
        if not self.video:
            return 1
        capture = cv2.VideoCapture(str(self.path))
        try:
            frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            capture.release()
        return max(0, (frames + every - 1) // every)


@dataclass(slots=True)
class Item:
    source: BatchInput
    frame: int | None
    image: np.ndarray[Any, Any] | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return (
            self.source.name if self.frame is None else f"{self.source.name}/frame_{self.frame:06d}"
        )


@dataclass(slots=True)
class Summary:
    total: int = 0
    processed: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)


def find_inputs(inputs: Sequence[Path]) -> list[BatchInput]:
    """Image and video files named directly or found (recursively, sorted) in folders."""
    found: list[BatchInput] = []
    for given in inputs:
        if given.is_dir():
            for path in sorted(p for p in given.rglob("*") if p.is_file()):
                suffix = path.suffix.lower()
                if suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES:
                    video = suffix in VIDEO_SUFFIXES
                    relative = path.relative_to(given)
                    shown = relative if video else relative.with_suffix("")
                    found.append(BatchInput(path, f"{given.name}/{shown.as_posix()}", video))
        elif given.is_file():
            video = given.suffix.lower() in VIDEO_SUFFIXES
            found.append(BatchInput(given, given.name if video else given.stem, video))
        else:
            raise FileNotFoundError(f"no such file or folder: {given}")
    names = [source.name for source in found]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"two inputs would write to the same folder: {duplicates[0]}")
    return found


def _items(source: BatchInput, every: int, done: Callable[[str], bool]) -> Iterator[Item]:
    if not source.video:
        item = Item(source, None)
        if done(item.key):
            yield item
            return
        item.image = cv2.imread(str(source.path), cv2.IMREAD_COLOR)
        yield item
        return
    capture = cv2.VideoCapture(str(source.path))
    try:
        index = 0
        while capture.grab():
            if index % every == 0:
                item = Item(source, index)
                if not done(item.key):
                    ok, image = capture.retrieve()
                    item.image = image if ok else None
                yield item
            index += 1
    finally:
        capture.release()


class BatchRunner:
    def __init__(
        self,
        workflow: CompiledWorkflow,
        out_dir: Path,
        *,
        parameters: dict[str, Any] | None = None,
        every: int = 1,
        threads: int = 1,
        image_quality: int = 90,
    ) -> None:
        if len(workflow.image_inputs) != 1:
            raise ValueError(
                f"the workflow must have exactly one image input (has {len(workflow.image_inputs)})"
            )
        self.workflow = workflow
        self.out_dir = out_dir
        self.parameters = workflow.bind(parameters or {})
        self.every = every
        self.threads = threads
        self.quality = image_quality
        self._image_input = workflow.image_inputs[0]
        self._lock = threading.Lock()

    def done(self, key: str) -> bool:
        return (self.out_dir / key / RESULTS).is_file()

    def run(
        self,
        sources: Sequence[BatchInput],
        on_total: Callable[[int], None] = lambda total: None,
        on_item: Callable[[Item, bool], None] = lambda item, ok: None,
    ) -> Summary:
        """Process every item not already done; `on_item(item, ok)` after each (progress)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        summary = Summary(total=sum(source.total(self.every) for source in sources))
        on_total(summary.total)
        pending: set[Future[None]] = set()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="batch") as pool:
            for source in sources:
                for item in _items(source, self.every, self.done):
                    if item.image is None and self.done(item.key):
                        summary.skipped += 1
                        on_item(item, True)
                        continue
                    while len(pending) >= self.threads * 2:  # bounded read-ahead
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in finished:
                            future.result()
                    pending.add(pool.submit(self._process, item, summary, on_item))
            for future in pending:
                future.result()
        self._write_failures(summary.failed)
        self.aggregate(sources)
        return summary

    def _process(self, item: Item, summary: Summary, on_item: Callable[[Item, bool], None]) -> None:
        error: str | None = None
        if item.image is None:
            error = "cannot read image" if item.frame is None else "cannot decode frame"
        else:
            try:
                run = self.workflow.run({self._image_input: item.image}, self.parameters)
            except StepFailed as exc:
                error = str(exc)
            else:
                self._write(item, run.outputs, run.passed, run.steps_ms)
        item.image = None
        with self._lock:
            if error is None:
                summary.processed += 1
            else:
                summary.failed.append(
                    {"input": str(item.source.path), "frame": item.frame, "error": error}
                )
        on_item(item, error is None)

    def _write(
        self, item: Item, outputs: dict[str, Any], passed: bool | None, steps_ms: dict[str, float]
    ) -> None:
        folder = self.out_dir / item.key
        folder.mkdir(parents=True, exist_ok=True)

        def save_image(path: str, image: np.ndarray[Any, Any]) -> str:
            filename = f"{path.replace('.', '_')}.jpg"
            (folder / filename).write_bytes(encode_jpeg(image, self.quality))
            return filename

        record = {
            "input": str(item.source.path),
            "frame": item.frame,
            "pass": passed,
            "outputs": to_json(outputs, save_image),
            "steps_ms": {name: round(ms, 3) for name, ms in steps_ms.items()},
        }
        partial = folder / f".{RESULTS}.partial"
        partial.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
        os.replace(partial, folder / RESULTS)  # all or nothing: a kill never leaves half a file

    def _write_failures(self, failures: list[dict[str, Any]]) -> None:
        path = self.out_dir / "failures.jsonl"
        if not failures:
            path.unlink(missing_ok=True)
            return
        path.write_bytes(b"".join(orjson.dumps(f) + b"\n" for f in failures))

    def aggregate(self, sources: Sequence[BatchInput]) -> None:
        """aggregated_results.jsonl and .csv over every results.json of these inputs, in order."""
        records = []
        for source in sources:
            base = self.out_dir / source.name
            paths = sorted(base.glob(f"frame_*/{RESULTS}")) if source.video else [base / RESULTS]
            for path in paths:
                if path.is_file():
                    records.append(orjson.loads(path.read_bytes()))
        (self.out_dir / "aggregated_results.jsonl").write_bytes(
            b"".join(orjson.dumps(record) + b"\n" for record in records)
        )
        # an output named `pass` is the verdict column already
        names = [name for name, _ in self.workflow.output_selectors if name != "pass"]
        with (self.out_dir / "aggregated_results.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["input", "frame", "pass", *names])
            for record in records:
                writer.writerow(
                    [record["input"], record["frame"], _cell(record["pass"])]
                    + [_cell(record["outputs"].get(name)) for name in names]
                )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value
