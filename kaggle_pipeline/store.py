"""Files on disk between stages: atomic writes and the per-competition run store.

Layout of ``models/<competition>/``::

    store.json          what data the store belongs to (fingerprint, classes, image shape) and its metric
    split.npz           the validation split, fixed for every search trial and every run
    folds.npz           only with ``ensemble --folds K``: each labelled image's fold (0..K-1), fixed per store
    cache/              parsed competition arrays, keyed by the source files
    search/trials.json  hyperopt trial documents, saved after every evaluation
    search/trials.csv   the same as a table
    best_params.json    the best trial's parameters and validation accuracy (and score by the store's metric)
    ensemble.json       the settings of the last ensemble invocation (threshold in the store's metric, N)
    runs/run-0001/      one retrain run: run.json, history.csv, predictions.npz, model.keras
    stack/              the VGG19 -> RandomForest voter (kaggle_pipeline.stack)
    tensorboard/        per-run TensorBoard logs, only with --tensorboard (TENSORBOARD=1)

and of ``submissions/<competition>/`` (``SubmissionStore``)::

    submission-<stamp>.csv, submission-<stamp>.json    each submission and its summary
    latest.csv, latest.json                            copies of the newest

This module is the one place that names these files: every other module asks ``RunStore`` or
``SubmissionStore`` for a path and reads a record through the typed classes below (``Run``, ``BestParams``,
...), so the format lives here once, versioned by ``STORE_FORMAT`` (written in ``store.json``; a store written
by a newer format is refused in one line rather than misread).

A run directory is written under a temporary name and renamed into place, so a run
directory either exists complete or not at all. Its ``run.json`` lists the SHA-256 of every other file in
it; a run whose files do not match (a disk error, a hand edit) is moved aside as ``runs/.corrupt-run-NNNN-*``,
reported, and trained again. ``run.json`` also carries the SHA-256 of its own content (``record_sha256``),
so a hand edit of the record itself is caught the same way. Only folders named exactly ``run-NNNN`` are
runs (``run-0001.bak`` or ``run-old`` are left alone and never voted), and a run made from other data
(its fingerprint differs from ``store.json``'s) is set aside like a damaged one.

Every JSON file is validated when read (``read_record``: a JSON object, the keys each reader needs, of the
right types and in range), so a file damaged or edited by hand is one line naming it and what to do, never a
traceback or a wrong vote. Nothing inside the store is followed through a symbolic link: files are read with
``O_NOFOLLOW`` (kaggle_pipeline.files), ``.lock`` is opened the same way, and a store whose folders are links
or are not folders is refused (``check_layout``). ``.lock`` is held (``flock``) by the one process writing
to the store; that process first removes the temporary files a killed write left behind.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

import numpy as np

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import first_line, load_arrays, open_regular, read_bytes
from kaggle_pipeline.metrics import METRICS

logger = logging.getLogger(__name__)

# The layout and record format this code writes and reads. Stores written before the number existed (no
# "format" in store.json) are format 1; a store with a larger number was written by newer code and is refused.
STORE_FORMAT = 1


# Fault injection for tests/test_reliability.py: with KAGGLE_PIPELINE_KILL_DURING_WRITE=<file name> the
# process SIGKILLs itself when the temporary copy of that file is half written, as a power cut would.
KILL_DURING_WRITE = "KAGGLE_PIPELINE_KILL_DURING_WRITE"


def _die_if_asked(path: Path, handle) -> None:
    """After the writer is done but before the temporary file is closed: cut it to half and die."""
    if os.environ.get(KILL_DURING_WRITE) == path.name:
        handle.flush()
        handle.truncate(handle.tell() // 2)
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write(path: Path, write) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, then put it in place whole (fsync, rename)."""
    path = Path(path)
    _make_folder(path.parent)
    descriptor, temporary = _temporary_file(path, ".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            _die_if_asked(path, handle)
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
    """The arrays streamed into the temporary file: never a second copy of them in memory."""
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path, follow_links=False) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


# JSON files are small; a multi-megabyte one is not ours (trials.json of a long search is well under this).
MAX_JSON_BYTES = 64 << 20


def read_json(path: Path, follow_links: bool = False):
    """A JSON file of the store (never followed through a link), or of the user's with ``follow_links``."""
    try:
        return json.loads(read_bytes(path, follow_links=follow_links, limit=MAX_JSON_BYTES).decode("utf-8"),
                          parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise PipelineError(f"{path}: not valid JSON ({first_line(error)})") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


# Records: what each JSON file of the store must hold -------------------------------------------------
# A schema maps a key to its kind; a key ending in "?" may be absent (or null). Kinds:
#   "str", "bool", "dict", "list", "int" (any integer), "count" (an integer >= 1), "number" (finite),
#   "fraction" (a finite number in [0, 1]), or a tuple of the allowed strings.
# ``metric``: the store's metric (kaggle_pipeline.metrics); absent in stores made before metrics: accuracy.
# Every finished run and trial records its validation accuracy; where the metric is another, also
# ``validation_score`` (that metric's value) and ``metric``. A threshold is the metric's: above 1 for logloss.
MANIFEST = {"format?": "count", "fingerprint": "str", "classes?": "list", "image_shape?": "list", "image_size?": "count",
            "metric?": tuple(METRICS), "skip_unreadable?": "bool", "left_out?": "list"}
BEST_PARAMS = {"params": "dict", "validation_accuracy": "fraction", "trial?": "count", "seed?": "int",
               "metric?": tuple(METRICS), "validation_score?": "number"}
ENSEMBLE = {"threshold": "number", "folds?": "count", "n?": "count", "max_runs?": "count", "epochs?": "count", "seed?": "int",
            "params?": "dict", "stop_reason?": "str", "metric?": tuple(METRICS), "budget?": "dict", "recipes?": "list"}
RUN = {"run": "count", "status": ("done", "aborted", "failed"), "seed?": "int", "kept?": "bool", "params?": "dict",
       "epochs?": "count", "files?": "dict", "fingerprint?": "str", "validation_accuracy?": "fraction",
       "history?": "dict", "seconds?": "number", "threshold?": "number", "metric?": tuple(METRICS),
       "validation_score?": "number", "fold?": "int"}
TRIALS = {"settings": "dict", "trials": "list"}
TRIAL = {"tid": "int", "state": "int", "result": "dict"}
SUBMISSION = {"submission": "str", "runs_voted": "count", "ensemble_validation_accuracy": "fraction",
              "local_score?": "number", "vote?": "str", "metric?": tuple(METRICS),
              "ensemble_validation_score?": "number", "format?": ("label", "binary_probability", "class_probabilities", "ranked_labels"),
              "cutoffs?": "list"}
STACK = {"weights": "str", "fingerprint": "str", "files?": "dict", "size?": "count", "trees?": "count",
         "validation_accuracy?": "fraction"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_KINDS = {
    "str": lambda value: isinstance(value, str),
    "bool": lambda value: isinstance(value, bool),
    "dict": lambda value: isinstance(value, dict),
    "list": lambda value: isinstance(value, list),
    "int": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "count": lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 1,
    "number": _is_number,
    "fraction": lambda value: _is_number(value) and 0 <= value <= 1,
}


def record_problem(record, schema: dict) -> str | None:
    """What is wrong with ``record`` against ``schema``, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object, found {type(record).__name__}"
    for key, kind in schema.items():
        optional = key.endswith("?")
        key = key.rstrip("?")
        if key not in record or (optional and record[key] is None):
            if optional:
                continue
            return f"no {key!r}"
        value = record[key]
        valid = value in kind if isinstance(kind, tuple) else _KINDS[kind](value)
        if not valid:
            expected = " or ".join(map(repr, kind)) if isinstance(kind, tuple) else f"a {kind}"
            return f"{key!r} is {json.dumps(value)[:40]}, expected {expected}"
    return None


def read_record(path: Path, schema: dict, remedy: str):
    """A store JSON file, validated against ``schema``; a bad one is one line naming it and ``remedy``."""
    record = read_json(path)
    problem = record_problem(record, schema)
    if problem:
        raise PipelineError(f"{path}: damaged or edited by hand ({problem}); {remedy}")
    return record


# What a finished trial's result must hold (a failed one needs only its status).
TRIAL_OK = {"validation_accuracy": "fraction", "params": "dict", "seed": "int"}
TRIALS_REMEDY = "restore it, or remove the search folder to search again"


def trial_problem(doc) -> str | None:
    """What is wrong with one trial document of search/trials.json, or None."""
    problem = record_problem(doc, TRIAL)
    if problem:
        return problem
    result = doc["result"]
    if result.get("status") not in ("ok", "fail"):
        return f"status {result.get('status')!r}"
    return record_problem(result, TRIAL_OK) if result["status"] == "ok" else None


def read_trials(path: Path) -> "SearchTrials":
    """search/trials.json (settings, trials), every trial document validated."""
    return SearchTrials.from_dict(read_json(path), str(path), TRIALS_REMEDY)


# The store's JSON records other than runs and trials: (schema, what to do when one is damaged).
RECORD_FILES = {
    "best_params.json": (BEST_PARAMS, "run 'make search' again to rewrite it"),
    "ensemble.json": (ENSEMBLE, "run 'make ensemble' again to rewrite it"),
    "stack/stack.json": (STACK, "run 'make stack' again"),
}


# Typed records ----------------------------------------------------------------------------------
class Record:
    """One JSON file's record: validated against its ``SCHEMA`` when made, and written back unchanged.

    The whole JSON object is kept (``to_dict``), so keys this code does not know (written by a newer minor
    version, or extras such as ``versions``) survive a read and write; the keys readers rely on are typed
    properties. ``Record.from_dict(record.to_dict()) == record``.
    """

    SCHEMA: dict = {}

    def __init__(self, data: dict):
        self._data = data

    @classmethod
    def from_dict(cls, data, where: str = "record", remedy: str = ""):
        problem = record_problem(data, cls.SCHEMA)
        if problem:
            raise PipelineError(f"{where}: damaged or edited by hand ({problem})" + (f"; {remedy}" if remedy else ""))
        return cls(dict(data))

    def to_dict(self) -> dict:
        return dict(self._data)

    def get(self, key: str, default=None):
        return self._data.get(key, default)

    def __getitem__(self, key: str):
        return self._data[key]

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._data == self._data

    __hash__ = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


def run_score(record: dict, metric: str = "accuracy") -> float | None:
    """A run record's validation score by ``metric``: its accuracy, or the score it recorded for that metric."""
    if metric == "accuracy":
        return record.get("validation_accuracy")
    return record.get("validation_score") if record.get("metric") == metric else None


class Run(Record):
    """``runs/run-NNNN/run.json``: one retrain run (kept, rejected, aborted or failed)."""

    SCHEMA = RUN
    PREDICTIONS = "predictions.npz"
    MODEL = "model.keras"

    @property
    def number(self) -> int:
        return self._data["run"]

    @property
    def status(self) -> str:
        return self._data["status"]

    @property
    def fold(self) -> int | None:
        """The fold the run held out (``ensemble --folds``): its predictions' validation rows are that fold's
        images, in the order of ``RunStore.read_folds().members(fold)``; None: the fixed split's validation."""
        return self._data.get("fold")

    def score(self, metric: str = "accuracy") -> float | None:
        return run_score(self._data, metric)

    def has_file(self, name: str) -> bool:
        """Whether the run holds ``name``. ``files`` lists (with checksums, verified by ``run_records``) every
        file of a run written since checksums; older runs hold predictions when done, a model when kept."""
        files = self._data.get("files")
        if files is not None:
            return name in files
        if name == self.PREDICTIONS:
            return self.status == "done"
        return name == self.MODEL and bool(self._data.get("kept"))

    def missing_for_kept(self, need_model: bool = False) -> list[str]:
        """The files a kept run must have that this one lacks: its predictions (to vote) and, where the caller
        loads the network itself (``need_model``: bench/tta.py), its model; only runs kept when trained saved one."""
        needed = [self.PREDICTIONS] + ([self.MODEL] if need_model else [])
        return [name for name in needed if not self.has_file(name)]

    def passes(self, threshold: float, metric: str = "accuracy") -> bool:
        """A finished run (not aborted, not failed) whose validation score by ``metric`` reaches ``threshold``."""
        return self.status == "done" and METRICS[metric].passes(self.score(metric), threshold)

    def is_kept(self, threshold: float, metric: str = "accuracy", need_model: bool = False) -> bool:
        """THE rule: the run passes the threshold in force and holds the files a kept run is used through, so a
        lowered threshold never keeps a run without them."""
        return self.passes(threshold, metric) and not self.missing_for_kept(need_model)


def kept_runs(records: list[dict], threshold: float, metric: str = "accuracy", need_model: bool = False) -> list[dict]:
    """The records of the kept runs (``Run.is_kept``), in order; a run that passes the threshold but lacks a
    needed file is left out with one line saying so."""
    kept = []
    for record in records:
        run = Run(record)
        if run.is_kept(threshold, metric, need_model):
            kept.append(record)
        elif run.passes(threshold, metric):
            missing = " and ".join(run.missing_for_kept(need_model))
            logger.info(f"store: run {run.number} passes the threshold but has no {missing} (it was not kept when "
                        "it was trained); left out")
    return kept


class Manifest(Record):
    """``store.json``."""

    SCHEMA = MANIFEST

    @property
    def format(self) -> int:
        return self._data.get("format") or 1

    @property
    def fingerprint(self) -> str:
        return self._data["fingerprint"]

    @property
    def metric(self) -> str:
        return self._data.get("metric") or "accuracy"


class BestParams(Record):
    """``best_params.json``: the best search trial."""

    SCHEMA = BEST_PARAMS

    @property
    def params(self) -> dict:
        return self._data["params"]


class EnsembleSettings(Record):
    """``ensemble.json``: the last ensemble call's settings and why it stopped."""

    SCHEMA = ENSEMBLE

    @property
    def threshold(self) -> float:
        return float(self._data["threshold"])

    @property
    def folds(self) -> int | None:
        """K of ``ensemble --folds K``; None: runs validate on the fixed split."""
        return self._data.get("folds")


class Folds:
    """``folds.npz``: a stratified, seeded assignment of every labelled image (train and validation of the fixed
    split alike) to one of ``k`` folds. Run with fold ``f`` trains on every image not in fold ``f`` and predicts
    fold ``f`` (its out-of-fold predictions) and the test set."""

    def __init__(self, assignment: np.ndarray, k: int, seed: int):
        self.assignment = np.asarray(assignment, dtype=np.int64)
        self.k = int(k)
        self.seed = int(seed)

    def members(self, fold: int) -> np.ndarray:
        """The indices (into the competition's training images) of fold ``fold``, ascending."""
        return np.flatnonzero(self.assignment == fold)

    def training(self, fold: int) -> np.ndarray:
        """The indices a run holding out ``fold`` trains on, ascending."""
        return np.flatnonzero(self.assignment != fold)


class StackRecord(Record):
    """``stack/stack.json``: the stacker, written last (its presence means the stack is complete)."""

    SCHEMA = STACK


class SubmissionSummary(Record):
    """``submissions/<competition>/submission-<stamp>.json`` and ``latest.json``."""

    SCHEMA = SUBMISSION

    @property
    def metric(self) -> str:
        return self._data.get("metric") or "accuracy"

    @property
    def format(self) -> str | None:
        return self._data.get("format")


class TrialRecord(Record):
    """One hyperopt trial document of ``search/trials.json`` (``tid`` from 0; ``result`` holds the outcome)."""

    SCHEMA = TRIAL

    @classmethod
    def from_dict(cls, data, where: str = "trial", remedy: str = ""):
        problem = trial_problem(data)
        if problem:
            raise PipelineError(f"{where}: damaged or edited by hand ({problem})" + (f"; {remedy}" if remedy else ""))
        return cls(dict(data))

    @property
    def number(self) -> int:
        """The trial's number as the logs and trials.csv give it (from 1)."""
        return self._data["tid"] + 1

    @property
    def result(self) -> dict:
        return self._data["result"]

    @property
    def ok(self) -> bool:
        return self.result["status"] == "ok"

    def table_row(self) -> dict:
        """The trial's row of trials.csv."""
        result = self.result
        return {
            "trial": self.number,
            "status": result.get("status"),
            "validation_accuracy": result.get("validation_accuracy", ""),
            **({"metric": result["metric"], "validation_score": result.get("validation_score", "")}
               if "metric" in result else {}),
            "seconds": result.get("seconds", ""),
            "seed": result.get("seed", ""),
            **dict(sorted(result.get("params", {}).items())),  # one column order whichever search wrote them
            "error": result.get("error", ""),
        }


class SearchTrials(Record):
    """``search/trials.json``: the search's settings and its finished trials (hyperopt documents, in order).
    ``saved["trials"]`` is the list of documents as stored; ``records`` the same as ``TrialRecord``."""

    SCHEMA = TRIALS

    @classmethod
    def from_dict(cls, data, where: str = "search/trials.json", remedy: str = TRIALS_REMEDY):
        trials = super().from_dict(data, where, remedy)
        for number, doc in enumerate(trials["trials"]):
            problem = trial_problem(doc)
            if problem:
                raise PipelineError(f"{where}: damaged or edited by hand (trial {number + 1}: {problem}); {remedy}")
        return trials

    @classmethod
    def of(cls, settings: dict, trials: list) -> "SearchTrials":
        """Settings and trials (``TrialRecord`` or documents), validated."""
        docs = [trial.to_dict() if isinstance(trial, TrialRecord) else dict(trial) for trial in trials]
        return cls.from_dict({"settings": dict(settings), "trials": docs}, "trials to write")

    @property
    def settings(self) -> dict:
        return self._data["settings"]

    @property
    def records(self) -> list[TrialRecord]:
        return [TrialRecord(doc) for doc in self._data["trials"]]

    def table(self) -> str:
        """trials.csv: one row per trial."""
        import pandas as pd

        return pd.DataFrame([trial.table_row() for trial in self.records]).to_csv(index=False)


def record_digest(record: dict) -> str:
    """The SHA-256 of a run record without its own digest: covers run.json itself."""
    content = {key: value for key, value in record.items() if key != "record_sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=_json_default).encode()).hexdigest()


def read_arrays(path: Path, expected: dict[str, tuple[str, int | None]], remedy: str) -> dict[str, np.ndarray]:
    """An ``.npz`` of the store holding ``expected`` arrays: name -> (dtype kinds, ndim or None)."""
    try:
        arrays = load_arrays(path, follow_links=False)
    except PipelineError as error:
        raise PipelineError(f"{error}; {remedy}") from None
    for name, (kinds, ndim) in expected.items():
        array = arrays.get(name)
        if array is None or array.dtype.kind not in kinds or (ndim is not None and array.ndim != ndim):
            found = "missing" if array is None else f"dtype {array.dtype}, shape {array.shape}"
            raise PipelineError(f"{path}: damaged or edited by hand (array {name!r} {found}); {remedy}")
    return arrays


# Temporary files of atomic writes: .<name>.<8 characters from mkstemp>.tmp
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(folder: Path) -> list[str]:
    """Delete the temporary files a killed atomic write left in ``folder`` (only ours, only regular files).
    Call it only while holding the store's lock: a live writer's temporary file looks the same."""
    removed = []
    if folder.is_dir() and not folder.is_symlink():
        for path in folder.iterdir():
            if _TEMPORARY.fullmatch(path.name) and stat.S_ISREG(path.lstat().st_mode):
                path.unlink()
                removed.append(path.name)
    return removed


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


def arrays_cache_path(cache_dir: Path, key: str) -> Path:
    """The parsed competition arrays cached under ``cache_dir`` (the store's ``cache/``) for ``key`` (a digest of
    the source files, layout and image size: kaggle_pipeline.data.competition)."""
    return Path(cache_dir) / f"arrays-{key}.npz"


def features_cache_path(cache_dir: Path, key: str) -> Path:
    """The VGG19 features cached under ``cache_dir`` for ``key`` (data, weights and size: kaggle_pipeline.stack)."""
    return Path(cache_dir) / f"vgg19-{key}.npz"


def save_arrays_cache(path: Path, x_train: np.ndarray, train_labels: np.ndarray, x_test: np.ndarray,
                      left_out: np.ndarray) -> None:
    atomic_save_npz(path, x_train=x_train, train_labels=train_labels, x_test=x_test, left_out=left_out)


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
    def folds_path(self) -> Path:
        return self.root / "folds.npz"

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

    @property
    def trials_path(self) -> Path:
        return self.search_dir / "trials.json"

    @property
    def trials_table_path(self) -> Path:
        return self.search_dir / "trials.csv"

    @property
    def stack_dir(self) -> Path:
        return self.root / "stack"

    @property
    def stack_record_path(self) -> Path:
        return self.stack_dir / "stack.json"

    @property
    def stack_predictions_path(self) -> Path:
        return self.stack_dir / "predictions.npz"

    @property
    def stack_forest_path(self) -> Path:
        return self.stack_dir / "forest.joblib"

    def arrays_cache_path(self, key: str) -> Path:
        return arrays_cache_path(self.cache_dir, key)

    def features_cache_path(self, key: str) -> Path:
        return features_cache_path(self.cache_dir, key)

    def run_record_path(self, record: dict) -> Path:
        return self.run_dir(record) / self.RUN_RECORD

    def predictions_path(self, record: dict) -> Path:
        return self.run_dir(record) / Run.PREDICTIONS

    def model_path(self, record: dict) -> Path:
        return self.run_dir(record) / Run.MODEL

    # The store's shape ------------------------------------------------------------
    FOLDERS = ("search", "runs", "cache", "stack", "tensorboard")
    FILES = ("store.json", "split.npz", "folds.npz", "best_params.json", "ensemble.json", ".lock")

    def check_layout(self) -> None:
        """Refuse a store whose folder, subfolders or files are not what the pipeline made (a link, a file
        where a folder belongs, ...): the pipeline reads and writes its own files, never through a link."""
        if not self.root.exists() and not self.root.is_symlink():
            return
        if not self.root.is_dir():
            raise PipelineError(f"{self.root}: the run store is not a folder; move it away or use another --name")
        for name in self.FOLDERS + self.FILES:
            path = self.root / name
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:
                continue
            except OSError as error:
                raise PipelineError(f"{path}: cannot read ({error.strerror})") from None
            wanted, test = ("a folder", stat.S_ISDIR) if name in self.FOLDERS else ("a regular file", stat.S_ISREG)
            if stat.S_ISLNK(mode) or not test(mode):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "not " + wanted
                raise PipelineError(f"{path}: is {what}; the run store's {name} must be {wanted} made by the "
                                    "pipeline (move it away or use another --name)")

    def read_record_file(self, relative: str) -> dict | None:
        """One of RECORD_FILES, validated; None when it does not exist yet."""
        path = self.root / relative
        if not path.exists() and not path.is_symlink():
            return None
        schema, remedy = RECORD_FILES[relative]
        record = read_record(path, schema, remedy)
        if relative == "ensemble.json":
            # A threshold is the store's metric's: a fraction, a kappa from -1, or for logloss any number >= 0.
            metric = METRICS[record.get("metric") or self.metric]
            threshold = record["threshold"]
            if not metric.reachable(threshold):
                raise PipelineError(f"{path}: damaged or edited by hand ('threshold' is {json.dumps(threshold)}, "
                                    f"expected a validation {metric.name} {metric.score_range}); {remedy}")
        return record

    def best_params(self) -> BestParams | None:
        record = self.read_record_file("best_params.json")
        return None if record is None else BestParams(record)

    def ensemble_settings(self) -> EnsembleSettings | None:
        record = self.read_record_file("ensemble.json")
        return None if record is None else EnsembleSettings(record)

    def stack_record(self) -> StackRecord | None:
        record = self.read_record_file("stack/stack.json")
        return None if record is None else StackRecord(record)

    # Writing the records: each stage builds the typed record, the store puts it in its file --------------
    def write_best_params(self, best: BestParams) -> None:
        atomic_write_json(self.best_params_path, BestParams.from_dict(best.to_dict(), "best_params to write").to_dict())

    def write_ensemble_settings(self, settings: EnsembleSettings) -> None:
        atomic_write_json(self.ensemble_path,
                          EnsembleSettings.from_dict(settings.to_dict(), "ensemble settings to write").to_dict())

    def read_trials(self) -> SearchTrials | None:
        """search/trials.json, validated; None before the first trial."""
        if not self.trials_path.exists() and not self.trials_path.is_symlink():
            return None
        return read_trials(self.trials_path)

    def write_trials(self, trials: SearchTrials) -> None:
        """search/trials.json, then the same as a table (trials.csv)."""
        atomic_write_json(self.trials_path, trials.to_dict())
        atomic_write_text(self.trials_table_path, trials.table())

    def write_split(self, **arrays: np.ndarray) -> None:
        atomic_save_npz(self.split_path, **arrays)

    FOLDS_REMEDY = "restore it, or use another --name (the store's runs were trained on its folds)"

    def read_folds(self, count: int | None = None) -> Folds | None:
        """folds.npz, validated (``count``: the number of labelled images it must cover); None without folds."""
        if not self.folds_path.exists() and not self.folds_path.is_symlink():
            return None
        saved = read_arrays(self.folds_path, {"assignment": ("iu", 1), "k": ("iu", 0), "seed": ("iu", 0)},
                            self.FOLDS_REMEDY)
        assignment, k = saved["assignment"], int(saved["k"])
        if (not 2 <= k <= 20 or (count is not None and len(assignment) != count)
                or (len(assignment) and (assignment.min() < 0 or assignment.max() >= k))
                or len(np.unique(assignment)) != k):
            raise PipelineError(f"{self.folds_path}: damaged or edited by hand (its assignment does not put every "
                                f"labelled image in one of {k} non-empty folds); {self.FOLDS_REMEDY}")
        return Folds(assignment, k, int(saved["seed"]))

    def write_folds(self, folds: Folds) -> None:
        atomic_save_npz(self.folds_path, assignment=folds.assignment, k=np.int64(folds.k), seed=np.int64(folds.seed))

    def read_features(self, key: str) -> dict[str, np.ndarray] | None:
        """The cached VGG19 features (train, test) for ``key``; None when none are cached."""
        path = self.features_cache_path(key)
        if not path.exists() and not path.is_symlink():
            return None
        return read_arrays(path, {"train": ("f", 2), "test": ("f", 2)}, "computing them again")

    def write_features(self, key: str, train: np.ndarray, test: np.ndarray) -> None:
        atomic_save_npz(self.features_cache_path(key), train=train, test=test)

    def write_stack_files(self, validation: np.ndarray, test: np.ndarray, forest: bytes) -> dict[str, str]:
        """The stacker's predictions and forest; the old stack.json goes first (it would vouch for half-written
        files if this is interrupted). Returns the files' checksums for ``write_stack_record``."""
        _make_folder(self.stack_dir)
        self.stack_record_path.unlink(missing_ok=True)
        atomic_save_npz(self.stack_predictions_path, validation=validation, test=test)
        atomic_write_bytes(self.stack_forest_path, forest)
        return {path.name: file_digest(path) for path in (self.stack_predictions_path, self.stack_forest_path)}

    def write_stack_record(self, record: StackRecord) -> None:
        """stack.json, written last: its presence means the stack is complete."""
        atomic_write_json(self.stack_record_path, StackRecord.from_dict(record.to_dict(), "stack record to write").to_dict())

    def runs(self, repair: bool = True) -> list[Run]:
        return [Run(record) for record in self.run_records(repair=repair)]

    def check_files(self) -> None:
        """Validate every record the store holds, before a stage takes the lock and starts writing."""
        for relative in RECORD_FILES:
            self.read_record_file(relative)
        self.read_trials()

    # The data this store belongs to --------------------------------------------------
    def read_manifest(self) -> dict | None:
        if not self.manifest_path.exists() and not self.manifest_path.is_symlink():
            return None
        manifest = read_record(self.manifest_path, MANIFEST,
                               "restore it, or remove the store folder to start again (its runs were made for it)")
        if Manifest(manifest).format > STORE_FORMAT:
            raise PipelineError(f"{self.manifest_path}: store format {Manifest(manifest).format}, written by a newer "
                                f"kaggle_pipeline (this one reads format {STORE_FORMAT} and older); upgrade it, or use "
                                "another --name")
        return manifest

    def check_data(self, fingerprint: str) -> None:
        """Refuse data other than the store's; reads only."""
        manifest = self.read_manifest()
        if manifest is not None and manifest["fingerprint"] != fingerprint:
            raise PipelineError(
                f"{self.root}: this run store was made from other data "
                f"(fingerprint {manifest['fingerprint']}, the data given has {fingerprint}); "
                "use NAME=<another name> (--name) or remove the folder"
            )

    def bind(self, fingerprint: str, description: dict) -> None:
        """Record which data the store is made from, or refuse data that differs."""
        self.check_data(fingerprint)
        if self.read_manifest() is None:
            manifest = Manifest.from_dict({"format": STORE_FORMAT, "fingerprint": fingerprint, **description}, "store.json to write")
            atomic_write_json(self.manifest_path, manifest.to_dict())

    @property
    def metric(self) -> str:
        """The metric the store is judged by (store.json's ``metric``; accuracy for a store made before metrics)."""
        manifest = self.read_manifest()
        return "accuracy" if manifest is None else manifest.get("metric") or "accuracy"

    def fingerprint(self) -> str | None:
        manifest = self.read_manifest()
        return None if manifest is None else manifest["fingerprint"]

    # Runs --------------------------------------------------------------------------
    # Exactly these names: run-0001.bak or run-old are not runs (a copy would otherwise vote twice).
    RUN_NAME = re.compile(r"run-(\d{4,})")
    RUN_RECORD = "run.json"
    RUN_HISTORY = "history.csv"
    UNFINISHED_NAME = re.compile(r"\.run-(\d{4,})\.tmp-(\d+)")

    def run_folders(self) -> list[tuple[int, Path]]:
        if not self.runs_dir.is_dir():
            return []
        found = [(int(match.group(1)), path) for path in self.runs_dir.iterdir()
                 if (match := self.RUN_NAME.fullmatch(path.name))]
        return sorted(found)

    def run_records(self, repair: bool = True) -> list[dict]:
        """Every finished run (kept, rejected or failed) whose files match their checksums, oldest first.
        With ``repair`` a damaged run is also moved aside, so that its number is trained again; without it
        (submit, status, report only read) the run is skipped with a line saying so."""
        fingerprint = self.fingerprint()
        records = []
        for number, run_dir in self.run_folders():
            problem = None
            try:
                record = read_record(run_dir / self.RUN_RECORD, RUN, "")
                problem = self._record_problem(run_dir, number, record, fingerprint)
            except PipelineError as error:
                problem = str(error).removesuffix("; ")
            if problem:
                if repair:
                    self._set_aside(run_dir, problem)
                else:
                    logger.warning(f"store: {problem}; run skipped ('make ensemble' sets it aside and trains it again)")
                continue
            records.append(record)
        return records

    def _record_problem(self, run_dir: Path, number: int, record: dict, fingerprint: str | None) -> str | None:
        if "record_sha256" in record and record["record_sha256"] != record_digest(record):
            return f"{run_dir / 'run.json'}: its content does not match its own checksum (edited or damaged)"
        if record["run"] != number:
            return f"{run_dir / 'run.json'}: says run {record['run']}, but the folder is {run_dir.name}"
        if fingerprint is not None and record.get("fingerprint", fingerprint) != fingerprint:
            return f"{run_dir}: made from other data (fingerprint {record['fingerprint']}, the store's is {fingerprint})"
        if record["status"] != "failed" and not _is_number(record.get("validation_accuracy")):
            return f"{run_dir / 'run.json'}: no validation accuracy for a finished run"
        for metric, values in record.get("history", {}).items():
            if not isinstance(values, list) or not all(value is None or _is_number(value) for value in values):
                return f"{run_dir / 'run.json'}: history {metric!r} is not a list of numbers"
        for name, expected in record.get("files", {}).items():
            path = run_dir / name
            if "/" in name or not path.is_file() or path.is_symlink():
                return f"{path}: missing"
            if file_digest(path) != expected:
                return f"{path}: checksum does not match run.json"
        return None

    def _set_aside(self, run_dir: Path, problem: str) -> None:
        """A damaged run counts as absent (its number is trained again) but is kept for inspection."""
        aside = self.runs_dir / f".corrupt-{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        os.replace(run_dir, aside)
        logger.warning(f"store: {problem}; run set aside as {aside.name} and will be trained again")

    # A run's files, written into its temporary folder (begin_run), then sealed and committed
    def write_run_history(self, temporary: Path, table: str) -> None:
        atomic_write_text(temporary / self.RUN_HISTORY, table)

    def write_run_predictions(self, temporary: Path, validation: np.ndarray, test: np.ndarray) -> None:
        atomic_save_npz(temporary / Run.PREDICTIONS, validation=validation, test=test)

    def write_run_model(self, temporary: Path, model: bytes) -> None:
        atomic_write_bytes(temporary / Run.MODEL, model)

    def seal_run(self, temporary: Path, run: Run) -> Run:
        """Write run.json last, listing the checksum of every file already in the run folder, and its own;
        returns the record as written."""
        record = run.to_dict()
        record["files"] = {path.name: file_digest(path) for path in sorted(temporary.iterdir())
                           if path.is_file() and path.name != self.RUN_RECORD}
        record.pop("record_sha256", None)
        record["record_sha256"] = record_digest(record)
        sealed = Run.from_dict(record, f"{temporary / self.RUN_RECORD} to write")
        atomic_write_json(temporary / self.RUN_RECORD, sealed.to_dict())
        return sealed

    def unfinished_run_numbers(self) -> list[int]:
        """Runs with a temporary folder (``begin_run``): under way, or left by a killed ensemble."""
        return sorted(number for number, _ in self._unfinished_runs())

    def _unfinished_runs(self) -> list[tuple[int, Path]]:
        if not self.runs_dir.is_dir():
            return []
        return [(int(match.group(1)), path) for path in self.runs_dir.iterdir()
                if (match := self.UNFINISHED_NAME.fullmatch(path.name))]

    def remove_unfinished_runs(self) -> list[str]:
        """Delete temporary run folders left by a run that was killed mid-write (only those named like ours)."""
        removed = []
        for _, leftover in self._unfinished_runs():
            if leftover.is_symlink():
                leftover.unlink()
            else:
                shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover.name)
        return removed

    def next_run_number(self) -> int:
        return max((number for number, _ in self.run_folders()), default=0) + 1

    def begin_run(self, number: int) -> Path:
        """A fresh temporary folder for run ``number``; ``commit_run`` moves it into place."""
        temporary = self.runs_dir / f".run-{number:04d}.tmp-{os.getpid()}"
        shutil.rmtree(temporary, ignore_errors=True)
        _make_folder(self.runs_dir)
        temporary.mkdir()
        return temporary

    def commit_run(self, temporary: Path, number: int) -> Path:
        final = self.runs_dir / f"run-{number:04d}"
        if final.exists() or final.is_symlink():
            raise PipelineError(f"{final}: already exists; another process is writing to {self.runs_dir}")
        os.replace(temporary, final)
        return final

    def run_dir(self, record: dict) -> Path:
        return self.runs_dir / f"run-{record['run']:04d}"

    def lock(self, stage: str) -> "StoreLock":
        lock = StoreLock(self.root, stage).acquire()
        # The one writer now: what a killed write left behind is ours to remove.
        for folder in (self.root, self.search_dir, self.cache_dir, self.stack_dir):
            remove_stale_temporaries(folder)
        return lock

    def load_predictions(self, record: dict) -> dict[str, np.ndarray]:
        return read_arrays(self.predictions_path(record), {"validation": ("f", 2), "test": ("f", 2)},
                           "'make ensemble' sets the run aside and trains it again")


class SubmissionStore:
    """The submissions of one competition under ``submissions/<competition>/``."""

    LATEST_REMEDY = "run 'make submit' again"

    def __init__(self, submissions_dir: Path, name: str):
        self.folder = Path(submissions_dir) / name

    @property
    def latest_csv(self) -> Path:
        return self.folder / "latest.csv"

    @property
    def latest_json(self) -> Path:
        return self.folder / "latest.json"

    def new_stamp(self, now: float | None = None) -> str:
        """The time, to the second, naming a new submission's files; a second submission within the same
        second gets ``-2``, ``-3``..., so no earlier submission (perhaps the one uploaded) is overwritten."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        candidate, number = stamp, 1
        while any(path.exists() or path.is_symlink() for path in (self.stamped_csv(candidate), self.stamped_json(candidate))):
            number += 1
            candidate = f"{stamp}-{number}"
        return candidate

    def stamped_csv(self, stamp: str) -> Path:
        return self.folder / f"submission-{stamp}.csv"

    def stamped_json(self, stamp: str) -> Path:
        return self.folder / f"submission-{stamp}.json"

    def latest(self) -> SubmissionSummary | None:
        """The newest submission's summary, validated; None before the first (only reads)."""
        if not self.latest_json.exists() and not self.latest_json.is_symlink():
            return None
        return SubmissionSummary(read_record(self.latest_json, SUBMISSION, self.LATEST_REMEDY))

    def write(self, stamp: str, text: str, summary: SubmissionSummary) -> None:
        """The submission and its summary, then the latest copies: each file whole or not at all."""
        remove_stale_temporaries(self.folder)  # left by a killed submit; the caller holds the store's lock
        atomic_write_text(self.stamped_csv(stamp), text)
        atomic_write_text(self.latest_csv, text)
        atomic_write_json(self.stamped_json(stamp), summary.to_dict())
        atomic_write_json(self.latest_json, summary.to_dict())


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
        try:
            # Never through a link: a .lock pointing at a user's file would be truncated below.
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise PipelineError(f"{self.path}: is a symbolic link; remove it (the store's lock file is made "
                                    "by the pipeline)") from None
            if isinstance(error, IsADirectoryError):
                raise PipelineError(f"{self.path}: is a folder; remove it (the store's lock file is made by the "
                                    "pipeline)") from None
            raise _write_error(self.path, error) from None
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise PipelineError(f"{self.path}: is not a regular file; remove it (the store's lock file is made by "
                                "the pipeline)")
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
