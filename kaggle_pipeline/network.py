"""The VGG-like network for a params dict (kaggle_pipeline.spaces describes the keys): the Keras builder, its
optimizer and learning-rate schedule, training-only augmentation and the batch-norm momentum rule.

Keras is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.spaces import (
    OPTIMIZERS,
    REFERENCE_PARAMS,
    REFERENCE_RECIPE,
    SCHEDULES,
)

# Two conv blocks, each pooling by 2, need at least this many pixels on an image's smaller side.
MIN_IMAGE_SIDE = 4


def complete_params(params: dict) -> dict:
    """``params`` with the reference recipe filled in for keys it predates; a clear error for missing net keys."""
    params = {**REFERENCE_RECIPE, **params}
    missing = sorted(set(REFERENCE_PARAMS) - set(params))
    if missing:
        raise PipelineError(f"model parameters are missing {', '.join(missing)}")
    if params["schedule"] not in SCHEDULES:
        raise PipelineError(f"schedule {params['schedule']!r}: choose one of {', '.join(SCHEDULES)}")
    return params


def batch_norm_momentum(steps_per_epoch: int) -> float:
    """BN moving-average momentum that lets the statistics follow the weights within an epoch.

    Keras' default 0.99 averages over ~100 steps. On a small training set (5.4k images = 42 steps of 128)
    that lags the weights by more than two epochs and validation accuracy sits near chance while training
    accuracy climbs. An averaging horizon of a quarter epoch, between 10 and 100 steps, keeps 0.99 for large
    sets and drops to 0.9 for small ones.
    """
    horizon = min(100.0, max(10.0, steps_per_epoch / 4.0))
    return 1.0 - 1.0 / horizon


def learning_rate_schedule(params: dict, steps_per_epoch: int, epochs: int):
    """The optimizer's learning rate: a constant for 'plateau' (the callback lowers it), else a schedule.

    'cosine' warms up linearly over the first tenth of training (at most two epochs), from a twentieth of
    the rate, then decays to 1% of it by the last step.
    """
    import keras

    rate = float(params["learning_rate"])
    if params["schedule"] == "plateau":
        return rate
    total_steps = max(2, steps_per_epoch * epochs)
    warmup_steps = max(1, min(total_steps // 10, 2 * steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=rate / 20, decay_steps=total_steps - warmup_steps, alpha=0.01,
        warmup_target=rate, warmup_steps=warmup_steps,
    )


def augmentation_block(params: dict, input_shape: tuple[int, int, int]):
    """Random translation, rotation, zoom and flip; Keras runs them only when training=True, so the saved
    model predicts on the images as they are. They compute in float32 whatever the precision, so that
    interpolated pixels are not rounded to bfloat16's 8-bit mantissa."""
    import keras
    from keras import layers

    steps = []
    if params["translate"] > 0:
        steps.append(layers.RandomTranslation(params["translate"], params["translate"], fill_mode="constant", dtype="float32"))
    if params["rotate"] > 0:
        steps.append(layers.RandomRotation(params["rotate"], fill_mode="constant", dtype="float32"))
    if params["zoom"] > 0:
        steps.append(layers.RandomZoom(params["zoom"], fill_mode="constant", dtype="float32"))
    if params["flip"]:
        steps.append(layers.RandomFlip("horizontal", dtype="float32"))
    if not steps:
        return None
    return keras.Sequential([keras.Input(input_shape), *steps], name="augmentation")


# The depth rule (architecture()). Blocks beyond the params' own are added while the map entering one is at
# least EXTRA_BLOCK_MIN_SIDE pixels, so that every added block still pools to a map of 4 or more: "a few pixels",
# as the reference's 5x5 at 28 px and the classic VGG's 7x7 at 224 px. Five blocks (32x downsampling) is
# VGG's own depth; a deeper net would not fit a CPU's time budget anyway.
EXTRA_BLOCK_MIN_SIDE = 8
MAX_BLOCKS = 5
# Added blocks double the last block's filters up to this many (VGG stops at 512; 256 keeps a 5-block net
# small enough to train on a CPU).
MAX_FILTERS = 256
# From this input side on, the head averages the last map over space (global average pooling) instead of
# flattening it. Below it the images are small, centred things (digits, clothes, the reference's 28 px) whose
# position carries information, and the flattened map is a few thousand features at most. From 64 px on they
# are photos: the object can be anywhere, and a flattened 4x4x256 map would put a million weights in the
# first dense layer while GAP keeps it at the last block's filters, whatever the side.
GAP_MIN_SIDE = 64


@dataclass(frozen=True)
class ConvBlock:
    """Two 3x3 convolutions, then (batch norm,) 2x2 max-pool and dropout."""

    filters: int
    padding: str  # 'same' or 'valid'
    dropout: float
    batch_norm: bool


@dataclass(frozen=True)
class Architecture:
    """What build_model builds for one input shape: its conv blocks, its head and the final map."""

    blocks: tuple[ConvBlock, ...]
    head: str  # 'flatten' or 'gap' (global average pooling)
    final_shape: tuple[int, int]  # the last block's map, height x width

    @property
    def final_side(self) -> int:
        return min(self.final_shape)


def _pooled(side: int, padding: str) -> int:
    """A map's side after a block's two 3x3 convolutions and its 2x2 pool."""
    return (side - (4 if padding == "valid" else 0)) // 2


def architecture(input_shape: tuple[int, ...], params: dict) -> Architecture:
    """The conv blocks and head for ``input_shape`` (height, width, ...): pure, so depth is testable without Keras.

    * The params' own blocks come first: conv1 and conv2 always (so images need 4 pixels a side: 4 -> 2 -> 1),
      and conv3 when ``conv3_filters`` is not 0 and the map entering it is at least 2 pixels, so that its pool
      never collapses the map to 0 (8 px: 8 -> 4 -> 2 -> 1; 7 px: 7 -> 3 -> 1, no conv3).
    * Then, while the map entering the next block is at least EXTRA_BLOCK_MIN_SIDE (8) pixels and the net
      has fewer than MAX_BLOCKS (5), one more block: the last block's filters doubled (at most MAX_FILTERS),
      its dropout (conv2_dropout) and batch norm. So the net downsamples a large image to a map of 4 to 7
      pixels as the reference does at 28 px: 32 px gets 3 blocks (4x4), 64 px 4 (4x4), 128 px 5 (4x4).
    * Convolutions pad 'same', except that a net of exactly two blocks on images of 16 px or more pads the
      second block 'valid', as the reference does: at 28x28 the reference and the default params build
      the reference net's blocks (28 -> 14 -> 12 -> 10 -> 5, Flatten of 5x5x64; the default adds the whitening layer).
    * The head is Flatten below GAP_MIN_SIDE (64) px, global average pooling from there on (see GAP_MIN_SIDE).

    The rule reads the smaller side of a rectangular image, so the map never collapses along it.
    """
    params = complete_params(params)
    height, width = int(input_shape[0]), int(input_shape[1])
    side = min(height, width)
    if side < MIN_IMAGE_SIDE:
        # A ValueError, not a PipelineError: a search records it as the trial's failure, with this reason.
        raise ValueError(f"images of {height}x{width} pixels: too small for the network's two conv blocks "
                         f"(at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE})")
    own = [(int(params["conv1_filters"]), float(params["conv1_dropout"])),
           (int(params["conv2_filters"]), float(params["conv2_dropout"]))]
    if params["conv3_filters"]:
        own.append((int(params["conv3_filters"]), float(params["conv2_dropout"])))
    plan, current = [], side
    for filters, dropout in own:
        if len(plan) >= 2 and current < 2:
            break
        plan.append((filters, dropout))
        current = _pooled(current, "same")
    while current >= EXTRA_BLOCK_MIN_SIDE and len(plan) < MAX_BLOCKS:
        filters, dropout = plan[-1]
        plan.append((min(MAX_FILTERS, max(filters, 2 * filters)), dropout))
        current = _pooled(current, "same")
    reference_like = len(plan) == 2 and side >= 16
    blocks = tuple(
        ConvBlock(filters, "valid" if reference_like and index == 1 else "same", dropout, batch_norm=index > 0)
        for index, (filters, dropout) in enumerate(plan)
    )
    for block in blocks:
        height, width = _pooled(height, block.padding), _pooled(width, block.padding)
    return Architecture(blocks, "gap" if side >= GAP_MIN_SIDE else "flatten", (height, width))


def build_model(
    params: dict, input_shape: tuple[int, int, int], num_classes: int, bn_momentum: float = 0.99,
    steps_per_epoch: int = 1, epochs: int = 1,
):
    """The VGG-like network for ``params``, as deep as ``architecture`` says for ``input_shape``; takes uint8
    images and scales them inside the graph.

    Labels are one-hot (label smoothing needs them). ``steps_per_epoch`` and ``epochs`` size the schedule.
    """
    import keras
    from keras import layers

    params = complete_params(params)
    plan = architecture(input_shape, params)

    inputs = keras.Input(shape=input_shape, dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    augmentation = augmentation_block(params, input_shape)
    if augmentation is not None:
        x = augmentation(x)
    if params["whiten"]:
        # airbench's first layer: 2x2 filters that whiten the images' patches, set from the training images by
        # set_whitening and never trained; each filter twice, with both signs, so that ReLU loses nothing.
        x = layers.Conv2D(8 * input_shape[-1], 2, padding="same", activation="relu", trainable=False, name="whiten")(x)
    for block in plan.blocks:
        x = layers.Conv2D(block.filters, 3, padding=block.padding, activation="relu")(x)
        x = layers.Conv2D(block.filters, 3, padding=block.padding, activation="relu")(x)
        if block.batch_norm:
            x = layers.BatchNormalization(momentum=bn_momentum)(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(block.dropout)(x)
    x = layers.Flatten()(x) if plan.head == "flatten" else layers.GlobalAveragePooling2D()(x)
    for block in ("dense1", "dense2"):
        x = layers.Dense(params[f"{block}_units"], activation="relu")(x)
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
        x = layers.Dropout(params[f"{block}_dropout"])(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="vgg_like")
    model.compile(
        optimizer=make_optimizer(params["optimizer"], learning_rate_schedule(params, steps_per_epoch, epochs)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(params["label_smoothing"])),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    # Without a distribution strategy Keras creates the optimizer's slots inside the first trace of the train
    # step, and TensorFlow then traces the step a second time: about 1.4 s more per run or trial here, bit for
    # bit the same weights (tests/test_model.py, test_the_train_step_is_traced_once).
    model.optimizer.build(model.trainable_variables)
    return model


# Patches whose covariance sets the whitening layer: at most this many images (evenly spaced through the training
# set, so that a class-sorted set gives every class), and fewer where their 2x2 patches would pass WHITENING_PATCHES.
WHITENING_IMAGES = 10_000
WHITENING_PATCHES = 8_000_000
WHITENING_CHUNK_PATCHES = 1_000_000


def whitening_weights(images, eps: float = 5e-4):
    """The whitening layer's kernel and bias for ``images`` (uint8, samples first, channels last): the
    eigenvectors of the covariance of the images' 2x2 patches (scaled to [0, 1]), each divided by
    sqrt(eigenvalue + eps * mean eigenvalue) and taken with both signs; the bias centres the patches. A patch
    starts at its output pixel, as Keras pads a 2x2 "same" convolution below and right."""
    import numpy as np

    count, height, width, channels = images.shape
    dimensions = 4 * channels
    patches_per_image = (height - 1) * (width - 1)
    chosen = min(count, WHITENING_IMAGES, max(1, WHITENING_PATCHES // patches_per_image))
    rows = np.unique(np.linspace(0, count - 1, chosen).round().astype(np.int64))
    total, outer = np.zeros(dimensions), np.zeros((dimensions, dimensions))
    # About a million patches at a time (~0.1 GB of float64 for colour images), whatever the images' size.
    per_chunk = max(1, WHITENING_CHUNK_PATCHES // patches_per_image)
    for start in range(0, len(rows), per_chunk):
        chunk = images[rows[start:start + per_chunk]].astype(np.float64) / 255.0
        patches = np.stack([chunk[:, i:height - 1 + i, j:width - 1 + j] for i in (0, 1) for j in (0, 1)], axis=3)
        patches = patches.reshape(-1, dimensions)
        total += patches.sum(axis=0)
        outer += patches.T @ patches
    patch_count = len(rows) * patches_per_image  # images are at least MIN_IMAGE_SIDE on each side
    mean = total / patch_count
    covariance = outer / patch_count - np.outer(mean, mean)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues = np.maximum(eigenvalues, 0.0)
    # An eigenvector's sign is arbitrary: fixed (largest component positive), so that the same images give the
    # same layer whatever order their patches were summed in.
    largest = eigenvectors[np.abs(eigenvectors).argmax(axis=0), np.arange(dimensions)]
    eigenvectors = eigenvectors * np.where(largest < 0, -1.0, 1.0)
    # The floor keeps images without variation (a blank set) from dividing by zero.
    filters = eigenvectors / np.sqrt(eigenvalues + eps * max(eigenvalues.mean(), 1e-6))
    filters = np.concatenate([filters, -filters], axis=1)
    kernel = filters.reshape(2, 2, channels, 2 * dimensions)
    return kernel.astype(np.float32), (-(mean @ filters)).astype(np.float32)


def set_whitening(model, images) -> None:
    """Set ``model``'s whitening layer (params ``whiten``) from its training ``images``; a model without one is
    left as it is."""
    if any(layer.name == "whiten" for layer in model.layers):
        model.get_layer("whiten").set_weights(list(whitening_weights(images)))


def make_optimizer(name: str, learning_rate: float):
    import keras

    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name == "sgd":
        # Plain SGD barely moves in a short run; momentum 0.9 is what every VGG recipe pairs it with.
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    raise PipelineError(f"optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
