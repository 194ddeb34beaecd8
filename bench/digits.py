"""Does a tiny competition train enough by default? scikit-learn's 8x8 digits through the real command line.

    .venv/bin/python bench/digits.py [--out data/digits] [--work /tmp/digits-bench] [-- extra 'all' options]

Makes a 1,437-image competition from ``sklearn.datasets.load_digits`` (offline: the data ships with
scikit-learn; 1,797 8x8 images of values 0..16, scaled to 0..255), holding out 360 images, stratified, as the
test set with an answer key: the npy layout (train_x.npy, train_y.npy, test_x.npy, sample_submission.csv
``id,label``, solution.csv). Then it scores a logistic regression on the same split (the linear baseline the
pipeline should at least match), runs ``python -m kaggle_pipeline all`` with the given options (none: the
quick preset) into a fresh models/ and submissions/ folder, and prints the submission's score on the answer
key, its ratio to the baseline, the search trials, the threshold and the runs' validation accuracies.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.store import RunStore, SubmissionStore

TEST_IMAGES = 360
SPLIT_SEED = 0


def digits_split():
    """The 1,437 training and 360 test images (uint8, 8x8) and their labels, always the same split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return train_test_split(images, digits.target.astype(np.int64), test_size=TEST_IMAGES,
                            stratify=digits.target, random_state=SPLIT_SEED)


def write_digits_competition(folder: Path) -> None:
    x_train, x_test, y_train, y_test = digits_split()
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "train_x.npy", x_train)
    np.save(folder / "train_y.npy", y_train)
    np.save(folder / "test_x.npy", x_test)
    ids = np.arange(1, len(x_test) + 1)
    pd.DataFrame({"id": ids, "label": 0}).to_csv(folder / "sample_submission.csv", index=False)
    pd.DataFrame({"id": ids, "label": y_test}).to_csv(folder / "solution.csv", index=False)


def logistic_regression_score() -> float:
    from sklearn.linear_model import LogisticRegression

    x_train, x_test, y_train, y_test = digits_split()
    model = LogisticRegression(max_iter=5000)
    model.fit(x_train.reshape(len(x_train), -1) / 255.0, y_train)
    return float(np.mean(model.predict(x_test.reshape(len(x_test), -1) / 255.0) == y_test))


def submission_score(submission: Path, solution: Path) -> float:
    written = pd.read_csv(submission, dtype=str)
    truth = pd.read_csv(solution, dtype=str)
    merged = truth.merge(written, on="id", suffixes=("_true", "_predicted"))
    if len(merged) != len(truth):
        raise SystemExit(f"{submission}: does not cover every test id")
    return float(np.mean(merged["label_true"] == merged["label_predicted"]))


def summary(store: Path) -> list[str]:
    """The search trials' and the runs' validation accuracies, and the epochs they trained."""
    lines = []
    runs_store = RunStore(store)
    trials = runs_store.read_trials()
    results = [trial.result for trial in trials.records]
    accuracies = [f"{result['validation_accuracy']:.3f}" if "validation_accuracy" in result else "failed"
                  for result in results]
    epochs = sorted({result.get("epochs", trials.settings["epochs"]) for result in results})
    lines.append(f"search trials: {', '.join(accuracies)} ({'/'.join(map(str, epochs))} epoch(s) each)")
    ensemble = runs_store.ensemble_settings()
    runs = runs_store.run_records(repair=False)
    lines.append(f"threshold {ensemble['threshold']:.4f}; runs ({ensemble['epochs']} epoch(s) each): "
                 + ", ".join(f"{run['validation_accuracy']:.3f}{' kept' if run.get('kept') else ''}" for run in runs))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/digits"), help="competition folder (default: %(default)s)")
    parser.add_argument("--work", type=Path, help="where models/ and submissions/ go (default: a new temporary folder)")
    parser.add_argument("extra", nargs="*", help="options for 'python -m kaggle_pipeline all', after --")
    args = parser.parse_args()
    write_digits_competition(args.out)
    baseline = logistic_regression_score()
    print(f"logistic regression (pixels / 255, lbfgs): {baseline:.4f} on the {TEST_IMAGES} test images")
    work = args.work or Path(tempfile.mkdtemp(prefix="digits-bench-"))
    command = [sys.executable, "-m", "kaggle_pipeline", "all", "--data", str(args.out), "--name", "digits",
               "--models-dir", str(work / "models"), "--submissions-dir", str(work / "submissions"), *args.extra]
    print("$ " + " ".join(command), flush=True)
    started = time.perf_counter()
    finished = subprocess.run(command)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        print(f"the pipeline failed (exit {finished.returncode})")
        return 1
    score = submission_score(SubmissionStore(work / "submissions", "digits").latest_csv, args.out / "solution.csv")
    for line in summary(work / "models" / "digits"):
        print(line)
    print(f"pipeline: {score:.4f} on the answer key in {seconds / 60:.1f} min; "
          f"{score / baseline:.3f} x logistic regression ({baseline:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
