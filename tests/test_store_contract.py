"""The store as the one contract between stages (issue 15): a store written by today's format resumes, submits and
reports; its records round-trip; report and status write nothing; the kept rule needs the run's files; no module
imports another's private names and no import cycle exists."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, write_csv_competition
from test_hostile_data import snapshot

from kaggle_pipeline.data import load_competition
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.store import (
    STORE_FORMAT,
    BestParams,
    EnsembleSettings,
    Manifest,
    Run,
    RunStore,
    SearchTrials,
    StackRecord,
    SubmissionStore,
    SubmissionSummary,
    TrialRecord,
    kept_runs,
    read_trials,
)

PACKAGE = Path(__file__).resolve().parent.parent / "kaggle_pipeline"

PARAMS = {"batch_size": 32, "conv1_dropout": 0.1, "conv1_filters": 4, "conv2_dropout": 0.1, "conv2_filters": 8,
          "conv3_filters": 0, "dense1_dropout": 0.1, "dense1_units": 16, "dense2_dropout": 0.1, "dense2_units": 16,
          "flip": False, "label_smoothing": 0.0, "learning_rate": 0.01, "optimizer": "adam", "rotate": 0.0,
          "schedule": "plateau", "translate": 0.0, "zoom": 0.0}
VERSIONS = {"keras": "3.15.0", "numpy": "2.4.6", "python": "3.11.7"}


# A store as the code before issue 15 wrote it (shapes copied from a real one made with
# 'search --space tiny --evals 1 --search-epochs 1' and 'ensemble --n 2 --epochs 1'), and as a store made before
# metrics existed: no "format" or "metric" in store.json, none in the ensemble's settings.
def _json(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_run(runs: Path, number: int, accuracy: float, status: str, kept: bool, files: dict[str, bytes | dict],
               fingerprint: str) -> None:
    folder = runs / f"run-{number:04d}"
    folder.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, dict):
            np.savez(folder / name, **content)
        else:
            (folder / name).write_bytes(content)
    record = {"epochs": 1, "executor": "local", "fingerprint": fingerprint, "finished": "2026-11-25T01:46:05+0000",
              "history": {"accuracy": [0.74], "epoch_images_per_second": [83.6], "epoch_seconds": [2.583],
                          "learning_rate": [0.01], "loss": [0.668], "val_accuracy": [accuracy], "val_loss": [0.562]}, "host": "vm", "images_per_second": 73.0,
              "kept": kept, "params": PARAMS, "precision": "float32", "run": number, "seconds": 2.96, "seed": 1000 + number,
              "started": "2026-11-25T01:45:59+0000", "status": status, "stopped_epoch": 1, "threshold": 0.5,
              "tta": "none", "validation_accuracy": accuracy, "versions": VERSIONS,
              "files": {name: _sha256(folder / name) for name in sorted(files)}}
    # run.json's own checksum, computed as that code did: the sorted JSON of the record without it.
    record["record_sha256"] = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    _json(folder / "run.json", record)


def write_old_store(root: Path) -> tuple[Path, Path]:
    """A competition and its store: run 1 kept (model saved), run 2 done below the threshold (predictions, no
    model), run 3 done below it with no predictions (as if lost), run 4 aborted. Returns (data, models dir)."""
    data = write_csv_competition(root / "pixels")
    competition = load_competition(data)
    fingerprint = competition.fingerprint()
    store = root / "models" / "pixels"
    count = len(competition.y_train)
    order = np.random.default_rng(0).permutation(count)
    validation, train = np.sort(order[:24]), np.sort(order[24:])
    store.mkdir(parents=True)
    np.savez(store / "split.npz", train=train, validation=validation, fraction=np.float64(0.1), seed=np.int64(0))
    _json(store / "store.json", {"classes": competition.classes, "fingerprint": fingerprint,
                                 "image_shape": list(competition.x_train.shape[1:]), "layout": "csv", "name": "pixels",
                                 "source": "pixels", "test_images": 60, "train_images": count, "versions": VERSIONS})
    _json(store / "best_params.json", {"epochs": 1, "fingerprint": fingerprint, "params": PARAMS, "seed": 1,
                                       "space": "tiny", "subset": 12000, "trial": 1, "trials": 1,
                                       "validation_accuracy": 0.6, "versions": VERSIONS,
                                       "written": "2026-11-25T01:45:56+0000"})
    # search/trials.json as hyperopt's documents were saved: one finished trial, one failed.
    misc = {"cmd": ["domain_attachment", "FMinIter_Domain"], "idxs": {"learning_rate": [0]}, "tid": 0,
            "vals": {"learning_rate": [0.01]}, "workdir": None}
    trial = {"book_time": "2026-11-25T01:45:50.100000", "exp_key": None, "misc": misc, "owner": None,
             "refresh_time": "2026-11-25T01:45:56.200000", "spec": None, "state": 2, "tid": 0, "version": 0,
             "result": {"epochs": 1, "images_per_second": 80.1, "loss": 0.4, "params": PARAMS, "precision": "float32",
                        "seconds": 5.2, "seed": 1, "status": "ok", "val_accuracy_by_epoch": [0.6],
                        "validation_accuracy": 0.6}}
    failed = {**trial, "misc": {**misc, "tid": 1}, "tid": 1,
              "result": {"error": "loss is NaN", "params": PARAMS, "seed": 2, "status": "fail"}}
    _json(store / "search" / "trials.json", {"settings": {"epochs": 1, "seed": 1, "space": "tiny", "subset": 12000},
                                             "trials": [trial, failed]})
    _json(store / "ensemble.json", {"abort_margin": 0.03, "epochs": 1, "executor": "local", "hours": None, "kept": 1,
                                    "max_runs": 4, "n": 1, "params": PARAMS, "seed": 1000, "stop_reason": "1 runs kept",
                                    "threshold": 0.5, "threshold_rule": "given", "tta": True})
    rng = np.random.default_rng(1)

    def predictions(rows):
        values = rng.random((rows, 3)).astype(np.float32)
        return values / values.sum(axis=1, keepdims=True)

    arrays = {"validation": predictions(len(validation)), "test": predictions(60)}
    runs = store / "runs"
    _write_run(runs, 1, 0.9, "done", True, {"history.csv": b"epoch,loss\n1,1.0\n", "model.keras": b"a model",
                                            "predictions.npz": arrays}, fingerprint)
    _write_run(runs, 2, 0.45, "done", False, {"history.csv": b"epoch,loss\n1,1.0\n", "predictions.npz": arrays},
               fingerprint)
    _write_run(runs, 3, 0.4, "done", False, {"history.csv": b"epoch,loss\n1,1.0\n"}, fingerprint)
    _write_run(runs, 4, 0.3, "aborted", False, {"history.csv": b"epoch,loss\n1,1.0\n"}, fingerprint)
    return data, root / "models"


def _cli(root: Path, stage: str, data: Path, *options: str):
    folders = {"submit": ["--submissions-dir", str(root / "submissions")],
               "status": ["--submissions-dir", str(root / "submissions")],
               "report": ["--submissions-dir", str(root / "submissions"), "--reports-dir", str(root / "reports")]}
    return run_cli(stage, "--data", str(data), "--models-dir", str(root / "models"), *folders.get(stage, []), *options,
                   cwd=root)


def test_a_store_written_before_the_contract_resumes_and_submits(tmp_path):
    data, models = write_old_store(tmp_path)
    ensemble = _cli(tmp_path, "ensemble", data, "--n", "1", "--epochs", "1", "--threshold", "0.5")
    assert ensemble.returncode == 0, ensemble.stderr
    assert "1/1 kept on disk after 4 attempt(s)" in ensemble.stderr  # resumed: nothing retrained
    assert sorted(path.name for path in (models / "pixels" / "runs").iterdir()) == [f"run-000{n}" for n in (1, 2, 3, 4)]

    submit = _cli(tmp_path, "submit", data, "--threshold", "0.5")
    assert submit.returncode == 0, submit.stderr
    latest = SubmissionStore(tmp_path / "submissions", "pixels").latest()
    assert latest["runs"] == [1] and Path(latest["submission"]).is_file()

    # A lowered threshold re-sorts the runs on disk: run 2 votes (its predictions are stored); run 3, which has
    # none, is left out with one line saying why, instead of failing the vote.
    lowered = _cli(tmp_path, "submit", data, "--threshold", "0.35")
    assert lowered.returncode == 0, lowered.stderr
    assert SubmissionStore(tmp_path / "submissions", "pixels").latest()["runs"] == [1, 2]
    missing = [line for line in lowered.stderr.splitlines() if "run 3 passes the threshold" in line]
    assert len(missing) == 1 and "predictions.npz" in missing[0]


def test_a_lowered_threshold_never_keeps_a_run_without_the_model_a_caller_loads(tmp_path, caplog):
    _, models = write_old_store(tmp_path)
    records = RunStore(models / "pixels").run_records(repair=False)
    assert [record["run"] for record in records] == [1, 2, 3, 4]  # all four read, checksums and all
    assert [record["run"] for record in kept_runs(records, 0.5)] == [1]
    assert [record["run"] for record in kept_runs(records, 0.35)] == [1, 2]  # voting needs predictions only
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.store"):
        # bench/tta.py loads each kept run's model: run 2 was rejected when trained and saved none.
        assert [record["run"] for record in kept_runs(records, 0.35, need_model=True)] == [1]
    assert any("run 2 passes the threshold but has no model.keras" in message for message in caplog.messages)
    assert not Run(records[3]).is_kept(0.0)  # aborted: never kept, whatever the threshold


def test_the_store_records_round_trip(tmp_path):
    _, models = write_old_store(tmp_path)
    store = models / "pixels"
    for record_class, path in ((Manifest, store / "store.json"), (BestParams, store / "best_params.json"),
                               (EnsembleSettings, store / "ensemble.json"), (Run, store / "runs/run-0001/run.json")):
        on_disk = json.loads(path.read_text())
        record = record_class.from_dict(on_disk, where=str(path))
        assert record.to_dict() == on_disk  # nothing lost, nothing added, whatever keys the writer knew
        assert record_class.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    trials_path = store / "search" / "trials.json"
    on_disk = json.loads(trials_path.read_text())
    trials = read_trials(trials_path)
    assert trials.to_dict() == on_disk and SearchTrials.from_dict(json.loads(json.dumps(trials.to_dict()))) == trials
    assert [(trial.number, trial.ok) for trial in trials.records] == [(1, True), (2, False)]
    assert TrialRecord.from_dict(trials.records[0].to_dict()) == trials.records[0]
    assert SearchTrials.of(trials.settings, trials.records) == trials
    assert Manifest.from_dict(json.loads((store / "store.json").read_text())).format == 1  # before the number: 1
    minimal = {StackRecord: {"weights": "none", "fingerprint": "f"},
               SubmissionSummary: {"submission": "s.csv", "runs_voted": 1, "ensemble_validation_accuracy": 0.5},
               Run: {"run": 2, "status": "failed"}}
    for record_class, data in minimal.items():
        assert record_class.from_dict(record_class.from_dict(data).to_dict()) == record_class.from_dict(data)
    with pytest.raises(PipelineError, match=r"run.json: damaged or edited by hand \('status' is \"lost\""):
        Run.from_dict({"run": 1, "status": "lost"}, where="run.json")


def test_the_store_writes_each_typed_record_and_reads_it_back(tmp_path):
    _, models = write_old_store(tmp_path)
    old = RunStore(models / "pixels")
    store = RunStore(tmp_path / "copy")
    best, settings, trials = old.best_params(), old.ensemble_settings(), old.read_trials()
    store.write_best_params(best)
    store.write_ensemble_settings(settings)
    store.write_trials(trials)
    assert (store.best_params(), store.ensemble_settings(), store.read_trials()) == (best, settings, trials)
    table = store.trials_table_path.read_text().splitlines()
    assert table[0].startswith("trial,status,validation_accuracy,seconds,seed,") and len(table) == 3
    files = store.write_stack_files(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32), b"a forest")
    stack = StackRecord.from_dict({"weights": "none", "fingerprint": "f", "size": 32, "trees": 3, "files": files})
    store.write_stack_record(stack)
    assert store.stack_record() == stack
    temporary = store.begin_run(1)
    store.write_run_history(temporary, "epoch,loss\n1,1.0\n")
    store.write_run_predictions(temporary, np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32))
    sealed = store.seal_run(temporary, Run.from_dict({"run": 1, "status": "done", "validation_accuracy": 0.5}))
    store.commit_run(temporary, 1)
    assert store.runs() == [sealed] and sealed.has_file(Run.PREDICTIONS) and not sealed.has_file(Run.MODEL)
    assert store.run_record_path(sealed.to_dict()).is_file()
    store.write_features("k", np.ones((2, 512), np.float32), np.ones((1, 512), np.float32))
    assert store.features_cache_path("k").name == "vgg19-k.npz" and store.read_features("k")["test"].shape == (1, 512)
    assert store.arrays_cache_path("k").name == "arrays-k.npz"
    # A record that does not hold what its readers need is refused before it is written.
    with pytest.raises(PipelineError, match="'validation_accuracy' is 1.5"):
        store.write_best_params(BestParams({"params": {}, "validation_accuracy": 1.5}))
    with pytest.raises(PipelineError, match="trial 1: status 'lost'"):
        SearchTrials.of({}, [{"tid": 0, "state": 2, "result": {"status": "lost"}}])
    assert store.best_params() == best


def test_a_store_from_a_newer_format_is_refused_in_one_line(tmp_path):
    data, models = write_old_store(tmp_path)
    manifest = models / "pixels" / "store.json"
    _json(manifest, {**json.loads(manifest.read_text()), "format": STORE_FORMAT + 1})
    before = snapshot(models)
    result = _cli(tmp_path, "submit", data)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {manifest}: store format {STORE_FORMAT + 1}")
    assert len(result.stderr.strip().splitlines()) == 1 and snapshot(models) == before


@pytest.mark.parametrize("made", [False, True], ids=["no store yet", "a store"])
def test_report_and_status_write_nothing_in_the_store(tmp_path, made):
    pytest.importorskip("matplotlib")
    if made:
        data, models = write_old_store(tmp_path)
        assert _cli(tmp_path, "submit", data, "--threshold", "0.5").returncode == 0
    else:
        data, models = write_csv_competition(tmp_path / "pixels"), tmp_path / "models"
    before = snapshot(models), snapshot(tmp_path / "submissions")
    status = _cli(tmp_path, "status", data)
    report = _cli(tmp_path, "report", data)
    assert (status.returncode, report.returncode) == ((0, 0) if made else (2, 2)), status.stderr + report.stderr
    if made:
        assert "1/1 kept" in status.stdout and (tmp_path / "reports" / "pixels" / "index.html").is_file()
    # Not a file, a folder, a lock or a cache entry made, changed or touched, in models/ or submissions/.
    assert (snapshot(models), snapshot(tmp_path / "submissions")) == before
    assert made or not models.exists()


# The package's own code ------------------------------------------------------------------------------
def _modules() -> dict[str, ast.Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = ast.parse(path.read_text(), filename=str(path))
    return modules


def _imports(module: ast.Module, name: str) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import of the package, at any depth (a function's too)."""
    found = []
    package = name if name in ("kaggle_pipeline", "kaggle_pipeline.data") else name.rpartition(".")[0]
    for node in ast.walk(module):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            if source.startswith("kaggle_pipeline"):
                found.append((source, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names if alias.name.startswith("kaggle_pipeline"))
    return found


def test_no_module_imports_another_modules_private_names():
    offences = [f"{name} imports {source}.{imported}" for name, module in _modules().items()
                for source, names in _imports(module, name) for imported in names
                if imported.startswith("_") and source != name and not source.startswith(name + ".")]
    assert offences == []


def test_the_package_has_no_import_cycle():
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, module in modules.items():
        for source, names in _imports(module, name):
            # "from kaggle_pipeline.data import x" may name a submodule x; otherwise the module itself.
            targets = [f"{source}.{imported}" for imported in names if f"{source}.{imported}" in modules] or [source]
            graph[name].update(target for target in targets if target in modules and target != name)
    # A package (its __init__) only re-exports: importing it is importing what it imports. So edges into a
    # package become edges into its imports, and the cycles looked for are between modules.
    packages = {name for name in modules if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()}

    def through_packages(targets, passed=frozenset()):
        expanded = set()
        for target in targets:
            if target in packages and target not in passed:
                expanded |= through_packages(graph[target], passed | {target})
            elif target not in packages:
                expanded.add(target)
        return expanded

    edges = {name: through_packages(graph[name]) - {name} for name in modules if name not in packages}

    def reachable(start):
        found, waiting = set(), list(edges[start])
        while waiting:
            node = waiting.pop()
            if node not in found:
                found.add(node)
                waiting.extend(edges.get(node, ()))
        return found

    in_cycles = sorted(name for name in edges if name in reachable(name))
    assert in_cycles == []


# Only store.py names the store's files and writes them ---------------------------------------------------
STORE_FILES = {"ensemble.json", "best_params.json", "trials.json", "trials.csv", "run.json", "stack.json",
               "latest.json", "latest.csv", "store.json", "split.npz", "predictions.npz", "model.keras",
               "history.csv", "forest.joblib"}
CACHE_PREFIXES = ("arrays-", "vgg19-")
WRITERS = {"atomic_write_json", "atomic_save_npz", "atomic_write"}


def _code_strings(module: ast.Module):
    """Every string constant of the code (f-strings' literal parts too), docstrings left out."""
    docstrings = {id(node.body[0].value) for node in ast.walk(module)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(module):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def _names_a_store_file(text: str) -> bool:
    """A path-like string (no spaces) that is, or ends in, one of the store's file names, or a cache file's prefix
    (an f-string's literal part: f"arrays-{key}.npz")."""
    if " " in text:
        return False  # a message or help text that mentions the file, not a path to it
    name = text.rpartition("/")[2]
    return name in STORE_FILES or name in CACHE_PREFIXES


def test_only_the_store_names_its_files():
    offences = []
    for folder in (PACKAGE, PACKAGE.parent / "bench"):
        for path in sorted(folder.rglob("*.py")):
            if path == PACKAGE / "store.py":
                continue
            for line, text in _code_strings(ast.parse(path.read_text(), filename=str(path))):
                if _names_a_store_file(text):
                    offences.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert offences == []


def test_only_the_store_writes_json_and_arrays():
    # Other modules write their own files (the report's pages) with atomic_write_text/bytes; the store's records
    # and arrays go through RunStore/SubmissionStore methods, so no other module imports these writers.
    offences = [f"{name} imports {source}.{imported}" for name, module in _modules().items() if name != "kaggle_pipeline.store"
                for source, names in _imports(module, name) for imported in names
                if source == "kaggle_pipeline.store" and imported in WRITERS]
    assert offences == []
