"""The VGG-like family's depth follows the image: conv blocks and head per input side (network.architecture)."""

import numpy as np
import pytest
from conftest import synthetic_images

from kaggle_pipeline.network import MAX_BLOCKS, MAX_FILTERS, architecture, build_model
from kaggle_pipeline.spaces import DEFAULT_PARAMS, REFERENCE_PARAMS, TINY_PARAMS, WIDE_PARAMS

# The 28x28 nets as build_model made them before the depth rule, at commit a7d0fe1 (printed there with
# [(type(layer).__name__, layer.output.shape[1:]) for layer in model.layers] and model.count_params(),
# 10 classes). The rule must leave them exactly as they were.
REFERENCE_28_LAYERS = [
    ("InputLayer", None), ("Rescaling", (28, 28, 1)),
    ("Conv2D", (28, 28, 32)), ("Conv2D", (28, 28, 32)), ("MaxPooling2D", (14, 14, 32)), ("Dropout", (14, 14, 32)),
    ("Conv2D", (12, 12, 64)), ("Conv2D", (10, 10, 64)), ("BatchNormalization", (10, 10, 64)),
    ("MaxPooling2D", (5, 5, 64)), ("Dropout", (5, 5, 64)),
    ("Flatten", (1600,)),
    ("Dense", (256,)), ("BatchNormalization", (256,)), ("Dropout", (256,)),
    ("Dense", (512,)), ("BatchNormalization", (512,)), ("Dropout", (512,)),
    ("Dense", (10,)),
]
REFERENCE_28_PARAMETERS = 614_890  # REFERENCE_PARAMS and DEFAULT_PARAMS alike without whitening
WIDE_28_PARAMETERS = 722_154  # WIDE_PARAMS (the full preset's net) without whitening: three 'same' blocks, 28 -> 14 -> 7 -> 3
TINY_28_PARAMETERS = 4_886
# The whitening layer (params "whiten", on in the default recipe): 8 filters of 2x2 on one channel and their
# biases, and the first convolution reads its 8 channels instead of 1 (3 x 3 x 7 x 32 more weights).
WHITENING_28_PARAMETERS = 2 * 2 * 1 * 8 + 8 + 3 * 3 * 7 * 32


def _layers(model) -> list[tuple[str, tuple | None]]:
    return [(type(layer).__name__, None if type(layer).__name__ == "InputLayer" else tuple(layer.output.shape[1:]))
            for layer in model.layers]


@pytest.mark.parametrize("params", [REFERENCE_PARAMS, {**DEFAULT_PARAMS, "whiten": False}], ids=["reference", "default"])
def test_the_28_pixel_reference_net_is_unchanged(params):
    model = build_model(params, (28, 28, 1), 10)
    assert _layers(model) == REFERENCE_28_LAYERS
    assert model.count_params() == REFERENCE_28_PARAMETERS


def test_the_default_net_is_the_reference_net_after_the_whitening_layer():
    model = build_model(DEFAULT_PARAMS, (28, 28, 1), 10)
    assert _layers(model) == REFERENCE_28_LAYERS[:2] + [("Conv2D", (28, 28, 8))] + REFERENCE_28_LAYERS[2:]
    assert model.count_params() == REFERENCE_28_PARAMETERS + WHITENING_28_PARAMETERS
    assert model.get_layer("whiten").count_params() == 2 * 2 * 1 * 8 + 8 and not model.get_layer("whiten").trainable


def test_the_other_28_pixel_nets_are_unchanged():
    assert build_model({**WIDE_PARAMS, "whiten": False}, (28, 28, 1), 10).count_params() == WIDE_28_PARAMETERS
    assert build_model(WIDE_PARAMS, (28, 28, 1), 10).count_params() == WIDE_28_PARAMETERS + WHITENING_28_PARAMETERS
    assert build_model(TINY_PARAMS, (28, 28, 1), 10).count_params() == TINY_28_PARAMETERS
    plan = architecture((28, 28, 1), WIDE_PARAMS)
    assert [block.padding for block in plan.blocks] == ["same"] * 3 and plan.final_shape == (3, 3)


@pytest.mark.parametrize("side, filters, head, final_side", [
    (8, [32, 64], "flatten", 2),  # 8 -> 4 -> 2: the params' two blocks, no more (another would leave 1x1)
    (12, [32, 64], "flatten", 3),
    (28, [32, 64], "flatten", 5),  # the reference: 28 -> 14 -> 12 -> 10 -> 5
    (32, [32, 64, 128], "flatten", 4),  # 32 -> 16 -> 8 -> 4
    (64, [32, 64, 128, 256], "gap", 4),
    (128, [32, 64, 128, 256, 256], "gap", 4),  # filters capped at MAX_FILTERS
    (256, [32, 64, 128, 256, 256], "gap", 8),  # blocks capped at MAX_BLOCKS: the map stays 8x8, GAP averages it
])
def test_depth_follows_the_input_side(side, filters, head, final_side):
    plan = architecture((side, side, 3), DEFAULT_PARAMS)
    assert [block.filters for block in plan.blocks] == filters
    assert plan.head == head and plan.final_side == final_side
    assert len(plan.blocks) <= MAX_BLOCKS and max(filters) <= MAX_FILTERS
    # Added blocks reuse the last block's dropout; every block after the first has batch norm.
    assert [block.dropout for block in plan.blocks[1:]] == [DEFAULT_PARAMS["conv2_dropout"]] * (len(filters) - 1)
    assert [block.batch_norm for block in plan.blocks] == [False] + [True] * (len(filters) - 1)


def test_the_plan_is_what_build_model_builds():
    for side in (8, 32, 64):
        plan = architecture((side, side, 1), TINY_PARAMS)
        model = build_model(TINY_PARAMS, (side, side, 1), 3)
        convolutions = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
        assert [layer.filters for layer in convolutions] == [block.filters for block in plan.blocks for _ in (0, 1)]
        pools = [layer for layer in model.layers if type(layer).__name__ == "MaxPooling2D"]
        assert tuple(pools[-1].output.shape[1:3]) == plan.final_shape
        heads = {type(layer).__name__ for layer in model.layers} & {"Flatten", "GlobalAveragePooling2D"}
        assert heads == {"Flatten" if plan.head == "flatten" else "GlobalAveragePooling2D"}


def test_rectangular_images_follow_the_smaller_side():
    plan = architecture((32, 64, 3), DEFAULT_PARAMS)
    assert len(plan.blocks) == len(architecture((32, 32, 3), DEFAULT_PARAMS).blocks) == 3
    assert plan.final_shape == (4, 8) and plan.final_side == 4 and plan.head == "flatten"
    wide = architecture((200, 64, 1), DEFAULT_PARAMS)
    assert len(wide.blocks) == 4 and wide.final_shape == (12, 4) and wide.head == "gap"


def test_a_third_block_never_collapses_a_small_map():
    # conv3 is built while the map entering it has 2 pixels or more: 8 -> 4 -> 2 -> 1, 7 -> 3 -> 1 (no conv3).
    assert [block.filters for block in architecture((8, 8, 1), WIDE_PARAMS).blocks] == [32, 64, 128]
    plan = architecture((7, 9, 1), WIDE_PARAMS)
    assert [block.filters for block in plan.blocks] == [32, 64] and plan.final_shape == (1, 2)
    assert architecture((4, 4, 1), WIDE_PARAMS).final_side == 1
    # Below 4 px the two blocks of the params cannot both pool: a ValueError, which a search records as the
    # trial's failure with this reason (test_hostile_store).
    with pytest.raises(ValueError, match=r"images of 2x5 pixels: too small .* \(at least 4x4\)"):
        architecture((2, 5, 1), DEFAULT_PARAMS)


@pytest.mark.parametrize("side", [8, 64])
def test_small_and_large_images_train(side):
    from kaggle_pipeline.train import train_run

    images, labels = synthetic_images(96, side=side, seed=side)
    trained = train_run(TINY_PARAMS, images[:64], labels[:64], images[64:], labels[64:], num_classes=3, seed=0,
                        epochs=1, precision="float32")
    assert trained.validation_proba.shape == (32, 3) and np.isfinite(trained.validation_proba).all()
    assert len(trained.history["loss"]) == 1 and np.isfinite(trained.history["loss"][0])
