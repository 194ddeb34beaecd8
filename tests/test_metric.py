"""METRIC=: the metrics, the threshold's direction, the vote's choice, and the probability submission formats
(a column per class, State Farm style; a binary probability, Aerial Cactus style) with their checks."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli, run_in_process, synthetic_images, write_image_competition
from sklearn.metrics import f1_score, log_loss, roc_auc_score
from test_kaggle_client import snapshot

from kaggle_pipeline.data import answer_key_labels, load_competition, read_sample_submission
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.estimator import VotingEnsemble
from kaggle_pipeline.metrics import CLIP, METRICS, auto_metric, clip_probabilities, get_metric
from kaggle_pipeline.store import Run, atomic_save_npz, atomic_write_json
from kaggle_pipeline.submit import make_submission, parse_submission, validate_submission
from kaggle_pipeline.workspace import open_workspace

CLASSES = ["c0", "c1", "c2"]


# Tiny competitions -------------------------------------------------------------------------------
def write_class_folder_competition(folder, classes=CLASSES, count=90, test_count=30, side=16, columns=None):
    """State Farm style: imgs/train/<class>/<file>.png, imgs/test/<file>.png, sample_submission.csv with a
    probability column per class (ids are the file names with their extension), solution.csv (img,label)."""
    from PIL import Image

    images, labels = synthetic_images(count + test_count, side=side, channels=3, classes=len(classes))
    for index in range(count + test_count):
        where = folder / "imgs" / ("train" if index < count else "test")
        where = where / classes[labels[index]] if index < count else where
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(where / f"img_{index}.png")
    columns = list(classes) if columns is None else columns
    test = range(count, count + test_count)
    share = f"{1 / len(columns):.6f}"
    (folder / "sample_submission.csv").write_text(
        "img," + ",".join(columns) + "\n" + "".join(f"img_{i}.png," + ",".join([share] * len(columns)) + "\n" for i in test))
    (folder / "solution.csv").write_text("img,label\n" + "".join(f"img_{i}.png,{classes[labels[i]]}\n" for i in test))
    return folder


def write_binary_competition(folder, count=80, test_count=20, side=16, placeholder="0.5"):
    """Aerial Cactus style: train/<id>.png, train.csv (id,has_cactus 0/1), test/<id>.png, a sample whose label
    column holds 0.5 placeholders, solution.csv (id,has_cactus)."""
    from PIL import Image

    images, labels = synthetic_images(count + test_count, side=side, channels=3, classes=2)
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    for index in range(count + test_count):
        Image.fromarray(images[index]).save(folder / ("train" if index < count else "test") / f"{index}.png")
    return write_label_tables(folder, "id,has_cactus", [f"{i}.png" for i in range(count + test_count)], labels, count,
                              placeholder)


def write_label_tables(folder, header, ids, labels, count, placeholder):
    """train.csv (the first ``count`` ids and their labels), a sample holding ``placeholder`` for the others, and
    solution.csv (their labels), each headed ``header``."""
    test = range(count, len(ids))
    (folder / "train.csv").write_text(f"{header}\n" + "".join(f"{ids[i]},{labels[i]}\n" for i in range(count)))
    (folder / "sample_submission.csv").write_text(f"{header}\n" + "".join(f"{ids[i]},{placeholder}\n" for i in test))
    (folder / "solution.csv").write_text(f"{header}\n" + "".join(f"{ids[i]},{labels[i]}\n" for i in test))
    return folder


def agreeing_members(truth, classes, seed=0):
    """Two members that always agree on the most probable class (right on about 70% of rows), with honest,
    moderate probabilities: every strategy has the same accuracy, but majority's hard vote shares pay the
    clipped logloss on every wrong row while the soft strategies do not."""
    generator = np.random.default_rng(seed)
    rows = len(truth)
    winner = np.where(generator.random(rows) < 0.7, truth, (truth + 1) % classes)
    first = np.full((rows, classes), 0.3 / (classes - 1))
    first[np.arange(rows), winner] = 0.7
    second = 0.9 * first + 0.1 / classes  # the same argmax, a little less sure
    return first, second


def hand_made_runs(workspace, metric, threshold):
    """Two finished, kept runs whose predictions are ``agreeing_members`` on validation and test."""
    store, competition = workspace.store, workspace.competition
    truth = {"validation": workspace.y_validation, "test": answer_key_labels(competition)}
    members = {key: agreeing_members(labels, competition.num_classes, seed=len(key)) for key, labels in truth.items()}
    judge = get_metric(metric)
    for index in range(2):
        arrays = {key: members[key][index] for key in truth}
        record = {"run": index + 1, "status": "done", "seed": index,
                  "validation_accuracy": get_metric("accuracy")(truth["validation"], arrays["validation"])}
        if metric != "accuracy":
            record.update(metric=metric, validation_score=judge(truth["validation"], arrays["validation"]))
        atomic_write_json(store.runs_dir / f"run-{index + 1:04d}" / "run.json", record)
        atomic_save_npz(store.runs_dir / f"run-{index + 1:04d}" / "predictions.npz", **arrays)
    atomic_write_json(store.ensemble_path, {"threshold": threshold, "metric": metric})


# The metrics ----------------------------------------------------------------------------------------
def test_each_metric_agrees_with_scikit_learn():
    generator = np.random.default_rng(0)
    truth = np.arange(60) % 3
    probabilities = generator.dirichlet(np.ones(3), size=60)
    probabilities[np.arange(60), truth] += 0.5
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    assert METRICS["accuracy"](truth, probabilities) == np.mean(probabilities.argmax(axis=1) == truth)
    assert METRICS["logloss"](truth, probabilities) == pytest.approx(log_loss(truth, clip_probabilities(probabilities)))
    assert METRICS["auc"](truth, probabilities) == pytest.approx(roc_auc_score(truth, probabilities, multi_class="ovr"))
    assert METRICS["f1_macro"](truth, probabilities) == pytest.approx(
        f1_score(truth, probabilities.argmax(axis=1), average="macro"))
    binary = probabilities[:, :2] / probabilities[:, :2].sum(axis=1, keepdims=True)
    assert METRICS["auc"](truth % 2, binary) == pytest.approx(roc_auc_score(truth % 2, binary[:, 1]))
    # Binary F1 is the positive class's, not the mean over both classes; it has no meaning for three.
    assert METRICS["f1"](truth % 2, binary) == pytest.approx(f1_score(truth % 2, binary.argmax(axis=1)))
    assert METRICS["f1"](truth % 2, binary) != pytest.approx(METRICS["f1_macro"](truth % 2, binary))
    assert METRICS["f1"](1 - truth % 2, binary[:, ::-1]) == pytest.approx(f1_score(truth % 2, binary.argmax(axis=1), pos_label=0))
    assert math.isnan(METRICS["f1"](truth, probabilities))
    # A confident wrong answer costs -ln(clip), not 34.5; a single-class AUC is undefined, recorded as the worst.
    assert METRICS["logloss"](np.array([0]), np.array([[0.0, 1.0]])) == pytest.approx(-math.log(CLIP / (1 + CLIP)), rel=1e-3)
    assert math.isnan(METRICS["auc"](np.zeros(4, int), binary[:4]))
    assert get_metric("auc").score_or_worst(np.zeros(4, int), binary[:4]) == 0.0
    with pytest.raises(ValueError, match="unknown metric 'rmse'"):
        get_metric("rmse")


def test_a_threshold_is_a_minimum_or_for_logloss_a_maximum():
    record = {"status": "done", "validation_accuracy": 0.8, "metric": "logloss", "validation_score": 0.4}
    assert Run(record).is_kept(0.75) and not Run(record).is_kept(0.85)  # accuracy, as every store before metrics
    assert Run(record).is_kept(0.5, "logloss") and not Run(record).is_kept(0.3, "logloss")
    assert not Run(record).is_kept(0.5, "auc")  # no auc recorded: never kept by a score it does not have
    assert not Run({**record, "status": "aborted"}).is_kept(0.5, "logloss")
    logloss, accuracy = get_metric("logloss"), get_metric("accuracy")
    assert accuracy.default_threshold(0.92) == 0.91 and logloss.default_threshold(0.4) == 0.44
    assert logloss.loss(0.4) == 0.4 and accuracy.loss(0.9) == pytest.approx(0.1)
    assert logloss.best_of({"a": 0.5, "b": 0.3, "c": math.nan}) == "b"
    assert accuracy.best_of({"a": 0.5, "b": 0.5}) == "a"  # the first on a tie


def test_metric_drives_the_automatic_vote():
    """Members whose strategies tie on accuracy: auto keeps the simplest (majority) by accuracy, and a soft
    strategy by logloss, where majority's hard shares pay for every wrong row."""
    truth = np.arange(200) % 3
    first, second = agreeing_members(truth, 3)
    X = np.stack([first, second], axis=1)
    by_accuracy = VotingEnsemble(strategy="auto").fit(X, truth)
    by_logloss = VotingEnsemble(strategy="auto", metric="logloss").fit(X, truth)
    assert len(set(by_accuracy.scores_.values())) == 1 and by_accuracy.strategy_ == "majority"
    assert by_logloss.strategy_ != "majority"
    assert by_logloss.scores_["majority"] > 2 * by_logloss.validation_score_
    assert by_logloss.validation_score_ == min(by_logloss.scores_.values())
    assert by_logloss.accuracies_ == by_accuracy.scores_  # accuracy is still reported beside the metric


# The sample submission ------------------------------------------------------------------------------
def test_a_sample_with_a_column_per_class_asks_for_probabilities_judged_by_logloss(tmp_path):
    competition = load_competition(write_class_folder_competition(tmp_path / "state-farm"))
    assert competition.classes == CLASSES and competition.submission_columns == CLASSES
    assert competition.submission_format == "class_probabilities" and auto_metric(competition) == "logloss"
    cactus = load_competition(write_binary_competition(tmp_path / "cactus"))
    assert cactus.classes == ["0", "1"] and cactus.positive_class == "1"
    assert cactus.submission_format == "binary_probability" and auto_metric(cactus) == "logloss"
    cifar = load_competition(write_image_competition(tmp_path / "cifar"))
    assert cifar.submission_format == "label" and auto_metric(cifar) == "accuracy"


@pytest.mark.parametrize("columns, message", [
    (["c0", "c1"], "sample_submission.csv: no column for training class 'c2'"),
    (["c0", "c1", "C2"], "sample_submission.csv: no column for training class 'c2'"),  # names compared exactly
    (["c0", "c1", "c2", "c3"], "sample_submission.csv: column 'c3' is for no class with training images"),
])
def test_class_columns_must_match_the_training_classes(tmp_path, columns, message):
    folder = write_class_folder_competition(tmp_path / "state-farm", columns=columns)
    with pytest.raises(PipelineError, match=message):
        open_workspace(folder, tmp_path / "models")
    assert not (tmp_path / "models" / "state-farm" / "store.json").exists()


# The checks -------------------------------------------------------------------------------------
def probability_table(text):
    return parse_submission(text)


SAMPLE = "img,c0,c1,c2\na.png,0.3,0.3,0.4\nb.png,0.3,0.3,0.4\n"


@pytest.mark.parametrize("text, message", [
    ("img,c0,c1,c2\na.png,0.2,0.3,0.5\nb.png,nan,0.5,0.5\n", r"column 'c0', row 3: 'nan' is not a number"),
    ("img,c0,c1,c2\na.png,0.2,0.3,0.5\nb.png,,0.5,0.5\n", r"column 'c0', row 3: '' is not a number"),
    ("img,c0,c1,c2\na.png,0.2,0.3,0.5\nb.png,c1,0.5,0.5\n", r"column 'c0', row 3: 'c1' is not a number"),
    ("img,c0,c1,c2\na.png,0.2,0.3,0.5\nb.png,inf,0.5,0.5\n", r"column 'c0', row 3: 'inf' is not finite"),
    ("img,c0,c1,c2\na.png,1.2,-0.2,0.0\nb.png,0.2,0.3,0.5\n", r"column 'c0', row 2: '1.2' is outside \[0, 1\]"),
    ("img,c0,c1,c2\na.png,0.2,0.3,0.5\nb.png,0.2,0.3,0.4\n", r"row 3 \(id 'b.png'\): the class probabilities sum to 0.9, not 1"),
    ("img,c1,c0,c2\na.png,0.2,0.3,0.5\nb.png,0.2,0.3,0.5\n", r"header \['img', 'c1', 'c0', 'c2'\] differs"),
    ("img,c0,c1\na.png,0.5,0.5\nb.png,0.5,0.5\n", r"header \['img', 'c0', 'c1'\] differs"),
    ("img,c0,c1,c2\na.png,0.2,0.3,0.5\nc.png,0.2,0.3,0.5\n", r"id 'b.png' from the sample submission is missing"),
])
def test_a_probability_table_kaggle_would_refuse_is_refused(text, message):
    sample = parse_submission(SAMPLE)
    validate_submission(parse_submission("img,c0,c1,c2\nb.png,0.2,0.3,0.5\na.png,1,0,0\n"), sample, CLASSES,
                        "s.csv", "class_probabilities")
    with pytest.raises(PipelineError, match="s.csv: " + message):
        validate_submission(parse_submission(text), sample, CLASSES, "s.csv", "class_probabilities")


def test_a_binary_probability_is_a_number_in_0_1():
    sample = parse_submission("id,has_cactus\n1.png,0.5\n2.png,0.5\n")
    validate_submission(parse_submission("id,has_cactus\n1.png,0.25\n2.png,1\n"), sample, ["0", "1"], "s.csv",
                        "binary_probability")
    with pytest.raises(PipelineError, match=r"s.csv: column 'has_cactus', row 3: '1.5' is outside \[0, 1\]"):
        validate_submission(parse_submission("id,has_cactus\n1.png,0.25\n2.png,1.5\n"), sample, ["0", "1"], "s.csv",
                            "binary_probability")
    # The label format still wants a class: a probability there is refused.
    with pytest.raises(PipelineError, match="label '0.25' is not one of the 2 classes"):
        validate_submission(parse_submission("id,has_cactus\n1.png,0.25\n2.png,1\n"), sample, ["0", "1"], "s.csv")


# Through the command line ---------------------------------------------------------------------------
def test_class_probability_submission_through_the_command_line(tmp_path):
    """State Farm style, trained for real (tiny net, one epoch): the store is judged by logloss (auto), the
    submission holds each class's probability in the sample's column order, clipped, rows summing to 1."""
    folder = write_class_folder_competition(tmp_path / "state-farm")
    common = ["--data", folder, "--models-dir", tmp_path / "models"]
    result = run_cli("all", *common, "--space", "tiny", "--evals", "1", "--search-epochs", "1", "--n", "1",
                     "--epochs", "1", "--threshold", "10", "--no-early-abort",
                     "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    store = tmp_path / "models" / "state-farm"
    assert json.loads((store / "store.json").read_text())["metric"] == "logloss"
    run = json.loads((store / "runs" / "run-0001" / "run.json").read_text())
    assert run["metric"] == "logloss" and run["validation_score"] > 0 and run["kept"]
    assert "val_logloss" in result.stderr and "threshold logloss <= 10.0000" in result.stderr
    written = pd.read_csv(tmp_path / "submissions" / "state-farm" / "latest.csv", dtype=str)
    sample = read_sample_submission(folder / "sample_submission.csv")
    assert list(written.columns) == ["img", *CLASSES] and written["img"].tolist() == sample["img"].tolist()
    values = written[CLASSES].astype(float).to_numpy()
    assert np.allclose(values.sum(axis=1), 1, atol=1e-5) and values.min() >= CLIP * 0.99 and values.max() <= 1 - CLIP
    summary = json.loads((tmp_path / "submissions" / "state-farm" / "latest.json").read_text())
    assert summary["metric"] == "logloss" and summary["format"] == "class_probabilities"
    truth = answer_key_labels(load_competition(folder))
    assert summary["local_score"] == pytest.approx(log_loss(truth, values / values.sum(axis=1, keepdims=True),
                                                            labels=[0, 1, 2]), abs=1e-4)
    status = run_cli("status", *common, cwd=tmp_path)
    assert "metric logloss" in status.stdout and "validation logloss" in status.stdout


def test_binary_probability_submission_through_the_command_line(tmp_path):
    """Aerial Cactus style (0.5 placeholders): the probability of the positive class, '1'."""
    folder = write_binary_competition(tmp_path / "cactus")
    workspace = open_workspace(folder, tmp_path / "models")
    assert workspace.metric == "logloss"
    hand_made_runs(workspace, "logloss", threshold=5.0)
    result = run_cli("submit", "--data", folder, "--models-dir", tmp_path / "models",
                     "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(tmp_path / "submissions" / "cactus" / "latest.csv", dtype=str)
    assert list(written.columns) == ["id", "has_cactus"]
    summary = json.loads((tmp_path / "submissions" / "cactus" / "latest.json").read_text())
    members = np.stack([np.load(workspace.store.runs_dir / f"run-{run:04d}" / "predictions.npz")["test"]
                        for run in (1, 2)], axis=1)
    assert summary["vote"] != "majority" and summary["format"] == "binary_probability"
    ensemble = VotingEnsemble(strategy=summary["vote"], metric="logloss").fit(
        np.stack([np.load(workspace.store.runs_dir / f"run-{run:04d}" / "predictions.npz")["validation"]
                  for run in (1, 2)], axis=1), workspace.y_validation)
    expected = clip_probabilities(ensemble.predict_proba(members))[:, 1]
    assert written["has_cactus"].astype(float).to_numpy() == pytest.approx(expected, abs=1e-6)


def test_a_binary_competition_written_as_labels_says_how_to_write_probabilities(tmp_path):
    """Histopathologic style (0 placeholders): labels by default, with a line saying that METRIC=auc writes the
    positive class's probability; asked for auc, it writes them and says nothing. Not said for three classes."""
    folder = write_binary_competition(tmp_path / "cancer", placeholder="0")
    workspace = open_workspace(folder, tmp_path / "models")
    hand_made_runs(workspace, "accuracy", threshold=0.5)
    common = ["--data", folder, "--models-dir", tmp_path / "models", "--submissions-dir", tmp_path / "submissions"]
    hint = "two classes, written as labels: if the competition is scored by AUC or log loss"
    labels = run_in_process("submit", *common, cwd=tmp_path)
    assert labels.returncode == 0 and hint in labels.stderr and "probability of '1'" in labels.stderr
    probabilities = run_in_process("submit", *common, "--metric", "auc", cwd=tmp_path)
    assert probabilities.returncode == 0 and hint not in probabilities.stderr
    assert json.loads((tmp_path / "submissions" / "cancer" / "latest.json").read_text())["format"] == "binary_probability"
    three = write_image_competition(tmp_path / "cifar")
    hand_made_runs(open_workspace(three, tmp_path / "models"), "accuracy", threshold=0.5)
    result = run_in_process("submit", "--data", three, *common[2:], cwd=tmp_path)
    assert result.returncode == 0 and hint not in result.stderr


def test_a_binary_competition_judged_by_f1_of_its_positive_class(tmp_path):
    """Two classes, METRIC=f1: labels are written, the line says which class is positive, the AUC hint is not
    printed, and the local score is scikit-learn's binary F1 of the written file against the answer key."""
    folder = write_binary_competition(tmp_path / "cancer", placeholder="0")
    hand_made_runs(open_workspace(folder, tmp_path / "models", metric="f1"), "f1", threshold=0.0)
    result = run_in_process("submit", "--data", folder, "--models-dir", tmp_path / "models",
                            "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "judged by f1 (positive class '1')" in result.stderr and "two classes, written as labels" not in result.stderr
    written = pd.read_csv(tmp_path / "submissions" / "cancer" / "latest.csv", dtype=str)
    truth = pd.read_csv(folder / "solution.csv", dtype=str)
    summary = json.loads((tmp_path / "submissions" / "cancer" / "latest.json").read_text())
    assert summary["metric"] == "f1" and summary["format"] == "label"
    assert summary["local_score"] == pytest.approx(f1_score(truth["has_cactus"], written["has_cactus"], pos_label="1"),
                                                   abs=1e-4)


def test_the_learned_cut_off_has_the_best_f1_of_every_cut_off():
    from kaggle_pipeline.estimator import best_cutoff

    generator = np.random.default_rng(5)
    for _ in range(300):
        rows = int(generator.integers(1, 30))
        truth = (generator.random(rows) < generator.random()).astype(int)
        positive = np.round(generator.random(rows), int(generator.integers(1, 3)))  # ties among the rows
        cutoff = best_cutoff(np.c_[1 - positive, positive], truth)
        every = [f1_score(truth, positive >= value, zero_division=0) for value in [*np.unique(positive), np.inf]]
        assert f1_score(truth, positive >= cutoff, zero_division=0) == pytest.approx(max(every), abs=1e-12)
    # No positive row: any cut-off gives 0, and the most probable class's 0.5 stays.
    assert best_cutoff(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0])) == 0.5


def test_binary_f1_writes_the_positive_class_from_a_learned_cut_off(tmp_path):
    """Members that give the positive class a probability of 0.26-0.34 (never the most probable): the most
    probable class never writes it (F1 0); the cut-off learned on the fitting half writes it, and the local
    score is scikit-learn's F1 of the written file."""
    folder = write_binary_competition(tmp_path / "rare", placeholder="0")
    workspace = open_workspace(folder, tmp_path / "models", metric="f1")
    store, truth = workspace.store, {"validation": workspace.y_validation, "test": answer_key_labels(workspace.competition)}
    generator = np.random.default_rng(3)
    for index in range(2):
        arrays = {}
        for key, labels in truth.items():
            positive = np.where(labels == 1, 0.3, 0.05) + generator.uniform(-0.04, 0.04, len(labels))
            arrays[key] = np.c_[1 - positive, positive]
        atomic_write_json(store.runs_dir / f"run-{index + 1:04d}" / "run.json", {
            "run": index + 1, "status": "done", "seed": index, "metric": "f1",
            "validation_accuracy": get_metric("accuracy")(truth["validation"], arrays["validation"]),
            "validation_score": get_metric("f1")(truth["validation"], arrays["validation"])})
        atomic_save_npz(store.runs_dir / f"run-{index + 1:04d}" / "predictions.npz", **arrays)
    atomic_write_json(store.ensemble_path, {"threshold": 0.0, "metric": "f1"})
    result = run_in_process("submit", "--data", folder, "--models-dir", tmp_path / "models", "--vote", "soft",
                            "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "submissions" / "rare" / "latest.json").read_text())
    assert 0.09 < summary["cutoffs"][0] < 0.26 and "'1' written where its probability is >= " in result.stderr
    written = pd.read_csv(tmp_path / "submissions" / "rare" / "latest.csv", dtype=str)
    solution = pd.read_csv(folder / "solution.csv", dtype=str)
    assert summary["local_score"] == pytest.approx(f1_score(solution["has_cactus"], written["has_cactus"], pos_label="1"))
    assert summary["local_score"] == 1.0 and summary["ensemble_validation_score"] == 1.0
    # By accuracy the same store writes the most probable class: no positive at all, and no cut-off.
    result = run_in_process("submit", "--data", folder, "--models-dir", tmp_path / "models", "--vote", "soft",
                            "--metric", "accuracy", "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cutoffs" not in json.loads((tmp_path / "submissions" / "rare" / "latest.json").read_text())
    assert set(pd.read_csv(tmp_path / "submissions" / "rare" / "latest.csv", dtype=str)["has_cactus"]) == {"0"}


def test_binary_f1_on_three_classes_is_one_line_and_writes_nothing(tmp_path):
    folder = write_image_competition(tmp_path / "cifar", count=30, test_count=6)
    before = snapshot(tmp_path)
    for stage in ("search", "submit"):
        refused = run_cli(stage, "--data", folder, "--models-dir", tmp_path / "models", "--metric", "f1", cwd=tmp_path)
        assert refused.returncode == 2 and refused.stderr == (
            f"error: {folder}: metric f1 is the F1 of the positive class of two classes; the training labels hold 3 "
            f"(cat, dog, frog): use f1_macro or f1_micro\n"), refused.stderr
    assert snapshot(tmp_path) == before


WHALES = ["new_whale", "w_0369a5c", "w_23a388d", "w_9b5109b", "w_9c506f6", "w_f48451c"]


def write_ranked_competition(folder, count=120, test_count=30, side=16, placeholder="new_whale w_23a388d w_9b5109b "
                                                                                    "w_9c506f6 w_0369a5c"):
    """Humpback Whale Identification style: train/<Image>, train.csv (Image,Id), test/, a sample whose Id column
    holds five space-separated ids (scored by MAP@5), solution.csv (Image,Id)."""
    from PIL import Image

    images, labels = synthetic_images(count + test_count, side=side, channels=3, classes=len(WHALES))
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    for index in range(count + test_count):
        Image.fromarray(images[index]).save(folder / ("train" if index < count else "test") / f"{index:08x}.jpg")
    return write_label_tables(folder, "Image,Id", [f"{index:08x}.jpg" for index in range(count + test_count)],
                              [WHALES[label] for label in labels], count, placeholder)


def test_mean_average_precision_agrees_with_its_definition():
    generator = np.random.default_rng(4)
    truth = generator.integers(0, 8, 200)
    probabilities = generator.dirichlet(np.ones(8), size=200)
    for guesses in (3, 5):
        expected = np.mean([next((1 / rank for rank, guess in enumerate(np.argsort(-row)[:guesses], start=1)
                                  if guess == label), 0.0) for row, label in zip(probabilities, truth, strict=True)])
        assert METRICS[f"map@{guesses}"](truth, probabilities) == pytest.approx(expected)
    assert METRICS["map@5"](truth, np.eye(8)[truth]) == 1.0


def test_a_sample_of_ranked_guesses_gets_the_most_probable_classes_judged_by_map(tmp_path):
    """Humpback Whale style: the five most probable ids, best first, space-separated; METRIC=auto is map@5, and
    the local score is MAP@5 of the written file against the answer key."""
    folder = write_ranked_competition(tmp_path / "whales")
    workspace = open_workspace(folder, tmp_path / "models")
    assert workspace.competition.ranked_guesses == 5 and workspace.metric == "map@5"
    hand_made_runs(workspace, "map@5", threshold=0.0)
    result = run_in_process("submit", "--data", folder, "--models-dir", tmp_path / "models",
                            "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(tmp_path / "submissions" / "whales" / "latest.csv", dtype=str)
    guesses = [cell.split(" ") for cell in written["Id"]]
    assert all(len(row) == 5 == len(set(row)) and set(row) <= set(WHALES) for row in guesses)
    truth = pd.read_csv(folder / "solution.csv", dtype=str).set_index("Image").loc[written["Image"], "Id"].tolist()
    expected = np.mean([1 / (row.index(label) + 1) if label in row else 0.0 for row, label in zip(guesses, truth, strict=True)])
    summary = json.loads((tmp_path / "submissions" / "whales" / "latest.json").read_text())
    assert summary["format"] == "ranked_labels" and summary["metric"] == "map@5"
    assert summary["local_score"] == pytest.approx(expected)


@pytest.mark.parametrize("placeholder, classes_with_spaces", [("new_whale", False), ("Sugar beet", True),
                                                               ("new_whale w_23a388d 0.5", False)])
def test_what_is_not_a_sample_of_ranked_guesses(placeholder, classes_with_spaces, tmp_path):
    """One label; a placeholder that is one class with a space (Plant Seedlings' "Sugar beet"); and rows whose
    counts differ are not ranked guesses."""
    folder = write_ranked_competition(tmp_path / "whales", placeholder=placeholder)
    if placeholder.endswith("0.5"):  # a second row with another count of tokens
        lines = (folder / "sample_submission.csv").read_text().splitlines()
        lines[2] = lines[2].rsplit(",", 1)[0] + ",new_whale"
        (folder / "sample_submission.csv").write_text("\n".join(lines) + "\n")
    if classes_with_spaces:
        labels = (folder / "train.csv").read_text().replace("w_0369a5c", "Sugar beet")
        (folder / "train.csv").write_text(labels)
    assert load_competition(folder).ranked_guesses == 0


@pytest.mark.parametrize("cell, problem", [
    ("new_whale w_23a388d w_9b5109b w_9c506f6", "4 guesses, the sample's rows have 5"),
    ("new_whale w_23a388d w_9b5109b w_9c506f6 w_nothing", "'w_nothing' is not one of the 6 classes"),
    ("new_whale w_23a388d w_9b5109b w_9c506f6 new_whale", "a class guessed twice"),
])
def test_ranked_guesses_kaggle_would_refuse_are_refused(cell, problem, tmp_path):
    folder = write_ranked_competition(tmp_path / "whales")
    sample = read_sample_submission(folder / "sample_submission.csv")
    table = parse_submission("Image,Id\n" + "".join(f"{image},{cell}\n" for image in sample["Image"]))
    with pytest.raises(PipelineError, match=f"submission: column 'Id', row 2 .*: {problem}"):
        validate_submission(table, sample, WHALES, "submission", "ranked_labels")


def test_metric_chooses_the_vote_through_the_command_line(tmp_path):
    """An accuracy store (CIFAR style labels): VOTE=auto keeps majority by accuracy; submit --metric logloss
    judges the same kept runs by logloss and picks a soft strategy. The store's own metric cannot change."""
    folder = write_image_competition(tmp_path / "cifar")
    workspace = open_workspace(folder, tmp_path / "models")
    assert workspace.metric == "accuracy"
    hand_made_runs(workspace, "accuracy", threshold=0.5)
    common = ["--data", folder, "--models-dir", tmp_path / "models", "--submissions-dir", tmp_path / "submissions"]
    latest = tmp_path / "submissions" / "cifar" / "latest.json"

    by_accuracy = run_cli("submit", *common, cwd=tmp_path)
    assert by_accuracy.returncode == 0, by_accuracy.stderr
    assert json.loads(latest.read_text())["vote"] == "majority"
    by_logloss = run_cli("submit", *common, "--metric", "logloss", cwd=tmp_path)
    assert by_logloss.returncode == 0, by_logloss.stderr
    summary = json.loads(latest.read_text())
    assert summary["vote"] != "majority" and summary["metric"] == "logloss" and summary["format"] == "label"
    assert "VOTE=auto picks the best logloss" in by_logloss.stderr
    scores = {name: result["validation_score"] for name, result in summary["strategies"].items()}
    assert scores[summary["vote"]] == min(scores.values())

    refused = run_cli("ensemble", "--data", folder, "--models-dir", tmp_path / "models", "--metric", "auc", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: --metric 'auc' (METRIC=): ") and "made with metric accuracy" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1


def test_a_threshold_above_one_is_refused_for_an_accuracy_store_before_anything_is_written(tmp_path):
    folder = write_image_competition(tmp_path / "cifar")
    refused = run_cli("ensemble", "--data", folder, "--models-dir", tmp_path / "models", "--threshold", "1.5", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == "error: --threshold 1.5 (THRESHOLD=): a validation accuracy, between 0 and 1\n"
    assert not (tmp_path / "models").exists()


def test_submit_with_a_metric_on_a_library_call(tmp_path):
    """make_submission(metric=...) in a notebook, as the command line's --metric."""
    folder = write_class_folder_competition(tmp_path / "state-farm")
    workspace = open_workspace(folder, tmp_path / "models", metric="accuracy")  # asked for: recorded
    assert json.loads(workspace.store.manifest_path.read_text())["metric"] == "accuracy"
    hand_made_runs(workspace, "accuracy", threshold=0.5)
    summary = make_submission(workspace, tmp_path / "submissions")
    assert summary["vote"] == "majority" and summary["format"] == "class_probabilities"
    summary = make_submission(workspace, tmp_path / "submissions", metric="logloss")
    assert summary["vote"] != "majority"
    written = pd.read_csv(tmp_path / "submissions" / "state-farm" / "latest.csv")
    assert np.allclose(written[CLASSES].sum(axis=1), 1, atol=1e-5)


def write_graded_competition(folder, grades=(0, 1, 2, 3, 4), count=100, test_count=25, side=16):
    """APTOS 2019 style: train.csv (id_code,diagnosis), train_images/<id>.png, test_images/, a sample of zeros and
    solution.csv; the labels are grades."""
    from PIL import Image

    images, labels = synthetic_images(count + test_count, side=side, channels=3, classes=len(grades))
    for index in range(count + test_count):
        where = folder / ("train_images" if index < count else "test_images")
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(where / f"e{index:04x}.png")
    return write_label_tables(folder, "id_code,diagnosis", [f"e{i:04x}" for i in range(count + test_count)],
                              [grades[label] for label in labels], count, "0")


def test_f1_micro_and_quadratic_weighted_kappa_agree_with_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    generator = np.random.default_rng(1)
    truth = np.arange(80) % 5
    probabilities = generator.dirichlet(np.ones(5), size=80)
    probabilities[np.arange(80), truth] += 0.4
    predicted = probabilities.argmax(axis=1)
    assert METRICS["f1_micro"](truth, probabilities) == pytest.approx(f1_score(truth, predicted, average="micro"))
    assert METRICS["f1_micro"](truth, probabilities) == pytest.approx(METRICS["accuracy"](truth, probabilities))
    kappa = METRICS["qwk"]
    assert kappa(truth, probabilities) == pytest.approx(cohen_kappa_score(truth, predicted, weights="quadratic"))
    # Quadratic: one grade off costs a quarter of two grades off; all wrong by the most is the worst there is.
    one_off, two_off = np.eye(5)[np.minimum(truth + 1, 4)], np.eye(5)[np.minimum(truth + 2, 4)]
    assert 1 > kappa(truth, one_off) > kappa(truth, two_off) > 0
    assert kappa(truth, np.eye(5)[4 - truth]) == pytest.approx(-1.0)
    assert kappa(truth, np.eye(5)[truth]) == 1.0
    # A diverged run scores the lowest kappa, not the 0 of chance, and weighs nothing in `weighted`.
    assert kappa(truth, np.full((80, 5), np.nan)) == -1.0 == kappa.worst
    assert kappa.default_threshold(-0.995) == -1.0 and kappa.loss(-1.0) == 2.0
    kappa.check_threshold(-0.5)
    with pytest.raises(ValueError, match="between -1 and 1"):
        kappa.check_threshold(1.5)


def test_grade_cut_offs_beat_rounding_where_the_grades_are_skewed():
    """The kappa the search computes (metrics.kappa_of_decisions) is scikit-learn's; the cut-offs it learns stay in order and score at least
    what rounding the expected grade scores on the rows they were fitted on, and more where rounding is wrong."""
    from sklearn.metrics import cohen_kappa_score

    from kaggle_pipeline.estimator import best_grade_cutoffs
    from kaggle_pipeline.metrics import kappa_of_decisions

    generator = np.random.default_rng(2)
    for _ in range(20):
        truth, predicted = generator.integers(0, 5, 50), generator.integers(0, 5, 50)
        assert kappa_of_decisions(truth, predicted, 5) == pytest.approx(cohen_kappa_score(truth, predicted, weights="quadratic"))
    # Members that put every grade a little too high: its expected grade sits about 0.6 above the truth.
    truth = generator.choice(5, size=600, p=[0.45, 0.1, 0.25, 0.08, 0.12])
    expected = np.clip(truth + 0.6 + generator.normal(0, 0.3, len(truth)), 0, 4)
    lower = np.floor(expected).astype(int).clip(0, 3)
    probabilities = np.zeros((len(truth), 5))
    probabilities[np.arange(len(truth)), lower] = 1 - (expected - lower)
    probabilities[np.arange(len(truth)), lower + 1] += expected - lower
    cutoffs = best_grade_cutoffs(probabilities, truth)
    rounded = kappa_of_decisions(truth, np.digitize(expected, np.arange(4) + 0.5), 5)
    learned = kappa_of_decisions(truth, np.digitize(expected, cutoffs), 5)
    assert len(cutoffs) == 4 and (np.diff(cutoffs) > 0).all()
    assert learned > rounded + 0.02 and (cutoffs > np.arange(4) + 0.5).all()  # moved up, where the error is
    # Where rounding is already right, nothing moves.
    exact = np.eye(5)[truth]
    np.testing.assert_array_equal(best_grade_cutoffs(exact, truth), np.arange(4) + 0.5)


@pytest.mark.parametrize("classes", [["0", "1", "2", "3", "4"], ["1", "2", "3"], ["-1", "0", "1"]])
def test_qwk_takes_classes_that_are_consecutive_integers(classes):
    get_metric("qwk").check_classes(classes, "data")
    get_metric("accuracy").check_classes(["cat", "dog"], "data")


@pytest.mark.parametrize("grades, shown", [
    (("cat", "dog", "frog"), "cat, dog, frog"),   # not grades at all
    ((0, 1, 3), "0, 1, 3"),                       # a grade with no training image: its distance is unknown
    (("0", "1", "2.5"), "0, 1, 2.5"),             # not integers
])
def test_qwk_on_classes_that_are_not_grades_is_one_line_and_writes_nothing(tmp_path, grades, shown):
    folder = write_graded_competition(tmp_path / "aptos", grades=grades)
    before = snapshot(tmp_path)
    refused = run_cli("search", "--data", folder, "--models-dir", tmp_path / "models", "--metric", "qwk",
                      "--space", "tiny", "--evals", "1", cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr == (f"error: {folder}: metric qwk needs classes that are consecutive integers (grades such "
                              f"as 0-4, each with training images); the training labels hold {shown}\n")
    assert snapshot(tmp_path) == before
    # Nor can submit judge the vote by it, before or after a store exists.
    refused = run_cli("submit", "--data", folder, "--models-dir", tmp_path / "models", "--metric", "qwk", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.startswith(f"error: {folder}: metric qwk needs classes")
    assert snapshot(tmp_path) == before


def test_a_graded_competition_judged_by_quadratic_weighted_kappa(tmp_path):
    """APTOS 2019 style, trained for real (tiny net): trials, runs, the threshold and the vote are judged by
    kappa; the submission holds grades as the training data spells them; its local score is sklearn's kappa."""
    from sklearn.metrics import cohen_kappa_score

    folder = write_graded_competition(tmp_path / "aptos")
    common = ["--data", folder, "--models-dir", tmp_path / "models"]
    result = run_in_process("all", *common, "--metric", "qwk", "--space", "tiny", "--evals", "1", "--search-epochs",
                            "1", "--n", "1", "--epochs", "1", "--threshold", "-1", "--no-early-abort",
                            "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    store = tmp_path / "models" / "aptos"
    assert json.loads((store / "store.json").read_text())["metric"] == "qwk"
    run = json.loads((store / "runs" / "run-0001" / "run.json").read_text())
    assert run["metric"] == "qwk" and -1 <= run["validation_score"] <= 1 and run["kept"]
    assert "threshold qwk >= -1.0000" in result.stderr
    written = pd.read_csv(tmp_path / "submissions" / "aptos" / "latest.csv", dtype=str)
    assert list(written.columns) == ["id_code", "diagnosis"] and set(written["diagnosis"]) <= set("01234")
    truth = pd.read_csv(folder / "solution.csv", dtype=str)
    summary = json.loads((tmp_path / "submissions" / "aptos" / "latest.json").read_text())
    assert summary["metric"] == "qwk" and summary["format"] == "label"
    assert len(summary["cutoffs"]) == 4 and summary["cutoffs"] == sorted(summary["cutoffs"])
    assert "grades written by cut-offs on the expected grade" in result.stderr
    assert summary["local_score"] == pytest.approx(
        cohen_kappa_score(truth["diagnosis"].astype(int), written["diagnosis"].astype(int), weights="quadratic",
                          labels=range(5)), abs=1e-4)


@pytest.mark.parametrize("metric, threshold, direction", [("accuracy", 0.99, "lower"), ("logloss", 0.01, "higher")])
def test_a_threshold_no_run_reaches_says_which_way_to_move_it(metric, threshold, direction, tmp_path):
    """Runs finished but none kept: the error gives the best finished run's score and which way THRESHOLD would
    have to move (down for accuracy, up for logloss), not only 'run make ensemble'."""
    folder = write_image_competition(tmp_path / "cifar")
    workspace = open_workspace(folder, tmp_path / "models", metric=metric)
    hand_made_runs(workspace, metric, threshold=threshold)
    best = max if metric == "accuracy" else min
    scores = [json.loads((workspace.store.runs_dir / f"run-{run:04d}" / "run.json").read_text())[
        "validation_accuracy" if metric == "accuracy" else "validation_score"] for run in (1, 2)]
    result = run_in_process("submit", "--data", folder, "--models-dir", tmp_path / "models",
                            "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert result.returncode == 2 and not (tmp_path / "submissions").exists()
    assert result.stderr.strip().endswith(
        f"run 'make ensemble' for more runs, or submit with a {direction} THRESHOLD (the best of 2 finished run(s) "
        f"scored {best(scores):.4f})"), result.stderr
