"""Files on disk between stages: atomic writes and the per-competition run store.

Layout of ``models/<competition>/``::

    store.json          what data the store belongs to (fingerprint, classes, image shape)
    split.npz           the validation split, fixed for every search trial and every run
    cache/              parsed competition arrays, keyed by the source files
    search/trials.json  hyperopt trial documents, saved after every evaluation
    search/trials.csv   the same as a table
    best_params.json    the best trial's parameters and validation accuracy
    ensemble.json       the settings of the last ensemble invocation (threshold, N)
    runs/run-0001/      one retrain run: run.json, history.csv, predictions.npz, model.keras
    stack/              the VGG19 -> RandomForest voter (kaggle_pipeline.stack)
    tensorboard/        per-run TensorBoard logs, only with --tensorboard (TENSORBOARD=1)

A run directory is written under a temporary name and renamed into place, so a run
directory either exists complete or not at all. Its ``run.json`` lists the SHA-256 of every other file in
it; a run whose files do not match (a disk error, a hand edit) is moved aside as ``runs/.corrupt-run-NNNN-*``,
reported, and trained again. ``.lock`` is held (``flock``) by the one process writing to the store.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import signal
import tempfile
import time
from pathlib import Path

import numpy as np

from kaggle_pipeline.errors import PipelineError

STORE_FORMAT = 1


# Fault injection for tests/test_reliability.py: with KAGGLE_PIPELINE_KILL_DURING_WRITE=<file name> the
# process SIGKILLs itself when the temporary copy of that file is half written, as a power cut would.
KILL_DURING_WRITE = "KAGGLE_PIPELINE_KILL_DURING_WRITE"


def _die_if_asked(path: Path, handle, data: bytes) -> None:
    if os.environ.get(KILL_DURING_WRITE) == path.name:
        handle.write(data[: len(data) // 2])
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    _make_folder(path.parent)
    descriptor, temporary = _temporary_file(path, ".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            _die_if_asked(path, handle, data)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise _write_error(path, error) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _write_error(folder, error) from None


def _temporary_file(path: Path, suffix: str) -> tuple[int, str]:
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        # mkstemp makes the file private (0600); results get the mode any new file would, as open() gives.
        os.fchmod(descriptor, 0o666 & ~_UMASK)
        return descriptor, temporary
    except OSError as error:
        raise _write_error(path.parent, error) from None


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _write_error(path: Path, error: OSError) -> PipelineError:
    """Disk full, read-only or permission problems as one line; the file's previous version is untouched."""
    reason = error.strerror or str(error)
    return PipelineError(f"{path}: cannot write ({reason}); nothing was replaced, earlier results are intact")


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_save_npz(path: Path, **arrays) -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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

    def tensorboard_folder(self, name: str) -> Path:
        """An empty ``tensorboard/<name>/`` (a run redone after a kill must not append to the killed one's log)."""
        folder = self.root / "tensorboard" / name
        shutil.rmtree(folder, ignore_errors=True)
        return folder

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
    def run_records(self, repair: bool = True) -> list[dict]:
        """Every finished run (kept, rejected or failed) whose files match their checksums, oldest first.
        With ``repair`` a damaged run is also moved aside, so that its number is trained again."""
        if not self.runs_dir.is_dir():
            return []
        records = []
        for run_dir in sorted(self.runs_dir.glob("run-*")):
            record_path = run_dir / "run.json"
            if not (run_dir.is_dir() and record_path.exists()):
                continue
            try:
                record = read_json(record_path)
                problem = self._checksum_problem(run_dir, record)
            except PipelineError as error:
                problem = str(error)
            if problem:
                if repair:
                    self._set_aside(run_dir, problem)
                continue
            records.append(record)
        return records

    @staticmethod
    def _checksum_problem(run_dir: Path, record: dict) -> str | None:
        for name, expected in record.get("files", {}).items():
            path = run_dir / name
            if not path.is_file():
                return f"{path}: missing"
            if file_digest(path) != expected:
                return f"{path}: checksum does not match run.json"
        return None

    def _set_aside(self, run_dir: Path, problem: str) -> None:
        """A damaged run counts as absent (its number is trained again) but is kept for inspection."""
        from kaggle_pipeline.progress import say

        aside = self.runs_dir / f".corrupt-{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        os.replace(run_dir, aside)
        say(f"store: {problem}; run set aside as {aside.name} and will be trained again")

    def seal_run(self, temporary: Path, record: dict) -> None:
        """Write run.json last, listing the checksum of every file already in the run folder."""
        record["files"] = {path.name: file_digest(path) for path in sorted(temporary.iterdir())
                           if path.is_file() and path.name != "run.json"}
        atomic_write_json(temporary / "run.json", record)

    def unfinished_run_numbers(self) -> list[int]:
        """Runs with a temporary folder (``begin_run``): under way, or left by a killed ensemble."""
        folders = self.runs_dir.glob(".run-*.tmp-*") if self.runs_dir.is_dir() else []
        return sorted(int(folder.name.split(".")[1].split("-")[1]) for folder in folders)

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

    def lock(self, stage: str) -> "StoreLock":
        return StoreLock(self.root, stage).acquire()

    def load_predictions(self, record: dict) -> dict[str, np.ndarray]:
        path = self.run_dir(record) / "predictions.npz"
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return {key: arrays[key] for key in arrays.files}
        except (OSError, ValueError) as error:
            raise PipelineError(f"{path}: cannot read run predictions ({error})") from None


class StoreLock:
    """One writer per store: an exclusive ``flock`` on ``<store>/.lock``, which names its holder.

    The kernel drops the lock when the holder exits or is killed, so a lock left by a dead process is taken
    over without any guessing about stale pids.
    """

    def __init__(self, root: Path, stage: str):
        self.path = Path(root) / ".lock"
        self.stage = stage
        self._descriptor: int | None = None

    def acquire(self) -> "StoreLock":
        _make_folder(self.path.parent)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 400).decode("utf-8", "replace").strip() or "unknown process"
            os.close(descriptor)
            raise PipelineError(f"{self.path.parent}: in use by another kaggle_pipeline process ({holder}); "
                                "wait for it to finish or stop it") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"pid {os.getpid()}, stage {self.stage}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self._descriptor = descriptor
        return self

    def release(self) -> None:
        if self._descriptor is not None:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            os.close(self._descriptor)
            self._descriptor = None

    def __enter__(self) -> "StoreLock":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
