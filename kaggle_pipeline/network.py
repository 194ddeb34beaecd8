"""The VGG-like network for a params dict (kaggle_pipeline.spaces describes the keys): the Keras builder, its
optimizer and learning-rate schedule, training-only augmentation and the batch-norm momentum rule.

Keras is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.spaces import (
    OPTIMIZERS,
    REFERENCE_PARAMS,
    REFERENCE_RECIPE,
    SCHEDULES,
)


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


def build_model(
    params: dict, input_shape: tuple[int, int, int], num_classes: int, bn_momentum: float = 0.99,
    steps_per_epoch: int = 1, epochs: int = 1,
):
    """The VGG-like network for ``params``; takes uint8 images and scales them inside the graph.

    Labels are one-hot (label smoothing needs them). ``steps_per_epoch`` and ``epochs`` size the schedule.
    """
    import keras
    from keras import layers

    params = complete_params(params)
    height, width, _ = input_shape
    # The second block uses 'valid' convolutions, as the reference does, when the image is large enough;
    # with a third block every block pads 'same' so that the third still has pixels to pool.
    second_padding = "valid" if min(height, width) >= 16 and not params["conv3_filters"] else "same"

    inputs = keras.Input(shape=input_shape, dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    augmentation = augmentation_block(params, input_shape)
    if augmentation is not None:
        x = augmentation(x)
    x = layers.Conv2D(params["conv1_filters"], 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(params["conv1_filters"], 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(params["conv1_dropout"])(x)
    x = layers.Conv2D(params["conv2_filters"], 3, padding=second_padding, activation="relu")(x)
    x = layers.Conv2D(params["conv2_filters"], 3, padding=second_padding, activation="relu")(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(params["conv2_dropout"])(x)
    if params["conv3_filters"] and min(height, width) >= 8:
        x = layers.Conv2D(params["conv3_filters"], 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(params["conv3_filters"], 3, padding="same", activation="relu")(x)
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(params["conv2_dropout"])(x)
    x = layers.Flatten()(x)
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
    return model


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
