"""The quick preset on a small photo-like competition: Fashion-MNIST as RGB images of varying sizes around 64x64,
in the class-per-folder layout, scored against its answer key.

    .venv/bin/python bench/varied_sizes.py [--train 10000] [--test 2000] [--work /tmp/kaggle-pipeline-varied]

Makes (once, kept in --work) train/<class name>/<n>.jpg and test/<n>.jpg from Debian's Fashion-MNIST: each item
upscaled to a random width and height in 55..87 pixels (median shorter side 64), tinted with a random colour, saved as JPEG (quality 90),
with sample_submission.csv and solution.csv. Then, in this order:

  baseline   logistic regression on the same images as the pipeline parses them (its data module, default
             size rule: the median shorter side, 64), trained on the same training images
  pipeline   python -m kaggle_pipeline all (the quick preset, defaults only) into --work

Prints each one's accuracy on the answer key and wall time, and the ratio pipeline/baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kaggle_pipeline.store import SubmissionStore

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["T-shirt top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_competition(folder: Path, train: int, test: int) -> None:
    from PIL import Image

    from kaggle_pipeline.data import fashion_mnist_arrays

    if (folder / "sample_submission.csv").exists():
        return
    arrays = fashion_mnist_arrays()
    rng = np.random.default_rng(0)
    staging = Path(tempfile.mkdtemp(prefix=".making-", dir=folder.parent))

    def save(pixels: np.ndarray, path: Path) -> None:
        width, height = (int(side) for side in rng.integers(55, 88, 2))
        grey = np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
        tint = rng.uniform(0.5, 1.0, 3)
        rgb = np.clip(grey[..., None] * tint + rng.uniform(0, 40, 3), 0, 255).astype(np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(path, quality=90)

    for index in range(train):
        save(arrays["x_train"][index], staging / "train" / CLASSES[arrays["y_train"][index]] / f"{index}.jpg")
    test_names = [f"{index}.jpg" for index in range(test)]
    for index, name in enumerate(test_names):
        save(arrays["x_test"][index], staging / "test" / name)
    (staging / "sample_submission.csv").write_text("file,label\n" + "".join(f"{name},{CLASSES[0]}\n" for name in test_names))
    (staging / "solution.csv").write_text("file,label\n" + "".join(
        f"{name},{CLASSES[arrays['y_test'][index]]}\n" for index, name in enumerate(test_names)))
    os.rename(staging, folder)


def logistic_regression(folder: Path) -> dict:
    from sklearn.linear_model import LogisticRegression

    from kaggle_pipeline.data import load_competition

    started = time.perf_counter()
    competition = load_competition(folder)
    features = competition.x_train.reshape(len(competition.x_train), -1).astype(np.float32) / 255.0
    model = LogisticRegression(max_iter=200).fit(features, competition.y_train)
    predicted = model.predict(competition.x_test.reshape(len(competition.x_test), -1).astype(np.float32) / 255.0)
    truth = [line.split(",")[1] for line in (folder / "solution.csv").read_text().splitlines()[1:]]
    accuracy = float(np.mean(np.asarray(competition.classes)[predicted] == np.asarray(truth)))
    return {"accuracy": round(accuracy, 4), "seconds": round(time.perf_counter() - started, 1),
            "image_shape": list(competition.image_shape)}


def pipeline(folder: Path, work: Path) -> dict:
    models, submissions = work / "models", work / "submissions"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "kaggle_pipeline", "all", "--data", str(folder),
                             "--models-dir", str(models), "--submissions-dir", str(submissions)],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"make all failed:\n{result.stderr[-3000:]}")
    summary = SubmissionStore(submissions, folder.name).latest()
    return {"accuracy": summary.get("local_score"), "seconds": round(seconds, 1), "runs_voted": summary["runs_voted"],
            "log_tail": result.stderr.splitlines()[-6:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kaggle-pipeline-varied")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--make-only", action="store_true", help="only make the competition folder")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    folder = args.work / "fashion-varied"
    say("making the competition (once)")
    make_competition(folder, args.train, args.test)
    if args.make_only:
        return
    say("baseline: logistic regression")
    baseline = logistic_regression(folder)
    say(f"baseline: {baseline}")
    say("pipeline: python -m kaggle_pipeline all (quick preset)")
    ours = pipeline(folder, args.work)
    summary = {"train": args.train, "test": args.test, "baseline": baseline, "pipeline": ours,
               "accuracy_ratio": round(ours["accuracy"] / baseline["accuracy"], 3) if ours["accuracy"] else None}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
