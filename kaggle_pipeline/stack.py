"""VGG19 features into a random forest: a second kind of model, stored so it can vote beside the CNN runs.

Every competition image (train and test) goes once through VGG19 without its top, average-pooled to 512
numbers; the features are cached per data, weights and image size, so trying another forest costs seconds.
A random forest is fitted on the training part of the fixed split and predicts the validation part and the
test set. The result lives in ``models/<competition>/stack/``::

    predictions.npz     validation and test class probabilities, float32, columns in class-index order
    forest.joblib       the fitted forest
    stack.json          settings, validation accuracy and timings; written last, so it means "complete"

This machine is offline: Keras cannot download the ImageNet weights, so ``weights_path_for`` looks for the
file where Keras keeps it and says where to put it; WEIGHTS=none asks for random weights, and every summary
says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.files import first_line
from kaggle_pipeline.progress import format_seconds
from kaggle_pipeline.store import StackRecord, file_digest, library_versions, read_arrays

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_SUFFIXES = (".h5", ".hdf5", ".keras")  # what keras' load_weights reads (.weights.h5 ends in .h5)
FEATURES = 512  # VGG19's last convolution block, average-pooled
MINIMUM_SIZE = 32  # VGG19 halves the image five times
CHUNK = 1024  # images per model.predict call: one progress line at most per chunk
PROGRESS_SECONDS = 10.0


# Weights ----------------------------------------------------------------------------------------
def weights_path_for(weights: str) -> Path | None:
    """The weights file to load (None for random weights); never downloads."""
    if weights == "none":
        return None
    if weights == "imagenet":
        keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
        path = keras_home / "models" / WEIGHTS_FILE
        if not path.is_file():
            raise PipelineError(
                f"{path}: ImageNet weights for VGG19 not found (offline); put {WEIGHTS_FILE} there, "
                "pass WEIGHTS=<file>, or WEIGHTS=none for random weights"
            )
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise PipelineError(f"{path}: VGG19 weights file not found (WEIGHTS=); use imagenet, none or an existing file")
    if not path.name.endswith(WEIGHTS_SUFFIXES):
        raise PipelineError(f"{path}: not a Keras weights file (expected {', '.join(WEIGHTS_SUFFIXES)})")
    return path


def weights_label(weights: str) -> str:
    if weights == "none":
        return "random (WEIGHTS=none)"
    return "imagenet" if weights == "imagenet" else Path(weights).name


def _weights_identity(weights: str, seed: int) -> str:
    """What makes the features what they are: the weights file's bytes, or the seed of random weights."""
    path = weights_path_for(weights)
    return f"none-{seed}" if path is None else file_digest(path)


# Features ---------------------------------------------------------------------------------------
def extract_features(
    images: np.ndarray, weights: str, size: int, batch_size: int = 64, label: str = "features", seed: int = 0,
) -> np.ndarray:
    """VGG19 features, float32 ``(N, 512)``, of uint8 images ``(N, height, width, 1 or 3)``."""
    if size < MINIMUM_SIZE:
        raise ParameterError("size", size, f"VGG19 needs images of at least {MINIMUM_SIZE}x{MINIMUM_SIZE}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise PipelineError(f"{label}: expected images shaped (N, height, width, 1 or 3), got {images.shape}")
    weights_path = weights_path_for(weights)  # before TensorFlow starts: a missing file fails at once
    if len(images) == 0:
        return np.zeros((0, FEATURES), dtype=np.float32)

    from kaggle_pipeline.train import import_tensorflow_quietly  # importing train already starts TF quietly

    import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)  # after clear_session, which forgets the seed; makes random weights repeat
    try:
        model = keras.applications.VGG19(include_top=False, weights=None if weights_path is None else str(weights_path),
                                         input_shape=(size, size, 3), pooling="avg")
    except (ValueError, OSError) as error:
        raise PipelineError(f"{weights_path}: cannot load VGG19 weights ({first_line(error)})") from None

    def prepare(batch):
        batch = tf.cast(batch, tf.float32)
        if batch.shape[-1] == 1:
            batch = tf.repeat(batch, 3, axis=-1)
        batch = tf.image.resize(batch, (size, size), method="bilinear")
        return keras.applications.vgg19.preprocess_input(batch)  # expects 0..255 RGB

    logger.info(f"  {label}: VGG19, weights {weights_label(weights)}, on {len(images):,} images at {size}x{size}")
    chunks = []
    started = last_line = time.perf_counter()
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK]
        dataset = tf.data.Dataset.from_tensor_slices(chunk).batch(batch_size).map(prepare).prefetch(tf.data.AUTOTUNE)
        chunks.append(np.asarray(model.predict(dataset, verbose=0), dtype=np.float32))
        done, now = start + len(chunk), time.perf_counter()
        if now - last_line >= PROGRESS_SECONDS or done == len(images):
            last_line = now
            rate = done / max(now - started, 1e-9)
            logger.info(f"  {label}: {done:,}/{len(images):,} images  {rate:,.0f} img/s  "
                f"ETA {format_seconds((len(images) - done) / rate)}")
    return np.concatenate(chunks)


def features_key(workspace, weights: str, size: int, seed: int = 0) -> str:
    """What the cached features depend on (data, weights, size), as the key the store names their file by."""
    config = {
        "fingerprint": workspace.competition.fingerprint(),
        "weights": f"{weights_label(weights)}:{_weights_identity(weights, seed)}",
        "size": size,
    }
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def cached_features(workspace, weights: str, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features of every competition train and test image, computed once per data, weights and size."""
    competition = workspace.competition
    store = workspace.store
    key = features_key(workspace, weights, size, seed)
    try:
        saved = store.read_features(key)
        if saved is not None:
            train, test = saved["train"], saved["test"]
            if train.shape == (len(competition.x_train), FEATURES) and test.shape == (len(competition.x_test), FEATURES):
                return train, test
            logger.warning(f"{store.features_cache_path(key)}: cached features have the wrong shape; computing them again")
    except PipelineError as error:
        logger.warning(f"store: cannot read cached features: {error}")
    train = extract_features(competition.x_train, weights, size, label="train features", seed=seed)
    test = extract_features(competition.x_test, weights, size, label="test features", seed=seed)
    store.write_features(key, train, test)
    return train, test


# The forest -------------------------------------------------------------------------------------
def stack_dir(store) -> Path:
    return store.stack_dir


def _probabilities(forest, features: np.ndarray, num_classes: int) -> np.ndarray:
    """Columns in class-index order, all ``num_classes`` of them: a class missing from train gets zeros."""
    probabilities = np.zeros((len(features), num_classes), dtype=np.float32)
    if len(features):
        probabilities[:, forest.classes_.astype(int)] = forest.predict_proba(features)
    return probabilities


def _joblib_bytes(obj) -> bytes:
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def run_stack(workspace, weights: str = "imagenet", size: int = 64, trees: int = 300, seed: int = 0) -> dict:
    """Fit the forest on VGG19 features and store its predictions beside the runs; returns stack.json."""
    from sklearn.ensemble import RandomForestClassifier

    label = weights_label(weights)
    started = time.perf_counter()
    train_features, test_features = cached_features(workspace, weights, size, seed)
    feature_seconds = time.perf_counter() - started

    started = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=trees, n_jobs=-1, random_state=seed)
    forest.fit(train_features[workspace.train_index], workspace.y_train)
    fit_seconds = time.perf_counter() - started
    num_classes = workspace.competition.num_classes
    validation = _probabilities(forest, train_features[workspace.validation_index], num_classes)
    test = _probabilities(forest, test_features, num_classes)
    accuracy = float(np.mean(validation.argmax(axis=1) == workspace.y_validation)) if len(validation) else 0.0

    store = workspace.store
    files = store.write_stack_files(validation, test, _joblib_bytes(forest))
    record = StackRecord.from_dict({
        "kind": "vgg19-randomforest", "weights": label, "size": size, "trees": trees, "seed": seed,
        "validation_accuracy": accuracy, "feature_seconds": round(feature_seconds, 2),
        "fit_seconds": round(fit_seconds, 2), "fingerprint": workspace.competition.fingerprint(),
        "versions": library_versions(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": files,
    }, "stack record")
    store.write_stack_record(record)
    warning = "  -- RANDOM VGG19 WEIGHTS, NOT IMAGENET: features are untrained" if weights == "none" else ""
    logger.info(f"stack: VGG19 features (weights {label}, {size}x{size}) + random forest of {trees} trees: "
        f"val_acc {accuracy:.4f}  (features {format_seconds(feature_seconds)}, fit {format_seconds(fit_seconds)}){warning}")
    return record.to_dict()


def load_stack(store) -> tuple[dict, dict[str, np.ndarray]] | None:
    """The stored stack's record and its predictions, or None if no complete stack is stored."""
    stored = store.stack_record()
    if stored is None:
        return None
    record = stored.to_dict()
    for name, expected in record.get("files", {}).items():
        path = stack_dir(store) / name
        if "/" in name or path.is_symlink() or not path.is_file() or file_digest(path) != expected:
            logger.warning(f"{stack_dir(store) / name}: missing or its checksum does not match stack.json; the stacker is left "
                "out (run 'make stack' again)")
            return None
    arrays = read_arrays(store.stack_predictions_path, {"validation": ("f", 2), "test": ("f", 2)},
                         "run 'make stack' again")
    return record, {key: arrays[key] for key in ("validation", "test")}
