"""Folder layouts, registered by name like timm's model registry: ``register_layout``, ``list_layouts``,
``get_layout``, and ``detect_layout`` (the first complete layout in registration order).

A new layout is one new module in ``kaggle_pipeline/data/layouts/`` that calls ``register_layout`` (and one
import line in that package's ``__init__``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kaggle_pipeline.data.tables import nested_competitions_hint
from kaggle_pipeline.errors import ParameterError, PipelineError


@dataclass(frozen=True)
class Layout:
    """How one kind of competition folder is recognised and read.

    ``read(folder, sample, sample_path, image_size, skip_unreadable)`` returns ``x_train`` and ``x_test`` (uint8
    NHWC, the test images in the sample submission's order), ``train_labels`` (text) and ``labels_path`` (named in
    label errors); layouts of image files also ``left_out``, the error lines of the training images
    ``skip_unreadable`` left out (``images.decode_images``). In layouts of tables and arrays nothing is left out:
    a file that cannot be read stops the load. ``complete(folder)``: all of its files are there; ``started(folder)``: some are, so a folder where
    no layout is complete is read as this one and the error names what is missing. ``files(folder)``: what it
    reads, for the cache key.
    """

    name: str
    files_text: str  # the files, in a few words (errors, --help, the README table)
    competitions: str  # real competitions shipped this way
    read: Callable[[Path, pd.DataFrame, Path, int | None, bool], dict]
    complete: Callable[[Path], bool]
    started: Callable[[Path], bool]
    files: Callable[[Path], list[Path]]


_LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    if layout.name in _LAYOUTS:
        raise ValueError(f"layout {layout.name!r} is registered already")
    _LAYOUTS[layout.name] = layout
    return layout


def list_layouts() -> list[str]:
    """The layout names, in detection order."""
    return list(_LAYOUTS)


def get_layout(name: str) -> Layout:
    if name not in _LAYOUTS:
        raise ParameterError("layout", name, f"unknown layout; choose one of {', '.join(_LAYOUTS)}")
    return _LAYOUTS[name]


def detect_layout(folder: Path) -> str:
    """The first layout (in registration order) whose files are complete; when none is, the first that is started.

    So a CSV competition beside an empty (or image-less) ``train/`` folder is read as CSV, and an image folder
    missing its test images is read as images and told so.
    """
    for layout in _LAYOUTS.values():
        if layout.complete(folder):
            return layout.name
    for layout in _LAYOUTS.values():
        if layout.started(folder):
            return layout.name
    hint = nested_competitions_hint(folder)  # the competition one folder down, or still in its archives
    expected = "; ".join(f"{layout.name}: {layout.files_text}" for layout in _LAYOUTS.values())
    raise PipelineError(f"{folder}: cannot tell the layout" + (hint or f" (expected one of: {expected})"))
