"""Files on disk between stages: atomic writes and the per-competition run store.

Layout of ``models/<competition>/``::

    store.json          what data the store belongs to (fingerprint, classes, image shape)
    split.npz           the validation split, fixed for every search trial and every run
    cache/              parsed competition arrays, keyed by the source files
    search/trials.json  hyperopt trial documents, saved after every evaluation
    search/trials.csv   the same as a table
    best_params.json    the best trial's parameters and validation accuracy
    ensemble.json       the settings of the last ensemble invocation (threshold, N)
    runs/run-0001/      one retrain run: run.json, predictions.npz, model.keras

A run directory is written under a temporary name and renamed into place, so a run
directory either exists complete or not at all.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np

from kaggle_pipeline.errors import PipelineError

STORE_FORMAT = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_save_npz(path: Path, **arrays) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.npz", dir=path.parent)
    os.close(descriptor)
    try:
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: not valid JSON ({error})") from None


def library_versions() -> dict:
    """Versions recorded with every run, so a result can be reproduced."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("tensorflow-cpu", "tensorflow", "keras", "hyperopt", "numpy", "pandas", "scikit-learn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


class RunStore:
    """The artifacts of one competition under ``models/<competition>/``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    # Paths -------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "store.json"

    @property
    def split_path(self) -> Path:
        return self.root / "split.npz"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def search_dir(self) -> Path:
        return self.root / "search"

    @property
    def best_params_path(self) -> Path:
        return self.root / "best_params.json"

    @property
    def ensemble_path(self) -> Path:
        return self.root / "ensemble.json"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    # The data this store belongs to --------------------------------------------------
    def bind(self, fingerprint: str, description: dict) -> None:
        """Record which data the store is made from, or refuse data that differs."""
        if self.manifest_path.exists():
            manifest = read_json(self.manifest_path)
            if manifest.get("fingerprint") != fingerprint:
                raise PipelineError(
                    f"{self.root}: this run store was made from other data "
                    f"(fingerprint {manifest.get('fingerprint')}, the data given has {fingerprint}); "
                    "use NAME=<another name> (--name) or remove the folder"
                )
            return
        atomic_write_json(
            self.manifest_path,
            {"format": STORE_FORMAT, "fingerprint": fingerprint, **description},
        )

    # Runs --------------------------------------------------------------------------
    def run_records(self) -> list[dict]:
        """Every finished run (kept, rejected or failed), oldest first."""
        if not self.runs_dir.is_dir():
            return []
        records = []
        for run_dir in sorted(self.runs_dir.glob("run-*")):
            record_path = run_dir / "run.json"
            if run_dir.is_dir() and record_path.exists():
                records.append(read_json(record_path))
        return records

    def remove_unfinished_runs(self) -> list[str]:
        """Delete temporary run folders left by a run that was killed mid-write."""
        removed = []
        if self.runs_dir.is_dir():
            for leftover in self.runs_dir.glob(".run-*"):
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover.name)
        return removed

    def next_run_number(self) -> int:
        numbers = [int(path.name.split("-")[1]) for path in self.runs_dir.glob("run-*")] if self.runs_dir.is_dir() else []
        return max(numbers, default=0) + 1

    def begin_run(self, number: int) -> Path:
        """A fresh temporary folder for run ``number``; ``commit_run`` moves it into place."""
        temporary = self.runs_dir / f".run-{number:04d}.tmp-{os.getpid()}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        return temporary

    def commit_run(self, temporary: Path, number: int) -> Path:
        final = self.runs_dir / f"run-{number:04d}"
        if final.exists():
            raise PipelineError(f"{final}: already exists; another process is writing to {self.runs_dir}")
        os.replace(temporary, final)
        return final

    def run_dir(self, record: dict) -> Path:
        return self.runs_dir / f"run-{record['run']:04d}"

    def load_predictions(self, record: dict) -> dict[str, np.ndarray]:
        path = self.run_dir(record) / "predictions.npz"
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return {key: arrays[key] for key in arrays.files}
        except (OSError, ValueError) as error:
            raise PipelineError(f"{path}: cannot read run predictions ({error})") from None
