"""What the learned cut-off is worth for binary F1 (METRIC=f1): the kept runs of a store, made binary.

    .venv/bin/python bench/f1_cutoff.py [--data data/fashion-mnist] [--name fashion-mnist] [--out docs/f1_cutoff.json]

No training: each class of a multi-class store becomes the positive class of a one-vs-rest task, with the kept
runs' stored probabilities of that class (and of the rest) as the members, on the validation split and the
test set. For each task the soft vote is fitted as ``submit`` fits it (``VotingEnsemble(metric="f1")``: the
cut-off learned on one half of the validation split) and the test set's F1 against the answer key is printed
twice: with the most probable class (the baseline: a cut-off of 0.5) and with the learned cut-off, and their
ratio. Positives are used as they are (1 in 10 for Fashion-MNIST), then thinned to ``--rare`` of them in
validation and test alike (a fixed seed), where a rare class makes the cut-off matter more.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from kaggle_pipeline.data import answer_key_labels
from kaggle_pipeline.estimator import VotingEnsemble
from kaggle_pipeline.metrics import get_metric
from kaggle_pipeline.submit import stored_predictions
from kaggle_pipeline.workspace import open_workspace


def one_vs_rest(probabilities: np.ndarray, positive: int) -> np.ndarray:
    """(samples, members, classes) to (samples, members, 2): the rest's probability, then the positive class's."""
    chosen = probabilities[..., positive]
    return np.stack([1.0 - chosen, chosen], axis=-1)


def thinned(labels: np.ndarray, positive: int, keep: float, generator: np.random.Generator) -> np.ndarray:
    """Rows to keep: every negative and a ``keep`` share of the positives."""
    is_positive = labels == positive
    return np.flatnonzero(~is_positive | (generator.random(len(labels)) < keep))


def f1_pair(members, truth: np.ndarray, positive: int, validation_rows, test_rows) -> dict:
    f1 = get_metric("f1")
    y_validation = (members.y[validation_rows] == positive).astype(int)
    y_test = (truth[test_rows] == positive).astype(int)
    ensemble = VotingEnsemble(strategy="soft", metric="f1").fit(
        one_vs_rest(members.validation[validation_rows], positive), y_validation)
    test = one_vs_rest(members.test[test_rows], positive)
    shares = ensemble.predict_proba(test)
    most_probable = f1(y_test, shares)
    with_cutoff = f1(y_test, np.eye(2)[ensemble.predict(test)])
    return {"positives_test": int(y_test.sum()), "rows_test": len(y_test), "cutoff": round(float(ensemble.cutoffs_[0]), 4),
            "f1_most_probable": round(most_probable, 4), "f1_cutoff": round(with_cutoff, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/fashion-mnist"))
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="fashion-mnist", help="store under --models-dir (default: %(default)s)")
    parser.add_argument("--rare", type=float, default=0.25, help="share of positives kept in the thinned tasks")
    parser.add_argument("--out", type=Path, help="write the numbers here as JSON")
    args = parser.parse_args()
    workspace = open_workspace(args.data, args.models_dir, name=args.name, read_only=True)
    truth = answer_key_labels(workspace.competition)
    if truth is None:
        raise SystemExit(f"{args.data}: no answer key (solution.csv) to score F1 against")
    members = stored_predictions(workspace)
    classes = workspace.competition.classes
    print(f"{members.runs} kept run(s) of {args.models_dir / args.name}, soft vote; test F1 on the answer key")
    results = {"store": str(args.models_dir / args.name), "runs": members.runs, "rare": args.rare, "tasks": []}
    print(f"{'positive class':>16} {'positives':>10} {'cut-off':>8} {'F1 @0.5':>8} {'F1 cut':>8} {'ratio':>6}")
    for label, keep in (("as is", 1.0), (f"thinned to {args.rare:g}", args.rare)):
        generator = np.random.default_rng(0)
        pairs = []
        for positive, name in enumerate(classes):
            validation_rows = thinned(members.y, positive, keep, generator)
            test_rows = thinned(truth, positive, keep, generator)
            pair = f1_pair(members, truth, positive, validation_rows, test_rows)
            pairs.append(pair)
            results["tasks"].append({"positives": label, "class": name, **pair})
            print(f"{name[:16]:>16} {pair['positives_test']:>5}/{pair['rows_test']:<5}{pair['cutoff']:>7.3f} "
                  f"{pair['f1_most_probable']:>8.4f} {pair['f1_cutoff']:>8.4f} "
                  f"{pair['f1_cutoff'] / max(pair['f1_most_probable'], 1e-9):>6.3f}")
        base = np.mean([pair["f1_most_probable"] for pair in pairs])
        tuned = np.mean([pair["f1_cutoff"] for pair in pairs])
        better = sum(pair["f1_cutoff"] > pair["f1_most_probable"] for pair in pairs)
        worse = sum(pair["f1_cutoff"] < pair["f1_most_probable"] for pair in pairs)
        print(f"{'mean, ' + label:>16} {'':>10} {'':>8} {base:>8.4f} {tuned:>8.4f} {tuned / base:>6.3f}   "
              f"(better in {better}, worse in {worse} of {len(pairs)})")
        results[f"mean {label}"] = {"f1_most_probable": round(base, 4), "f1_cutoff": round(tuned, 4),
                                    "ratio": round(tuned / base, 4), "better": better, "worse": worse}
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
