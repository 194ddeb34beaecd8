"""The search space vocabulary, the reference architecture and the BN momentum rule."""

import numpy as np
import pytest

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.model import (
    REFERENCE_PARAMS,
    batch_norm_momentum,
    build_model,
    get_space,
    hyperopt_point,
)


def test_reference_point_uses_choice_indices():
    space, reference = get_space("vgg")
    point = hyperopt_point(space, reference)
    assert point["conv1_filters"] == 1 and point["conv2_filters"] == 1  # 32 of [16, 32, 48], 64 of [32, 64, 96]
    assert point["dense1_units"] == 1 and point["dense2_units"] == 2
    assert point["optimizer"] == 0 and point["learning_rate"] == 0
    assert point["conv1_dropout"] == pytest.approx(0.13243678)
    assert "batch_size" not in point  # fixed, not searched


def test_reference_point_evaluates_back_to_the_reference():
    from hyperopt import space_eval

    space, reference = get_space("vgg")
    assert space_eval(space, hyperopt_point(space, reference)) == reference


def test_unknown_space_is_a_clear_error():
    with pytest.raises(PipelineError, match="--space nope"):
        get_space("nope")


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
