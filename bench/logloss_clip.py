"""How far from 0 and 1 a probability submission should be clipped (metrics.CLIP), on generated predictions.

A model right on (1 - error) of 20,000 rows over 10 classes gives its most probable class ``confidence`` and
shares the rest equally; each row is clipped to [eps, 1 - eps] and renormalised, then scored by logloss.
Calibrated predictions (confidence 0.9) are untouched by any of these clips; over-confident ones (0.999, 1.0)
are rescued by a clip, the more so the more often they are wrong. Run: python bench/logloss_clip.py
"""

import numpy as np

from kaggle_pipeline.metrics import clip_probabilities

CLIPS = (1e-15, 1e-4, 1e-3, 5e-3, 1e-2)


def generated(truth: np.ndarray, classes: int, error: float, confidence: float, generator) -> np.ndarray:
    rows = len(truth)
    wrong = (truth + generator.integers(1, classes, rows)) % classes
    winner = np.where(generator.random(rows) < 1 - error, truth, wrong)
    probabilities = np.full((rows, classes), (1 - confidence) / (classes - 1))
    probabilities[np.arange(rows), winner] = confidence
    return probabilities


def main() -> None:
    generator = np.random.default_rng(0)
    classes, rows = 10, 20_000
    truth = generator.integers(0, classes, rows)
    print("error  confidence " + " ".join(f"{f'eps {eps:g}':>10}" for eps in CLIPS))
    for error in (0.01, 0.05, 0.2):
        for confidence in (0.9, 0.999, 1.0):
            probabilities = generated(truth, classes, error, confidence, generator)
            losses = [-np.mean(np.log(clip_probabilities(probabilities, eps)[np.arange(rows), truth])) for eps in CLIPS]
            print(f"{error:5}  {confidence:10} " + " ".join(f"{loss:10.4f}" for loss in losses))


if __name__ == "__main__":
    main()
