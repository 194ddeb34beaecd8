"""The embedded default competition: Fashion-MNIST (Debian's dataset-fashion-mnist) written as a
Digit-Recognizer-style CSV folder with a local answer key, into a new or empty folder only."""

from __future__ import annotations

import csv
import errno
import gzip
import json
import logging
import math
import os
import stat
import zlib
from pathlib import Path

import numpy as np

from kaggle_pipeline.data.folders import check_folder
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import MAX_ARRAY_BYTES, first_line, open_regular, read_bytes
from kaggle_pipeline.progress import RateProgress

logger = logging.getLogger(__name__)

PREPARED_MARKER = "PREPARED.json"
# The embedded default competition: Fashion-MNIST ----------------------------------------------------
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format) of unsigned bytes, gzip-compressed.

    The header's shape is checked against ``MAX_ARRAY_BYTES`` before anything is allocated, and against the
    data: a file holding fewer bytes (cut short) or more than the header declares is refused, and so is a
    damaged or non-gzip file.
    """
    with open_regular(path) as raw:
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as handle:
                head = handle.read(4)
                if len(head) < 4:
                    raise PipelineError(f"{path}: not an IDX file (only {len(head)} bytes)")
                if head[:2] != b"\0\0" or head[2] != 0x08 or not 1 <= head[3] <= 4:
                    raise PipelineError(f"{path}: not an unsigned-byte IDX file (magic {int.from_bytes(head, 'big'):#x})")
                dimensions = head[3]
                sides = handle.read(4 * dimensions)
                if len(sides) < 4 * dimensions:
                    raise PipelineError(f"{path}: the IDX header is cut short")
                shape = tuple(int.from_bytes(sides[4 * k : 4 * k + 4], "big") for k in range(dimensions))
                count = math.prod(shape)
                if count > MAX_ARRAY_BYTES:
                    raise PipelineError(f"{path}: the header declares shape {shape} ({count:,} bytes), more than the "
                                        f"{MAX_ARRAY_BYTES:,} bytes (half this machine's memory) an array may have")
                data = handle.read(count + 1)
        except (OSError, EOFError, zlib.error) as error:
            raise PipelineError(f"{path}: not a readable gzip-compressed IDX file ({first_line(error)})") from None
    if len(data) != count:
        held = f"{len(data):,}" if len(data) < count else "more than that"
        raise PipelineError(f"{path}: the header declares shape {shape} ({count:,} bytes) but the file holds {held}; "
                            "the file is damaged or cut short")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def fashion_mnist_arrays(source: Path = DEBIAN_FASHION_MNIST) -> dict[str, np.ndarray]:
    source = Path(source)
    present = [os.path.lexists(source / name) for name in FASHION_MNIST_FILES.values()]
    if all(present) or (any(present) or source != DEBIAN_FASHION_MNIST):
        # A folder the user named (or a partial Debian one) is read as it is: no silent download instead.
        check_folder(source, "folder of Fashion-MNIST idx files (--source)")
        arrays = {key: read_idx(source / name) for key, name in FASHION_MNIST_FILES.items()}
        _check_idx_set(arrays, source)
        return arrays
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # no Debian package and no network
        raise PipelineError(
            f"{source}: Fashion-MNIST not found ({first_line(error)}); install it with "
            "'sudo apt-get install dataset-fashion-mnist' (or run 'make setup' as root)"
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _check_idx_set(arrays: dict[str, np.ndarray], source: Path) -> None:
    """Images (N, H, W) and labels (N,) that belong together."""
    where = {key: source / name for key, name in FASHION_MNIST_FILES.items()}
    for images, labels in (("x_train", "y_train"), ("x_test", "y_test")):
        if arrays[images].ndim != 3 or 0 in arrays[images].shape:
            raise PipelineError(f"{where[images]}: expected images shaped (N, height, width) with N > 0, "
                                f"found {arrays[images].shape}")
        if arrays[labels].shape != (len(arrays[images]),):
            raise PipelineError(f"{where[labels]}: expected {len(arrays[images])} labels in one dimension (one per "
                                f"image of {where[images].name}), found shape {arrays[labels].shape}")
    if arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
        raise PipelineError(f"{where['x_test']}: test images are {arrays['x_test'].shape[1:]}, training images "
                            f"{arrays['x_train'].shape[1:]}")


def output_folder_state(folder: Path) -> str:
    """``missing``, ``empty`` or ``prepared`` (holds our PREPARED.json); anything else is refused.

    The pipeline deletes only what it created: a file, a link to nothing, or a folder holding anything but our
    marker (``.``, ``..``, ``/``, ``$HOME``, a git checkout, a link to a full folder) is never written into.
    """
    refuse = "'data' writes only a new or empty folder and never deletes what it did not create; choose another --out"
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        raise PipelineError(f"{folder}: cannot use it as the output folder ({error.strerror or first_line(error)})") from None
    if stat.S_ISLNK(mode):
        try:
            mode = os.stat(folder).st_mode
        except OSError as error:
            reason = "a symbolic link loop" if error.errno == errno.ELOOP else "a symbolic link to nothing"
            raise PipelineError(f"{folder}: is {reason}; {refuse}") from None
    if not stat.S_ISDIR(mode):
        kind = "a file" if stat.S_ISREG(mode) else "a special file (FIFO, device or socket)"
        raise PipelineError(f"{folder}: is {kind}, not a folder; {refuse}")
    try:
        entries = os.listdir(folder)
    except OSError as error:
        raise PipelineError(f"{folder}: cannot list ({error.strerror or first_line(error)})") from None
    if not entries:
        return "empty"
    if PREPARED_MARKER in entries and _is_our_marker(folder / PREPARED_MARKER):
        return "prepared"
    raise PipelineError(f"{folder}: exists and is not empty ({len(entries)} entries, no {PREPARED_MARKER} of an "
                        f"earlier 'data' stage); {refuse}")


def _is_our_marker(path: Path) -> bool:
    try:
        marker = json.loads(read_bytes(path, limit=1 << 16))
    except (PipelineError, ValueError):
        return False
    return isinstance(marker, dict) and {"source", "train_images", "test_images"} <= set(marker)


def write_pixel_competition(
    folder: Path, x_train: np.ndarray, y_train, x_test: np.ndarray, y_test=None,
    id_column: str = "ImageId", label_column: str = "Label", first_id: int = 1, marker: dict | None = None,
) -> None:
    """Write a Digit-Recognizer-style folder: train.csv, test.csv (no id column), sample_submission.csv.

    With ``y_test`` also write ``solution.csv``, the local answer key; with ``marker`` also PREPARED.json,
    last. ``folder`` is written as ``write_competition_folder`` writes: new or empty, never replaced.
    """
    def fill(staging: Path) -> None:
        pixel_header = ",".join(f"pixel{i}" for i in range(int(np.prod(x_train.shape[1:]))))
        _write_rows(staging / "train.csv", "label," + pixel_header, x_train, labels=y_train)
        _write_rows(staging / "test.csv", pixel_header, x_test)
        ids = np.arange(first_id, first_id + len(x_test))
        placeholder = str(y_train[0])
        (staging / "sample_submission.csv").write_text(
            f"{id_column},{label_column}\n" + "".join(f"{i},{placeholder}\n" for i in ids)
        )
        if y_test is not None:
            (staging / "solution.csv").write_text(
                f"{id_column},{label_column}\n" + "".join(f"{i},{label}\n" for i, label in zip(ids, y_test, strict=True))
            )

    write_competition_folder(folder, fill, marker)


def write_array_competition(folder: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                            y_test: np.ndarray, marker: dict) -> None:
    """Write an npy-layout folder with a local answer key: ``train_x.npy`` (uint8 NHWC), ``train_y.npy`` (labels
    as text), ``test_x.npy``, ``sample_submission.csv`` and ``solution.csv`` (``id,label``, ids 1..N in the
    test arrays' order), PREPARED.json last. Colour images stay arrays: CIFAR as CSV text would be 650 MB."""
    def fill(staging: Path) -> None:
        np.save(staging / "train_x.npy", x_train)
        np.save(staging / "train_y.npy", np.asarray(y_train, dtype=str))
        np.save(staging / "test_x.npy", x_test)
        ids = range(1, len(x_test) + 1)
        for name, labels in (("sample_submission.csv", [y_train[0]] * len(ids)), ("solution.csv", y_test)):
            with open(staging / name, "w", newline="") as table:
                writer = csv.writer(table)
                writer.writerow(["id", "label"])
                writer.writerows(zip(ids, labels, strict=True))

    write_competition_folder(folder, fill, marker)


def write_competition_folder(folder: Path, fill, marker: dict | None = None) -> None:
    """Write a competition folder: ``fill(staging)`` writes its files into a staging folder, then they appear.

    ``folder`` must be new (it appears whole or not at all) or an empty folder (filled; the files appear one by
    one, the ``marker``, PREPARED.json, last). Anything else is refused: nothing is ever deleted that this
    function did not create, and on any failure what it created is removed.
    """
    import tempfile

    folder = Path(folder)
    state = output_folder_state(folder)
    if state == "prepared":
        raise PipelineError(f"{folder}: already holds a prepared competition; choose another folder")
    staging = moved = None
    try:
        if state == "missing":
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            staging.chmod(0o755)  # mkdtemp makes it private; the data is not
        else:
            staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=folder))
        fill(staging)
        if marker is not None:
            (staging / PREPARED_MARKER).write_text(json.dumps(marker) + "\n")
        if state == "missing":
            os.rename(staging, folder)  # fails (ENOTEMPTY) if something appeared there meanwhile
            staging = None
        else:
            moved = []
            names = sorted(os.listdir(staging), key=lambda name: name == PREPARED_MARKER)  # the marker last
            for name in names:
                target = folder / name
                if os.path.lexists(target):
                    raise PipelineError(f"{target}: appeared while the folder was being written; nothing replaced")
                os.rename(staging / name, target)
                moved.append(target)
            staging.rmdir()
            staging = None
    except OSError as error:
        _undo(staging, moved)
        raise PipelineError(f"{folder}: cannot write ({error.strerror or first_line(error)})") from None
    except BaseException:
        _undo(staging, moved)
        raise


def _undo(staging: Path | None, moved: list[Path] | None) -> None:
    """Remove what write_competition_folder created: its staging folder and the files (or folders) it moved in."""
    import shutil

    for path in moved or []:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)  # a folder it built (train/, test/) and moved in
            else:
                path.unlink()
        except OSError:
            pass
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)


def _write_rows(path: Path, header: str, images: np.ndarray, labels=None) -> None:
    as_text = np.array([str(value) for value in range(256)])
    flat = images.reshape(len(images), -1)
    progress = RateProgress(logger.info, f"data: writing {path.name}", len(flat))  # 60,000 rows: a few seconds
    with open(path, "w") as handle:
        handle.write(header + "\n")
        for row, pixels in enumerate(flat):
            prefix = f"{labels[row]}," if labels is not None else ""
            handle.write(prefix + ",".join(as_text[pixels]) + "\n")
            if row % 1000 == 999:
                progress.update(row + 1)


def prepare_fashion_mnist(folder: Path, source: Path = DEBIAN_FASHION_MNIST) -> bool:
    """Make the default competition folder; returns False when it is already there.

    ``folder`` may be missing (created), empty (filled) or an earlier result (its PREPARED.json says so);
    anything else is refused before the source is read, and nothing is deleted.
    """
    folder = Path(folder)
    if output_folder_state(folder) == "prepared":
        return False
    arrays = fashion_mnist_arrays(Path(source))
    write_pixel_competition(
        folder, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
        marker={"source": str(source), "train_images": len(arrays["x_train"]), "test_images": len(arrays["x_test"])},
    )
    return True
