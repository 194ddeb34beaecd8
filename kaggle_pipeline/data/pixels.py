"""Numeric pixel arrays (CSV tables, .npy) to uint8 images, by one scaling rule for train and test together."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kaggle_pipeline.errors import PipelineError

# The one scaling rule for a competition's pixels, decided from train and test together (_pixel_scale):
# float pixels whose maximum over train AND test is at most 1 + UNIT_TOLERANCE are 0..1 (scaled x255, clipped);
# float pixels whose maximum is at least FLOAT_0_255_MIN_MAX are 0..255 (rounded); a maximum in between is
# refused (as 0..1 it is out of range, as 0..255 the whole set would be almost black). Integer pixels are
# 0..255. Whatever the rule, train and test must agree: one lying in 0..1 (with some pixel above 0) while the
# other reaches above 1 is refused rather than guessed.
UNIT_TOLERANCE = 1e-3
FLOAT_0_255_MIN_MAX = 16.0
PIXEL_RULE = ("float pixels with max <= 1.001 over train and test: 0..1, scaled x255; float max >= 16: 0..255; "
              "float max in between: refused; integers: 0..255; train in 0..1 with test above 1 (or the reverse): refused")

# Pixels: one scaling rule for train and test -------------------------------------------------
def _numeric_pixels(values: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Pixel values as numbers, every one finite and none negative; not yet scaled or rounded."""
    if values.dtype.kind not in "uif":
        raise PipelineError(f"{path}: {what} values must be numbers, found dtype {values.dtype}")
    if values.dtype.kind == "f" and values.size:
        finite = np.isfinite(values)
        if not finite.all():
            where = np.argwhere(~finite)[0]
            bad = values[tuple(where)]
            if np.isnan(bad):
                raise PipelineError(f"{path}: missing (NaN) {what} value in image {int(where[0])}")
            raise PipelineError(f"{path}: {what} value {bad:g} in image {int(where[0])} is not a finite number")
    if values.size and values.min() < 0:
        low = values.min()
        if not (values.dtype.kind == "f" and low >= -UNIT_TOLERANCE):
            raise PipelineError(f"{path}: {what} value {low:g} is outside 0..255")
    return values


def _pixel_scale(arrays: list[tuple[np.ndarray, Path, str]]) -> float:
    """The factor that brings every array of the competition to 0..255: 255 (they are 0..1) or 1.

    Decided once from train and test together (the rule is PIXEL_RULE), never per array: a train set that
    reaches 1.0000001 must not be scaled differently from a test set that stays at or below 1.
    """
    floats = any(values.dtype.kind == "f" for values, _, _ in arrays)
    maxima = [(float(values.max()) if values.size else 0.0, path, name) for values, path, name in arrays]
    top, top_path, top_name = max(maxima, key=lambda item: item[0])
    if floats and top <= 1 + UNIT_TOLERANCE:
        return 255.0
    if floats and top < FLOAT_0_255_MIN_MAX:
        raise PipelineError(
            f"{top_path}: {top_name} pixel values are floats reaching {top:g}: above 0..1 (by more than {UNIT_TOLERANCE:g}) "
            f"yet below {FLOAT_0_255_MIN_MAX:g}, too dark for 0..255; rescale train and test to 0..1 or to 0..255"
        )
    for highest, path, name in maxima:
        if 0 < highest <= 1 + UNIT_TOLERANCE < top:
            raise PipelineError(
                f"{path}: {name} pixel values lie within 0..1 (largest {highest:g}) while {top_name} ({top_path.name}) "
                f"reaches {top:g}; "
                "train and test must use one scale (both 0..1 or both 0..255)"
            )
    return 1.0


def _to_uint8_images(values: np.ndarray, path: Path, what: str, scale: float = 1.0) -> np.ndarray:
    """Scale (the competition's one factor), round and reshape ``(N, pixels)`` or ``(N, H, W[, C])`` into uint8 NHWC."""
    values = _numeric_pixels(values, path, what)
    if values.dtype.kind == "f":
        if scale != 1.0:
            values = np.clip(values, 0.0, 1.0) * scale
        values = np.rint(values)
    if values.size and (values.min() < 0 or values.max() > 255):
        bad = values.min() if values.min() < 0 else values.max()
        raise PipelineError(f"{path}: {what} value {bad:g} is outside 0..255")
    values = values.astype(np.uint8)
    if values.ndim == 2:
        values = values.reshape((len(values),) + image_shape_from_pixel_count(values.shape[1], path))
    elif values.ndim == 3:
        values = values[..., np.newaxis]
    elif values.ndim != 4 or values.shape[-1] not in (1, 3):
        raise PipelineError(f"{path}: expected images shaped (N, H, W) or (N, H, W, 1|3), found {values.shape}")
    if 0 in values.shape[1:]:
        raise PipelineError(f"{path}: images have no pixels (shape {values.shape})")
    return values


def images_of(arrays: list[tuple[np.ndarray, Path, str]]) -> list[np.ndarray]:
    """Train and test pixels to uint8 images by the one rule: each checked, then the scale decided, then applied."""
    checked = [(_numeric_pixels(values, path, "pixel"), path, name) for values, path, name in arrays]
    scale = _pixel_scale(checked)
    return [_to_uint8_images(values, path, "pixel", scale) for values, path, _ in checked]

def image_shape_from_pixel_count(count: int, path: Path) -> tuple[int, int, int]:
    side = math.isqrt(count)
    if side * side == count:
        return side, side, 1
    side = math.isqrt(count // 3)
    if count % 3 == 0 and side * side * 3 == count:
        # Channel-last interleaved (r, g, b per pixel), as numpy's reshape of an NHWC array writes it.
        return side, side, 3
    raise PipelineError(f"{path}: {count} pixel columns is not a square grey (side²) or RGB (3·side²) image")
