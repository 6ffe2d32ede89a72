"""ONNX models, loaded once and shared by every stream and workflow that names the same file."""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import onnxruntime as ort

_NUMPY_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int64)": np.int64,
}


EngineT = TypeVar("EngineT")


class ModelLoadError(Exception):
    pass


@dataclass(frozen=True)
class LoadedModel:
    path: Path
    session: ort.InferenceSession
    input_name: str
    input_shape: tuple[int | str | None, ...]
    input_dtype: Any
    output_names: tuple[str, ...]
    class_names: tuple[str, ...] | None

    def run(self, tensor: np.ndarray[Any, Any], outputs: list[str] | None = None) -> list[Any]:
        result: list[Any] = self.session.run(outputs, {self.input_name: tensor})
        return result

    def static_hw(self) -> tuple[int, int] | None:
        """(height, width) when the model's NCHW input has fixed spatial dimensions."""
        if len(self.input_shape) != 4:
            return None
        h, w = self.input_shape[2], self.input_shape[3]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None


def _class_names(metadata: dict[str, str]) -> tuple[str, ...] | None:
    """Ultralytics stores `names` as a Python dict literal: `{0: 'person', ...}`."""
    raw = metadata.get("names")
    if not raw:
        return None
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, dict):
        return tuple(str(names[key]) for key in sorted(names))
    if isinstance(names, list | tuple):
        return tuple(str(name) for name in names)
    return None


class ModelRegistry:
    """Loads each model file once (thread-safe), warms it up, and keeps it for every user."""

    def __init__(self, intra_op_threads: int = 1, warmup_runs: int = 1) -> None:
        self._intra_op_threads = intra_op_threads
        self._warmup_runs = warmup_runs
        self._models: dict[Path, LoadedModel] = {}
        self._engines: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> LoadedModel:
        key = path.resolve()
        with self._lock:
            model = self._models.get(key)
            if model is None:
                model = self._load(key)
                self._models[key] = model
            return model

    def engine(self, key: str, factory: Callable[[], EngineT]) -> EngineT:
        """A model engine that is not a bare ONNX session (e.g. the OCR pipeline), built once."""
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = factory()
                self._engines[key] = engine
            return cast(EngineT, engine)

    def __len__(self) -> int:
        return len(self._models)

    def _load(self, path: Path) -> LoadedModel:
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadError(f"cannot load model {path}: {exc}") from None
        first = session.get_inputs()[0]
        model = LoadedModel(
            path=path,
            session=session,
            input_name=first.name,
            input_shape=tuple(first.shape),
            input_dtype=_NUMPY_TYPES.get(first.type, np.float32),
            output_names=tuple(output.name for output in session.get_outputs()),
            class_names=_class_names(session.get_modelmeta().custom_metadata_map),
        )
        self._warm_up(model)
        return model

    def _warm_up(self, model: LoadedModel) -> None:
        shape = [dim if isinstance(dim, int) and dim > 0 else 1 for dim in model.input_shape]
        if len(shape) == 4 and not all(isinstance(d, int) for d in model.input_shape[2:]):
            shape[2:] = [64, 64]
        tensor = np.zeros(shape, dtype=model.input_dtype)
        for _ in range(self._warmup_runs):
            try:
                model.run(tensor)
            except Exception:  # warm-up is an optimisation; a real input may still work
                return
