"""The ``tfrecords`` layout (Petals to the Metal): records written by TensorFlow's own TFRecordWriter and
tf.train.Example, read here without TensorFlow, to the same pixels as the image files; or refused in one line."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from test_hostile_data import refused_in_process

from kaggle_pipeline.data import detect_layout, load_competition

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def jpeg(seed: int) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (12, 12, 3), dtype=np.uint8)
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, "JPEG", quality=90)
    return encoded.getvalue()


def example(features: dict) -> bytes:
    """A serialized tf.train.Example of {name: bytes | int | float | list of one kind}."""
    import tensorflow as tf

    def feature(value):
        values = value if isinstance(value, list) else [value]
        if isinstance(values[0], bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        if isinstance(values[0], float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    return tf.train.Example(features=tf.train.Features(
        feature={name: feature(value) for name, value in features.items()})).SerializeToString()


def write_records(path: Path, records: list[bytes]) -> None:
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)


def write_petals(folder: Path, sizes=("192x192", "224x224")) -> dict:
    """Petals to the Metal's shape: tfrecords-jpeg-<size>/{train,val,test}/*.tfrec beside sample_submission.csv,
    whose ids list the test records in another order. Returns what the first size holds."""
    truth = {"train": [], "test": []}
    for size_number, size in enumerate(sizes):
        for split, count, first in (("train", 10, 0), ("val", 4, 500), ("test", 6, 1000)):
            for part in range(2):
                records = []
                for index in range(count // 2):
                    number = first + part * 100 + index
                    image = jpeg(number + 7919 * size_number)
                    features = {"image": image, "id": f"{number:09x}".encode()}
                    if split != "test":
                        features["class"] = number % 3
                    records.append(example(features))
                    if size_number == 0:
                        truth["test" if split == "test" else "train"].append((f"{number:09x}", image, number % 3))
                write_records(folder / f"tfrecords-jpeg-{size}" / split / f"{part:02d}-{size}-{count // 2}.tfrec",
                              records)
    ids = [image_id for image_id, _, _ in truth["test"]][::-1]
    (folder / "sample_submission.csv").write_text("id,label\n" + "".join(f"{image_id},0\n" for image_id in ids))
    truth["sample_ids"] = ids
    return truth


def decoded(image: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))


def test_petals_records_load_like_their_images_train_and_val_together(tmp_path):
    folder = tmp_path / "tpu-getting-started"
    truth = write_petals(folder)
    assert detect_layout(folder) == "tfrecords"
    competition = load_competition(folder)
    assert competition.x_train.shape == (14, 12, 12, 3)  # train and val of the first size (192x192)
    for row, (_, image, label) in enumerate(truth["train"]):
        np.testing.assert_array_equal(competition.x_train[row], decoded(image))
        assert competition.classes[competition.y_train[row]] == str(label)
    by_id = {image_id: image for image_id, image, _ in truth["test"]}
    assert competition.test_ids == truth["sample_ids"]
    for row, image_id in enumerate(truth["sample_ids"]):
        np.testing.assert_array_equal(competition.x_test[row], decoded(by_id[image_id]))


def test_records_in_the_competition_folder_itself(tmp_path):
    folder = tmp_path / "flowers"
    write_petals(folder, sizes=("128x128",))
    for split in ("train", "val", "test"):
        (folder / "tfrecords-jpeg-128x128" / split).rename(folder / split)
    assert load_competition(folder).x_train.shape == (14, 12, 12, 3)


@pytest.mark.parametrize("channels", [1, 3])
def test_raw_pixels_beside_their_size_load_as_they_are(channels, tmp_path):
    """Records holding image.tobytes() with height/width/depth features (TensorFlow's tutorials write MNIST so):
    the same pixels, through the one decoder (as a lossless PNG)."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (10, 6, 6, channels), dtype=np.uint8)
    folder = tmp_path / "digits"

    def record(number: int, labelled: bool) -> bytes:
        features = {"image_raw": pixels[number].tobytes(), "height": 6, "width": 6, "depth": channels,
                    "id": str(number).encode()}
        return example({**features, "label": number % 2} if labelled else features)

    write_records(folder / "train" / "train.tfrecords", [record(number, True) for number in range(8)])
    write_records(folder / "test" / "test.tfrecords", [record(number, False) for number in (8, 9)])
    (folder / "sample_submission.csv").write_text("id,label\n8,0\n9,0\n")
    competition = load_competition(folder)
    np.testing.assert_array_equal(competition.x_train, pixels[:8])
    np.testing.assert_array_equal(competition.x_test, pixels[8:])
    assert [competition.classes[label] for label in competition.y_train] == [str(n % 2) for n in range(8)]


def test_every_feature_kind_parses_as_tensorflow_writes_it():
    """The Example parser here against TensorFlow's own: bytes, packed floats, negative and large int64s."""
    import tensorflow as tf

    from kaggle_pipeline.data.layouts.tfrecords import _features

    features = {"image": [b"\x00\xffabc", b""], "floats": [1.5, -2.25, 3e38], "ints": [-5, 0, 2**62, -(2**63)],
                "label": 7, "name": "dahlia".encode()}
    serialized = example(features)
    parsed = _features(serialized)
    expected = tf.train.Example.FromString(serialized).features.feature
    for name in features:
        kind = expected[name].WhichOneof("kind")
        assert parsed[name] == list(getattr(expected[name], kind).value), name


def _damaged(relative: str, change):
    def corrupt(folder: Path) -> None:
        path = folder / "tfrecords-jpeg-192x192" / relative
        path.write_bytes(change(path.read_bytes()))

    return corrupt


def _rewritten(relative: str, features: dict):
    def corrupt(folder: Path) -> None:
        write_records(folder / "tfrecords-jpeg-192x192" / relative, [example(features)])

    return corrupt


@pytest.mark.parametrize("corrupt, named, problem", [
    (_damaged("train/00-192x192-5.tfrec", lambda data: data[:-40]), "train/00-192x192-5.tfrec",
     r"cut short in record 4 \(it declares"),
    (_damaged("test/01-192x192-3.tfrec", lambda data: data + b"\x01\x02"), "test/01-192x192-3.tfrec",
     "cut short in record 3's header"),
    (_damaged("val/00-192x192-2.tfrec", lambda data: b""), "val/00-192x192-2.tfrec", "no records"),
    (_rewritten("train/00-192x192-5.tfrec", {"picture": jpeg(1), "class": 1}), "train/00-192x192-5.tfrec, record 0",
     r"no feature holding an image \(bytes\) \(expected one named image, .*; it has class, picture\)"),
    (_rewritten("train/00-192x192-5.tfrec", {"image": jpeg(1)}), "train/00-192x192-5.tfrec, record 0",
     "no feature holding a label"),
    (_rewritten("train/01-192x192-5.tfrec", {"image": b"not a jpeg", "class": 1}),
     "train/01-192x192-5.tfrec, record 0", "cannot read image .*an image held in a record"),
    (_rewritten("train/01-192x192-5.tfrec", {"image": b"\x00" * 10, "height": 3, "width": 3, "class": 1}),
     "train/01-192x192-5.tfrec, record 0", "feature 'image' holds 10 bytes, not the 3x3x1 raw pixels"),
    (_rewritten("train/01-192x192-5.tfrec", {"image": jpeg(1), "class": [1, 2]}),
     "train/01-192x192-5.tfrec, record 0", "feature 'class' holds 2 values, not one label"),
    (_rewritten("test/00-192x192-3.tfrec", {"image": jpeg(1), "id": b"not-in-the-sample"}), "sample_submission.csv",
     "has no test image"),
])
def test_a_broken_record_folder_is_one_line(corrupt, named, problem, tmp_path, capsys, restore_signals):
    folder = tmp_path / "tpu-getting-started"
    write_petals(folder, sizes=("192x192",))
    corrupt(folder)
    where = folder / named if named == "sample_submission.csv" else folder / "tfrecords-jpeg-192x192" / named
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       where, problem)


def test_a_record_that_is_not_an_example_is_one_line(tmp_path, capsys, restore_signals):
    folder = tmp_path / "tpu-getting-started"
    write_petals(folder, sizes=("192x192",))
    write_records(folder / "tfrecords-jpeg-192x192" / "train" / "00-192x192-5.tfrec", [b"\x0a\xff\xff\xff"])
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / "tfrecords-jpeg-192x192" / "train" / "00-192x192-5.tfrec, record 0",
                       "not a tf.train.Example")


def test_the_layout_forced_on_a_folder_without_records_is_one_line(tmp_path, capsys, restore_signals):
    from conftest import write_csv_competition

    folder = write_csv_competition(tmp_path / "digits", count=24, test_count=6, side=4)
    refused_in_process(tmp_path, capsys, ["search", "--layout", "tfrecords", "--data", folder, "--models-dir",
                                          tmp_path / "models"], folder,
                       r"no train/ and test/ folders of .tfrec, .tfrecord, .tfrecords files, here or one folder down")
