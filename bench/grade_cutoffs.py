"""What grade cut-offs are worth for quadratic weighted kappa (METRIC=qwk), on a graded competition made here.

    .venv/bin/python bench/grade_cutoffs.py [--work models/bench-grades] [--epochs 10] [--out docs/grade_cutoffs.json]

No graded competition is at hand offline, so this makes one, APTOS 2019's shape (``train.csv`` id_code,diagnosis;
``train_images/``, ``test_images/``, a sample of zeros, ``solution.csv``): 32x32 grey images of a disc whose radius
grows with a hidden severity (grade + a uniform fraction, radius noise of about half a grade between neighbours,
pixel noise), grades 0-4 in APTOS' proportions (45/10/25/8/12%), 6,000 training and 3,000 test images. Then it runs
the pipeline on it as a user would (``kaggle_pipeline all --metric qwk``: 2 search trials of 6 epochs, 3 runs of
``--epochs``), and for each vote strategy fitted as ``submit`` fits it prints the answer key's kappa three ways:
the most probable grade (the baseline), the expected grade rounded, and the expected grade cut by the cut-offs
learned on the fitting half of the validation split (``VotingEnsemble(metric="qwk").cutoffs_``), with ratios to
the baseline. The made folder and the store stay in --work, so a rerun only votes again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from kaggle_pipeline.data import answer_key_labels
from kaggle_pipeline.estimator import VotingEnsemble
from kaggle_pipeline.metrics import get_metric
from kaggle_pipeline.submit import stored_predictions
from kaggle_pipeline.vote import STRATEGIES
from kaggle_pipeline.workspace import open_workspace

GRADE_SHARES = (0.45, 0.10, 0.25, 0.08, 0.12)


def make_graded_competition(folder: Path, train: int = 6000, test: int = 3000, seed: int = 0) -> None:
    from PIL import Image

    generator = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:32, 0:32]

    def image(severity: float) -> np.ndarray:
        radius = 3 + 2.2 * severity + generator.normal(0, 1.2)
        centre = generator.uniform(12, 20, 2)
        disc = ((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius * radius).astype(float)
        return (np.clip(0.6 * disc + generator.normal(0, 0.35, disc.shape) + 0.2, 0, 1) * 255).astype(np.uint8)

    def write(count: int, where: str, prefix: str) -> list[tuple[str, int]]:
        (folder / where).mkdir(parents=True)
        made = []
        for index in range(count):
            grade = int(generator.choice(len(GRADE_SHARES), p=GRADE_SHARES))
            name = f"{prefix}{index:05d}"
            Image.fromarray(image(grade + generator.uniform(0, 1))).save(folder / where / f"{name}.png")
            made.append((name, grade))
        return made

    training, testing = write(train, "train_images", "a"), write(test, "test_images", "b")
    (folder / "train.csv").write_text("id_code,diagnosis\n" + "".join(f"{n},{g}\n" for n, g in training))
    (folder / "sample_submission.csv").write_text("id_code,diagnosis\n" + "".join(f"{n},0\n" for n, _ in testing))
    (folder / "solution.csv").write_text("id_code,diagnosis\n" + "".join(f"{n},{g}\n" for n, g in testing))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("models/bench-grades"))
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the numbers here as JSON")
    args = parser.parse_args()
    data, name = args.work / "graded", f"graded-{args.epochs}"
    if not data.exists():
        make_graded_competition(data)
    subprocess.run([sys.executable, "-m", "kaggle_pipeline", "all", "--data", str(data), "--name", name,
                    "--models-dir", str(args.work / "models"), "--submissions-dir", str(args.work / "submissions"),
                    "--metric", "qwk", "--evals", "2", "--search-epochs", "6", "--n", "3", "--epochs",
                    str(args.epochs), "--threshold", "-1", "--no-early-abort"], check=True)
    workspace = open_workspace(data, args.work / "models", name=name, read_only=True)
    members, truth = stored_predictions(workspace), answer_key_labels(workspace.competition)
    kappa, grades = get_metric("qwk"), np.arange(workspace.competition.num_classes)
    results = {"epochs": args.epochs, "runs": members.runs, "strategies": {}}
    print(f"{members.runs} runs of {args.epochs} epochs; quadratic weighted kappa on the answer key ({len(truth):,} images)")
    print(f"{'strategy':>10} {'most probable':>14} {'rounded':>8} {'cut-offs':>9} {'ratio':>6}   cut-offs (rounding: 0.5 1.5 2.5 3.5)")
    for strategy in STRATEGIES:
        ensemble = VotingEnsemble(strategy=strategy, metric="qwk").fit(members.validation, members.y)
        shares = ensemble.predict_proba(members.test)
        expected = shares @ grades
        scores = {"most_probable": kappa(truth, shares),
                  "rounded": kappa(truth, np.eye(len(grades))[np.clip(np.rint(expected), 0, grades[-1]).astype(int)]),
                  "cutoffs": kappa(truth, np.eye(len(grades))[ensemble.predict(members.test)])}
        cutoffs = [round(float(cut), 3) for cut in ensemble.cutoffs_]
        results["strategies"][strategy] = {**{key: round(value, 4) for key, value in scores.items()}, "learned": cutoffs}
        print(f"{strategy:>10} {scores['most_probable']:>14.4f} {scores['rounded']:>8.4f} {scores['cutoffs']:>9.4f} "
              f"{scores['cutoffs'] / scores['most_probable']:>6.3f}   {' '.join(f'{cut:.2f}' for cut in cutoffs)}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
