"""VGG19 features + random forest: offline weights, reproducible random features, the feature cache, the stored stack.

Everything runs with WEIGHTS=none (random weights; this machine cannot download ImageNet's) at 32x32,
the smallest size VGG19 takes, on tiny competitions.
"""

import logging

import joblib
import numpy as np
import pytest
from conftest import synthetic_images, write_csv_competition

from kaggle_pipeline import stack
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.stack import (
    WEIGHTS_FILE,
    cached_features,
    extract_features,
    load_stack,
    run_stack,
    weights_label,
    weights_path_for,
)
from kaggle_pipeline.workspace import open_workspace


def test_missing_imagenet_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    expected = tmp_path / "keras" / "models" / WEIGHTS_FILE
    with pytest.raises(PipelineError) as raised:
        weights_path_for("imagenet")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{expected}: ImageNet weights for VGG19 not found (offline)")
    assert f"put {WEIGHTS_FILE} there" in message and "WEIGHTS=none" in message


def test_imagenet_weights_are_found_where_keras_keeps_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / WEIGHTS_FILE).write_bytes(b"not really weights")
    assert weights_path_for("imagenet") == tmp_path / "models" / WEIGHTS_FILE


def test_given_weights_file_must_exist_and_be_a_keras_file(tmp_path):
    missing = tmp_path / "mine.weights.h5"
    with pytest.raises(PipelineError, match=f"^{missing}: VGG19 weights file not found"):
        weights_path_for(str(missing))
    text_file = tmp_path / "weights.txt"
    text_file.write_text("hello")
    with pytest.raises(PipelineError, match=f"^{text_file}: not a Keras weights file"):
        weights_path_for(str(text_file))
    assert weights_path_for("none") is None


def test_labels_say_random_loudly():
    assert weights_label("imagenet") == "imagenet"
    assert "random" in weights_label("none")
    assert weights_label("/somewhere/vgg.weights.h5") == "vgg.weights.h5"


def test_random_features_are_reproducible():
    images, _ = synthetic_images(12, side=16, channels=1)
    first = extract_features(images, "none", size=32, batch_size=8, seed=3)
    again = extract_features(images, "none", size=32, batch_size=8, seed=3)
    other_seed = extract_features(images, "none", size=32, batch_size=8, seed=4)
    assert first.shape == (12, 512) and first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_seed)


def test_vgg19_needs_32_pixels():
    images, _ = synthetic_images(2, side=16)
    with pytest.raises(PipelineError, match="size=16: VGG19 needs images of at least 32x32"):
        extract_features(images, "none", size=16)


def test_features_are_cached_per_size(tmp_path, monkeypatch):
    folder = write_csv_competition(tmp_path / "small", count=30, test_count=6)
    workspace = open_workspace(folder, tmp_path / "models")
    train, test = cached_features(workspace, "none", size=32)
    assert train.shape == (30, 512) and test.shape == (6, 512)
    cache_files = list(workspace.store.cache_dir.glob("vgg19-*.npz"))
    assert len(cache_files) == 1
    written = cache_files[0].stat().st_mtime_ns

    def must_not_run(*args, **kwargs):
        raise AssertionError("features were computed again instead of read from the cache")

    with monkeypatch.context() as patch:
        patch.setattr(stack, "extract_features", must_not_run)
        cached_train, cached_test = cached_features(workspace, "none", size=32)
    np.testing.assert_array_equal(cached_train, train)
    np.testing.assert_array_equal(cached_test, test)
    assert cache_files[0].stat().st_mtime_ns == written

    cached_features(workspace, "none", size=40)
    assert len(list(workspace.store.cache_dir.glob("vgg19-*.npz"))) == 2


def test_a_corrupt_cache_is_computed_again(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    folder = write_csv_competition(tmp_path / "small", count=30, test_count=6)
    workspace = open_workspace(folder, tmp_path / "models")
    train, _ = cached_features(workspace, "none", size=32)
    cache_file = next(workspace.store.cache_dir.glob("vgg19-*.npz"))
    cache_file.write_bytes(b"PK\x03\x04 truncated")
    again, _ = cached_features(workspace, "none", size=32)
    np.testing.assert_array_equal(again, train)
    assert "cannot read cached features" in caplog.text


def test_run_stack_stores_predictions_beside_the_runs(csv_competition, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace = open_workspace(csv_competition, tmp_path / "models")
    assert load_stack(workspace.store) is None
    record = run_stack(workspace, weights="none", size=32, trees=10)
    num_classes = workspace.competition.num_classes

    folder = workspace.store.root / "stack"
    assert {path.name for path in folder.iterdir()} == {"stack.json", "predictions.npz", "forest.joblib"}
    assert record["kind"] == "vgg19-randomforest" and "random" in record["weights"]
    assert record["fingerprint"] == workspace.competition.fingerprint()
    assert 0.0 <= record["validation_accuracy"] <= 1.0
    assert "RANDOM" in caplog.text

    stored, predictions = load_stack(workspace.store)
    assert stored == record
    assert predictions["validation"].shape == (len(workspace.validation_index), num_classes)
    assert predictions["test"].shape == (len(workspace.competition.x_test), num_classes)
    for probabilities in predictions.values():
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    forest = joblib.load(folder / "forest.joblib")
    features, _ = cached_features(workspace, "none", size=32)
    np.testing.assert_allclose(forest.predict_proba(features[workspace.validation_index]), predictions["validation"],
                               atol=1e-6)

    # A damaged prediction file fails its checksum: the stacker is left out of the vote, with a message.
    content = bytearray((folder / "predictions.npz").read_bytes())
    content[len(content) // 2] ^= 0xFF
    (folder / "predictions.npz").write_bytes(bytes(content))
    assert load_stack(workspace.store) is None
    assert "checksum does not match stack.json; the stacker is left out" in caplog.text


def test_a_class_missing_from_train_gets_a_zero_column():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(rng.normal(size=(20, 4)), np.arange(20) % 2 * 2)
    probabilities = stack._probabilities(forest, rng.normal(size=(3, 4)), num_classes=3)
    assert probabilities.shape == (3, 3)
    assert (probabilities[:, 1] == 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
