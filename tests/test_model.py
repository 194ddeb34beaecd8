"""The search space vocabulary, the reference architecture, augmentation, schedules and the BN momentum rule."""

import keras
import numpy as np
import pytest

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.network import (
    batch_norm_momentum,
    build_model,
    complete_params,
    learning_rate_schedule,
    set_whitening,
    whitening_weights,
)
from kaggle_pipeline.spaces import (
    DEFAULT_PARAMS,
    REFERENCE_PARAMS,
    get_space,
    hyperopt_point,
)


def test_reference_point_uses_choice_indices():
    space, _ = get_space("vgg")
    point = hyperopt_point(space, REFERENCE_PARAMS)
    assert point["conv1_filters"] == 1 and point["conv2_filters"] == 1  # 32 of [16, 32, 48], 64 of [32, 64, 96]
    assert point["dense1_units"] == 1 and point["dense2_units"] == 2
    assert point["optimizer"] == 0 and point["learning_rate"] == 0
    assert point["conv1_dropout"] == pytest.approx(0.13243678)
    assert "batch_size" not in point  # fixed, not searched


def test_starting_points_evaluate_back_to_themselves():
    from hyperopt import space_eval

    for name in ("vgg", "vgg-quick"):
        space, starting_points = get_space(name)
        assert starting_points[0] == DEFAULT_PARAMS
        assert starting_points[1] == REFERENCE_PARAMS  # our recipe is measured against the reference's
        for point in starting_points:
            assert space_eval(space, hyperopt_point(space, point)) == point
    space, starting_points = get_space("vgg-wide")
    assert [point["flip"] for point in starting_points] == [True, False]  # does the data allow mirror images?
    for point in starting_points:
        assert point["conv3_filters"] == 128
        assert space_eval(space, hyperopt_point(space, point)) == point


def test_params_from_before_the_recipe_keys_train_as_the_reference_did():
    architecture_only = {key: REFERENCE_PARAMS[key] for key in ("conv1_filters", "conv2_filters", "conv1_dropout",
                         "conv2_dropout", "dense1_units", "dense1_dropout", "dense2_units", "dense2_dropout",
                         "optimizer", "learning_rate", "batch_size")}
    assert complete_params(architecture_only) == REFERENCE_PARAMS
    with pytest.raises(PipelineError, match="missing conv1_filters"):
        complete_params({key: value for key, value in REFERENCE_PARAMS.items() if key != "conv1_filters"})
    with pytest.raises(PipelineError, match="schedule 'step'"):
        complete_params({**REFERENCE_PARAMS, "schedule": "step"})


def test_unknown_space_is_a_clear_error():
    with pytest.raises(PipelineError, match="--space nope: unknown search space; choose one of vgg, vgg-quick, vgg-wide, tiny"):
        get_space("nope")


def test_the_registry_lists_registers_and_hands_out_fresh_copies():
    from hyperopt import hp

    from kaggle_pipeline import spaces

    listed = spaces.list_spaces()
    assert list(listed) == ["vgg", "vgg-quick", "vgg-wide", "tiny"] and all(listed.values())
    _, starting_points = get_space("tiny")
    starting_points[0]["conv1_filters"] = 999  # a caller's edit does not reach the registry
    assert get_space("tiny")[1] == [spaces.TINY_PARAMS]
    try:
        spaces.register_space("mine", lambda: {**spaces.TINY_PARAMS, "conv1_filters": hp.choice("conv1_filters", [4, 6])},
                              [spaces.TINY_PARAMS], "one searched knob")
        assert spaces.list_spaces()["mine"] == "one searched knob"
        space, points = get_space("mine")
        assert hyperopt_point(space, points[0]) == {"conv1_filters": 0}
    finally:
        spaces._REGISTRY.pop("mine", None)


def test_the_command_line_imports_no_heavy_library_before_a_stage_needs_it():
    """Every process pays for what its parser imports: TensorFlow (~5 s) waits for training, scikit-learn
    (~1.4 s) for voting, hyperopt (~1 s) for a search space."""
    import subprocess
    import sys

    code = ("import sys, kaggle_pipeline, kaggle_pipeline.spaces; from kaggle_pipeline.cli import build_parser; "
            "assert build_parser().parse_args(['search', '--space', 'vgg-wide']).space == 'vgg-wide'; "
            "assert build_parser().parse_args(['submit', '--vote', 'select']).vote == 'select'; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'; "
            "assert 'sklearn' not in sys.modules and 'hyperopt' not in sys.modules, 'scikit-learn or hyperopt imported'; "
            "assert kaggle_pipeline.VotingEnsemble.__module__ == 'kaggle_pipeline.estimator'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reference_architecture_matches_the_write_up():
    model = build_model(REFERENCE_PARAMS, (28, 28, 1), 5)
    flatten = next(layer for layer in model.layers if layer.name.startswith("flatten"))
    assert flatten.output.shape[-1] == 5 * 5 * 64  # 28 -same-> 28 -pool-> 14 -valid x2-> 10 -pool-> 5
    assert model.output_shape == (None, 5)
    convolutions = [layer for layer in model.layers if layer.name.startswith("conv2d")]
    assert [layer.filters for layer in convolutions] == [32, 32, 64, 64]
    dense = [layer.units for layer in model.layers if layer.name.startswith("dense")]
    assert dense == [256, 512]


def test_model_takes_uint8_and_returns_probabilities():
    model = build_model(REFERENCE_PARAMS, (12, 12, 3), 4)
    images = np.random.default_rng(0).integers(0, 256, (6, 12, 12, 3), dtype=np.uint8)
    probabilities = np.asarray(model.predict(images, verbose=0))
    assert probabilities.dtype == np.float32 and probabilities.shape == (6, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_batch_norm_momentum_follows_the_epoch_length():
    assert batch_norm_momentum(422) == pytest.approx(0.99)  # 54k images / 128
    assert batch_norm_momentum(42) == pytest.approx(1 - 1 / 10.5)  # 5.4k images: ~0.905
    assert batch_norm_momentum(1) == pytest.approx(0.9)


def test_augmentation_runs_only_in_training():
    params = {**DEFAULT_PARAMS, "translate": 0.1, "rotate": 0.03, "zoom": 0.1, "flip": True}
    augmented = build_model(params, (28, 28, 1), 5)
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    scaled = images.astype(np.float32) / 255.0

    block = augmented.get_layer("augmentation")
    assert [type(layer).__name__ for layer in block.layers] == ["RandomTranslation", "RandomRotation", "RandomZoom", "RandomFlip"]
    np.testing.assert_array_equal(np.asarray(block(scaled, training=False)), scaled)
    assert not np.allclose(np.asarray(block(scaled, training=True)), scaled)

    # At inference the augmented model is exactly the plain model with the same weights.
    plain = build_model({**params, "translate": 0.0, "rotate": 0.0, "zoom": 0.0, "flip": False}, (28, 28, 1), 5)
    with pytest.raises(ValueError):
        plain.get_layer("augmentation")
    plain.set_weights(augmented.get_weights())
    np.testing.assert_allclose(augmented.predict(images, verbose=0), plain.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(augmented.predict(images, verbose=0), augmented.predict(images, verbose=0))


def test_augmented_model_saves_and_loads_safely(tmp_path):
    model = build_model({**DEFAULT_PARAMS, "translate": 0.1, "flip": True}, (28, 28, 1), 5)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True, compile=False)
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def test_cosine_schedule_warms_up_then_decays():
    schedule = learning_rate_schedule({**DEFAULT_PARAMS, "learning_rate": 1e-3}, steps_per_epoch=100, epochs=10)
    rates = [float(schedule(step)) for step in (0, 50, 100, 550, 1000)]
    assert rates[0] == pytest.approx(5e-5)  # a twentieth of the rate
    assert rates[0] < rates[1] < rates[2] == pytest.approx(1e-3)  # linear warm-up over a tenth of training
    assert rates[2] > rates[3] > rates[4] == pytest.approx(1e-5)  # cosine down to 1% by the last step
    assert learning_rate_schedule(REFERENCE_PARAMS, 100, 10) == 1e-3  # plateau: constant, the callback lowers it


def test_third_block_and_label_smoothing():
    model = build_model({**DEFAULT_PARAMS, "conv3_filters": 128, "label_smoothing": 0.1}, (28, 28, 1), 10)
    convolutions = [layer.filters for layer in model.layers if layer.name.startswith("conv2d")]
    assert convolutions == [32, 32, 64, 64, 128, 128]
    flatten = next(layer for layer in model.layers if layer.name.startswith("flatten"))
    assert flatten.output.shape[-1] == 3 * 3 * 128  # 28 -> 14 -> 7 -> 3, all 'same'
    assert model.loss.label_smoothing == pytest.approx(0.1)


def test_the_train_step_is_traced_once():
    """build_model builds the optimizer's slots, so fit traces its step once, not twice, and trains exactly as
    a model whose optimizer Keras builds inside that first trace."""
    images = np.random.default_rng(2).integers(0, 256, (40, 12, 12, 1), dtype=np.uint8)
    labels = keras.utils.to_categorical(np.arange(40) % 3, 3)

    def trained(build_the_optimizer_first: bool):
        keras.utils.set_random_seed(5)
        model = build_model(DEFAULT_PARAMS, (12, 12, 1), 3)
        if not build_the_optimizer_first:
            unbuilt = type(model.optimizer).from_config(model.optimizer.get_config())
            model.compile(optimizer=unbuilt, loss=model.loss, metrics=["accuracy"])
        traces = []
        train_step = model.train_step
        model.train_step = lambda data: traces.append(1) or train_step(data)
        model.fit(images, labels, batch_size=16, epochs=2, shuffle=False, verbose=0)
        return len(traces), model.get_weights()

    traces_built, weights_built = trained(build_the_optimizer_first=True)
    traces_lazy, weights_lazy = trained(build_the_optimizer_first=False)
    assert (traces_built, traces_lazy) == (1, 2)
    for built, lazy in zip(weights_built, weights_lazy, strict=True):
        np.testing.assert_array_equal(built, lazy)


def _smooth_images(count: int, side: int, channels: int) -> np.ndarray:
    """Images whose neighbouring pixels are correlated (running sums of noise), as photos' are: their patches
    have a covariance far from the identity, so that whitening has something to undo."""
    noise = np.random.default_rng(3).normal(size=(count, side, side, channels))
    smooth = noise.cumsum(axis=1).cumsum(axis=2)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).round().astype(np.uint8)


def test_the_whitening_layer_whitens_the_training_images_patches():
    images = _smooth_images(60, 12, 3)
    model = build_model({**DEFAULT_PARAMS, "whiten": True}, (12, 12, 3), 4)
    whiten = model.get_layer("whiten")
    assert not whiten.trainable and whiten.filters == 24  # 4 x 3 patch values, each filter with both signs
    set_whitening(model, images)
    kernel, bias = whiten.get_weights()
    np.testing.assert_array_equal(kernel, whitening_weights(images)[0])

    linear = keras.layers.Conv2D(24, 2, padding="same")  # the layer without its ReLU
    linear.build((None, 12, 12, 3))
    linear.set_weights([kernel, bias])
    scaled = images.astype(np.float32) / 255.0
    outputs = np.asarray(linear(scaled))[:, :-1, :-1]  # the last row and column see Keras' zero padding
    # A filter at (y, x) reads the patch that starts there, channels innermost: the orientation whitening assumed.
    patch = np.stack([scaled[:, y, x] for y, x in ((4, 7), (4, 8), (5, 7), (5, 8))], axis=1).reshape(len(images), 12)
    np.testing.assert_allclose(outputs[:, 4, 7], patch @ kernel.reshape(12, 24) + bias, rtol=1e-4, atol=1e-4)
    # Over the training patches the first twelve outputs are white: centred, unit variance, uncorrelated (eps
    # shrinks the smallest direction a little); the other twelve are their negatives.
    first = outputs[..., :12].reshape(-1, 12).astype(np.float64)
    np.testing.assert_allclose(first.mean(axis=0), 0.0, atol=1e-3)
    covariance = np.cov(first, rowvar=False)
    np.testing.assert_allclose(covariance, np.diag(np.diag(covariance)), atol=0.02)
    assert 0.9 < np.diag(covariance).min() and np.diag(covariance).max() < 1.02
    np.testing.assert_allclose(outputs[..., 12:], -outputs[..., :12], rtol=1e-5, atol=1e-5)


def test_whitening_is_off_for_params_that_predate_it_and_finite_for_blank_images(tmp_path):
    old_params = {key: value for key, value in REFERENCE_PARAMS.items() if key != "whiten"}
    with pytest.raises(ValueError):
        build_model(old_params, (28, 28, 1), 5).get_layer("whiten")
    kernel, bias = whitening_weights(np.zeros((5, 8, 8, 1), dtype=np.uint8))
    assert np.isfinite(kernel).all() and np.isfinite(bias).all()

    # The layer's weights are saved with the model: a kept run predicts with them.
    images = _smooth_images(20, 28, 1)
    model = build_model({**DEFAULT_PARAMS, "whiten": True}, (28, 28, 1), 5)
    set_whitening(model, images)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True, compile=False)
    np.testing.assert_array_equal(loaded.get_layer("whiten").get_weights()[0], model.get_layer("whiten").get_weights()[0])
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def test_whitening_sums_its_patches_in_chunks_and_samples_large_sets_evenly(monkeypatch):
    import kaggle_pipeline.network as network

    images = _smooth_images(60, 12, 3)
    whole = whitening_weights(images)
    monkeypatch.setattr(network, "WHITENING_CHUNK_PATCHES", 300)  # 2 images of 121 patches per chunk
    for chunked, expected in zip(whitening_weights(images), whole, strict=True):
        np.testing.assert_allclose(chunked, expected, rtol=1e-4, atol=1e-4)
    # Past WHITENING_PATCHES the images are sampled evenly through the set, first and last included.
    monkeypatch.setattr(network, "WHITENING_PATCHES", 121 * 3)
    sampled = whitening_weights(images)[1]
    np.testing.assert_allclose(sampled, whitening_weights(images[[0, 30, 59]])[1], rtol=1e-5)
