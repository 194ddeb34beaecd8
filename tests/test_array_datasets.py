"""``data --dataset`` on datasets shipped as arrays: CIFAR's python batches (pickled by Python 2, read without
running anything a pickle names) and Keras' ``mnist.npz``; refused cases are one line with nothing written."""

from __future__ import annotations

import json
import logging
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from test_hostile_data import dataset_refused

from kaggle_pipeline.data import answer_key_labels, load_competition
from kaggle_pipeline.data.dataset import prepare_dataset

pytestmark = pytest.mark.usefixtures("restore_signals")

CIFAR_NAMES = ["airplane", "automobile", "bird"]


def _py2_text(text: str) -> bytes:
    data = text.encode("latin1")
    return b"U" + bytes([len(data)]) + data if len(data) < 256 else b"T" + struct.pack("<i", len(data)) + data


def _py2_value(value) -> bytes:
    """Pickle opcodes as Python 2's cPickle (protocol 2) writes them: text and raw array bytes are Python 2
    strings, arrays are built through numpy.core.multiarray._reconstruct, as in CIFAR's real batches."""
    if isinstance(value, np.ndarray):
        shape = b"(" + b"".join(b"J" + struct.pack("<i", side) for side in value.shape) + b"t"
        dtype = b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01" + shape + dtype
                + b"\x89T" + struct.pack("<i", value.nbytes) + value.astype(np.uint8).tobytes() + b"tb")
    if isinstance(value, list):
        return b"](" + b"".join(_py2_value(item) for item in value) + b"e"
    if isinstance(value, int):
        return b"J" + struct.pack("<i", value)
    return _py2_text(value)


def write_py2_pickle(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    items = b"".join(_py2_text(key) + _py2_value(value) for key, value in content.items())
    path.write_bytes(b"\x80\x02}(" + items + b"u.")


def cifar_batch(labels: list[int], first: int = 0) -> dict:
    """Rows of a 4x4 image's red, green and blue planes: red says the class (40 each), blue the row's number."""
    data = np.zeros((len(labels), 3 * 16), dtype=np.uint8)
    for row, label in enumerate(labels):
        data[row, :16] = 40 * label
        data[row, 32:] = first + row
    return {"batch_label": "training batch 1 of 5", "labels": labels, "data": data,
            "filenames": [f"image_{first + row}.png" for row in range(len(labels))]}


def write_cifar10(folder: Path) -> None:
    """cifar-10-python/cifar-10-batches-py/: data_batch_1, data_batch_2, test_batch, batches.meta, readme.html."""
    batches = folder / "cifar-10-batches-py"
    write_py2_pickle(batches / "data_batch_1", cifar_batch([0, 1, 2, 0, 1, 2], 0))
    write_py2_pickle(batches / "data_batch_2", cifar_batch([2, 1, 0, 0, 1, 2], 6))
    write_py2_pickle(batches / "test_batch", cifar_batch([1, 0, 2, 2], 100))
    write_py2_pickle(batches / "batches.meta", {"label_names": CIFAR_NAMES})
    (batches / "readme.html").write_text("<a href='https://www.cs.toronto.edu/~kriz/cifar.html'>CIFAR</a>")


def test_cifar_python_batches_become_a_competition_of_colour_arrays_with_the_class_names(tmp_path):
    source = tmp_path / "cifar-10-python"
    write_cifar10(source)
    assert prepare_dataset(source, tmp_path / "out")
    competition = load_competition(tmp_path / "out")
    assert competition.layout == "npy" and competition.classes == CIFAR_NAMES
    assert competition.x_train.shape == (12, 4, 4, 3) and competition.x_test.shape == (4, 4, 4, 3)
    # The planes became channels: red says the class, green is 0, blue the batch row's number.
    assert all(image[0, 0, 0] == 40 * label for image, label in zip(competition.x_train, competition.y_train,
                                                                       strict=True))
    assert (competition.x_train[..., 1] == 0).all()
    assert sorted(competition.x_train[:, 0, 0, 2]) == list(range(12))
    truth = answer_key_labels(competition)
    assert sorted(competition.x_test[:, 0, 0, 2]) == [100, 101, 102, 103]  # test_batch, in a shuffled order
    assert all(image[0, 0, 0] == 40 * label for image, label in zip(competition.x_test, truth, strict=True))
    marker = json.loads((tmp_path / "out" / "PREPARED.json").read_text())
    assert marker["arrays"] == ["batches.meta", "data_batch_1", "data_batch_2", "test_batch"]
    assert marker["held_out_fraction"] is None


def test_cifar_100_takes_its_fine_labels_or_the_coarse_ones_by_name(tmp_path, caplog):
    source = tmp_path / "cifar-100-python"
    for name, labels in (("train", [0, 1, 2, 0, 1, 2]), ("test", [2, 1])):
        batch = cifar_batch(labels)
        write_py2_pickle(source / name, {"data": batch["data"], "fine_labels": labels,
                                         "coarse_labels": [label // 2 for label in labels]})
    write_py2_pickle(source / "meta", {"fine_label_names": ["apple", "aquarium_fish", "baby"],
                                       "coarse_label_names": ["fruit_and_vegetables", "people"]})
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "fine")
    assert "data: labels from fine_labels (LABEL_COLUMN=coarse_labels for the coarse classes)" in caplog.messages
    assert load_competition(tmp_path / "fine").classes == ["apple", "aquarium_fish", "baby"]
    prepare_dataset(source, tmp_path / "coarse", label_column="coarse_labels")
    assert load_competition(tmp_path / "coarse").classes == ["fruit_and_vegetables", "people"]


def test_keras_npz_arrays_become_a_competition_and_without_test_labels_a_share_is_held_out(tmp_path, caplog):
    source = tmp_path / "mnist"
    source.mkdir()
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (20, 6, 6), dtype=np.uint8)
    y_train = np.arange(20) % 2
    np.savez(source / "mnist.npz", x_train=x_train, y_train=np.eye(2)[y_train], x_test=x_train[:4],
             y_test=y_train[:4])
    prepare_dataset(source, tmp_path / "out")
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["0", "1"] and (len(competition.x_train), len(competition.x_test)) == (20, 4)
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    np.save(unlabelled / "x_train.npy", x_train)
    np.save(unlabelled / "y_train.npy", y_train)
    np.save(unlabelled / "x_test.npy", x_train[:3])
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(unlabelled, tmp_path / "held-out", test_fraction=0.2)
    assert "data: left out x_test.npy's test images (no test labels: unscorable)" in caplog.messages
    competition = load_competition(tmp_path / "held-out")
    assert (len(competition.x_train), len(competition.x_test)) == (16, 4)


def test_quick_draw_s_numpy_bitmaps_are_a_class_per_file(tmp_path, caplog):
    """Quick, Draw!'s full_numpy_bitmap_<class>.npy: (N, 784) rows of one class each. The class is the name less the
    words all names begin with (cat and car share "full_numpy_bitmap_", not "ca"); a share of each is held out."""
    source = tmp_path / "quickdraw"
    source.mkdir()
    for value, label in ((10, "cat"), (20, "car"), (30, "The Eiffel Tower")):
        np.save(source / f"full_numpy_bitmap_{label}.npy", np.full((10, 784), value, np.uint8))
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert any("3 classes, one array file each" in message for message in caplog.messages)
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["The Eiffel Tower", "car", "cat"] and competition.x_train.shape[1:] == (28, 28, 1)
    truth = answer_key_labels(competition)
    for images, labels in ((competition.x_train, competition.y_train), (competition.x_test, truth)):
        assert all({"cat": 10, "car": 20, "The Eiffel Tower": 30}[competition.classes[label]] == image[0, 0, 0]
                   for image, label in zip(images, labels, strict=True))
    assert len(competition.x_test) == 6


def test_medmnist_s_validation_arrays_train_and_kmnist_s_files_of_one_array_are_named_by_their_files(tmp_path):
    """MedMNIST's pathmnist.npz holds val_images and val_labels besides train and test (left out before);
    KMNIST ships kmnist-train-imgs.npz, kmnist-train-labels.npz, ... each holding numpy.savez's one arr_0 (refused
    before as a dataset without class folders)."""
    from kaggle_pipeline.data.layouts.npy_arrays import array_keys

    med = tmp_path / "medmnist"
    med.mkdir()
    images = lambda count, value: np.full((count, 4, 4), value, np.uint8)  # noqa: E731
    np.savez(med / "pathmnist.npz", train_images=images(6, 10), train_labels=np.arange(6)[:, None] % 2,
             val_images=images(4, 20), val_labels=np.arange(4)[:, None] % 2, test_images=images(2, 30),
             test_labels=np.array([[0], [1]]))
    prepare_dataset(med, tmp_path / "med-out")
    competition = load_competition(tmp_path / "med-out")
    assert sorted(competition.x_train[:, 0, 0, 0].tolist()) == [10] * 6 + [20] * 4
    assert competition.x_test[:, 0, 0, 0].tolist() == [30, 30]
    kmnist = tmp_path / "kmnist"
    kmnist.mkdir()
    for split, count, value in (("train", 8, 40), ("test", 4, 50)):
        np.savez_compressed(kmnist / f"kmnist-{split}-imgs.npz", images(count, value))
        np.savez_compressed(kmnist / f"kmnist-{split}-labels.npz", np.arange(count) % 2)
    prepare_dataset(kmnist, tmp_path / "kmnist-out")
    competition = load_competition(tmp_path / "kmnist-out")
    assert competition.x_train[:, 0, 0, 0].tolist() == [40] * 8 and competition.x_test[:, 0, 0, 0].tolist() == [50] * 4
    # Names by their words only where no name of ours is there: a competition's train_data_aug.npy beside train_x.npy
    # is no second train_x.
    assert array_keys(["train_x", "train_data_aug", "test-labels"]) == {"train_x": ["train_x"], "test_y": ["test-labels"]}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickles_a_notebook_saved_with_any_protocol_are_read(protocol, tmp_path):
    """train.pkl and test.pkl of {"data": images, "labels": array}, as pickle.dump writes them today."""
    source = tmp_path / "pickled"
    source.mkdir()
    images = np.arange(10 * 8 * 8, dtype=np.uint8).reshape(10, 8, 8) % 200
    for name, rows in (("train.pkl", slice(0, 8)), ("test.pkl", slice(8, 10))):
        with open(source / name, "wb") as handle:
            pickle.dump({"data": images[rows], "labels": np.arange(10)[rows] % 2}, handle, protocol=protocol)
    prepare_dataset(source, tmp_path / "out")
    competition = load_competition(tmp_path / "out")
    assert competition.x_train.shape == (8, 8, 8, 1) and len(competition.x_test) == 2
    np.testing.assert_array_equal(np.sort(competition.x_train[:, 0, 0, 0]), np.sort(images[:8, 0, 0]))


def test_one_set_of_arrays_named_x_and_y_has_a_share_held_out(tmp_path):
    """Sign Language Digits: Sign-language-digits-dataset/X.npy (N, 64, 64) floats in 0..1 and Y.npy one-hot."""
    source = tmp_path / "sign-language-digits" / "Sign-language-digits-dataset"
    source.mkdir(parents=True)
    labels = np.arange(20) % 4
    np.save(source / "X.npy", np.repeat(labels[:, None, None] / 4.0, 8, axis=1).repeat(8, axis=2).astype(np.float32))
    np.save(source / "Y.npy", np.eye(4)[labels])
    prepare_dataset(source.parent, tmp_path / "out", test_fraction=0.25)
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["0", "1", "2", "3"] and (len(competition.x_train), len(competition.x_test)) == (16, 4)
    assert all(round(image[0, 0, 0] / 255 * 4) == int(competition.classes[label])
               for image, label in zip(competition.x_train, competition.y_train, strict=True))


def write_signs(source: Path) -> None:
    """The deep-learning course's SIGNS: train_signs.h5 (train_set_x (N, 8, 8, 3) uint8, train_set_y, list_classes
    of class numbers), test_signs.h5 alike; the images' red value says the class."""
    import h5py

    source.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 12), ("test", 6)):
        labels = np.arange(count) % 3
        with h5py.File(source / f"{split}_signs.h5", "w") as handle:
            handle[f"{split}_set_x"] = np.repeat(40 * labels, 8 * 8 * 3).reshape(count, 8, 8, 3).astype(np.uint8)
            handle[f"{split}_set_y"] = labels
            handle["list_classes"] = np.arange(3)


def test_hdf5_files_of_images_and_labels_become_a_competition(tmp_path):
    write_signs(tmp_path / "signs")
    prepare_dataset(tmp_path / "signs", tmp_path / "out")
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["0", "1", "2"] and (len(competition.x_train), len(competition.x_test)) == (12, 6)
    truth = answer_key_labels(competition)
    assert all(image[0, 0, 0] == 40 * int(competition.classes[label])
               for image, label in zip(competition.x_test, truth, strict=True))
    # Food-101's 64 x 64 file: one set (held out), one-hot booleans, the class names as bytes.
    import h5py

    food = tmp_path / "food41"
    food.mkdir()
    labels = np.arange(10) % 2
    with h5py.File(food / "food_c101_n1000_r64x64x3.h5", "w") as handle:
        handle["images"] = np.repeat(labels * 100, 4 * 4 * 3).reshape(10, 4, 4, 3).astype(np.uint8)
        handle["category"] = np.eye(2, dtype=bool)[labels]
        handle["category_names"] = np.array([b"apple_pie", b"baby_back_ribs"])
    prepare_dataset(food, tmp_path / "food-out", test_fraction=0.2)
    competition = load_competition(tmp_path / "food-out")
    assert competition.classes == ["apple_pie", "baby_back_ribs"] and len(competition.x_test) == 2


def test_svhn_matlab_files_with_the_images_count_last_become_a_competition(tmp_path):
    """SVHN's cropped digits: train_32x32.mat and test_32x32.mat, X (32, 32, 3, N) and y (N, 1) of 1..10 (10 is
    the digit 0), MATLAB v5 (scipy reads it); a v7.3 file is HDF5 and is read as one."""
    import h5py
    import scipy.io

    source = tmp_path / "svhn"
    source.mkdir()
    for split, count in (("train", 12), ("test", 4)):
        labels = np.arange(count) % 3 + 8  # 8, 9, 10
        images = np.repeat(20 * labels, 4 * 4 * 3).reshape(count, 4, 4, 3).astype(np.uint8)
        scipy.io.savemat(source / f"{split}_32x32.mat", {"X": np.moveaxis(images, 0, -1), "y": labels[:, None]})
    prepare_dataset(source, tmp_path / "out")
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["8", "9", "10"] and (len(competition.x_train), len(competition.x_test)) == (12, 4)
    assert all(image[0, 0, 0] == 20 * int(competition.classes[label])
               for image, label in zip(competition.x_train, competition.y_train, strict=True))
    # MATLAB v7.3 is HDF5 under .mat.
    v73 = tmp_path / "v73"
    v73.mkdir()
    with h5py.File(v73 / "digits.mat", "w") as handle:
        handle["images"] = np.repeat(np.arange(10) % 2 * 100, 16).reshape(10, 4, 4).astype(np.uint8)
        handle["labels"] = np.arange(10) % 2
    prepare_dataset(v73, tmp_path / "out-v73", test_fraction=0.2)
    assert load_competition(tmp_path / "out-v73").classes == ["0", "1"]


def test_arrays_and_pickles_beside_class_folders_are_not_a_dataset_of_arrays(tmp_path):
    source = tmp_path / "pets"
    from PIL import Image

    for label in ("cat", "dog"):
        (source / label).mkdir(parents=True)
        for number in range(3):
            Image.new("RGB", (5, 5)).save(source / label / f"{number}.png")
    np.save(source / "features.npy", np.zeros((6, 4)))
    import h5py

    with h5py.File(source / "model.h5", "w") as handle:  # Keras' saved weights: groups of kernels
        handle["model_weights/conv2d/kernel"] = np.zeros((3, 3, 3, 8), dtype=np.float32)
    (source / "model.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}, protocol=4))
    os.mkfifo(source / "train.h5")  # opened, it would wait for a writer
    os.mkfifo(source / "mnist.npz")
    (source / "EfficientNetB0-100-(224 X 224)- 98.40.h5").write_bytes(b"not HDF5")  # 100 Sports ships its model
    prepare_dataset(source, tmp_path / "out")
    assert load_competition(tmp_path / "out").layout == "folders"


class _RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _pickle_running_code(source: Path):
    write_cifar10(source)
    marker = source.parent / "ran"
    (source / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps({"data": _RunsACommand(marker)},
                                                                               protocol=2))
    return source / "cifar-10-batches-py" / "data_batch_2", "a pickle of arrays only is read, and it would build posix.system"


def _truncated_pickle(source: Path):
    write_cifar10(source)
    batch = source / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:-40])
    return batch, "cannot be read as a pickle"


def _labels_and_images_disagree(source: Path):
    write_cifar10(source)
    write_py2_pickle(source / "cifar-10-batches-py" / "data_batch_2", {**cifar_batch([0, 1]), "labels": [0, 1, 2]})
    return source / "cifar-10-batches-py" / "data_batch_2", r"2 images but labels of shape \(3,\)"


def _label_without_a_name(source: Path):
    write_cifar10(source)
    write_py2_pickle(source / "cifar-10-batches-py" / "test_batch", cifar_batch([0, 5]))
    return source / "cifar-10-batches-py" / "test_batch", "label 5 has no class name"


def _test_images_of_another_shape(source: Path):
    source.mkdir()
    np.savez(source / "mnist.npz", x_train=np.zeros((4, 4, 4)), y_train=[0, 1, 0, 1], x_test=np.zeros((2, 5, 5)),
             y_test=[0, 1])
    return source / "mnist.npz", "test images of 5x5x1, training images of 4x4x1"


def _hdf5_that_is_not_hdf5(source: Path):
    write_signs(source)
    (source / "test_signs.h5").write_text("<html>sign in</html>")
    return source / "test_signs.h5", "cannot read the HDF5 file"


def _hdf5_test_file_only(source: Path):
    write_signs(source)
    (source / "train_signs.h5").unlink()
    return source / "test_signs.h5", "test images but no training images"


def _hdf5_labels_unclear(source: Path):
    import h5py

    source.mkdir(parents=True)
    with h5py.File(source / "faces.h5", "w") as handle:
        handle["faces"] = np.zeros((4, 4, 4), dtype=np.uint8)
        handle["age"] = np.arange(4)
        handle["gender"] = np.arange(4) % 2
    return source / "faces.h5", "which array holds the labels of faces[?] age, gender; name it with LABEL_COLUMN="


def _matlab_file_that_is_not_one(source: Path):
    source.mkdir(parents=True)
    (source / "train_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    return source / "train_32x32.mat", "cannot read the"


def _validation_images_of_another_shape(source: Path):
    source.mkdir(parents=True)
    np.savez(source / "pathmnist.npz", train_images=np.zeros((4, 4, 4), np.uint8), train_labels=np.arange(4) % 2,
             val_images=np.zeros((2, 5, 5), np.uint8), val_labels=np.arange(2))
    return source / "pathmnist.npz", r"validation images are \(5, 5, 1\), training images \(4, 4, 1\)"


def _class_arrays_of_two_image_sizes(source: Path):
    source.mkdir(parents=True)
    np.save(source / "full_numpy_bitmap_cat.npy", np.zeros((3, 784), np.uint8))
    np.save(source / "full_numpy_bitmap_dog.npy", np.zeros((3, 900), np.uint8))
    return source / "full_numpy_bitmap_dog.npy", r"images of \(30, 30, 1\), but full_numpy_bitmap_cat.npy's are \(28, 28, 1\)"


def _matlab_file_cut_short(source: Path):
    source.mkdir(parents=True)
    (source / "train_32x32.mat").write_bytes(b"MATLAB 5.0")  # scipy's MatReadError, not a ValueError
    return source / "train_32x32.mat", r"cannot read the MATLAB file \(Mat file appears to be truncated\)"


def _pickle_of_a_list(source: Path):
    write_cifar10(source)
    (source / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    return source / "cifar-10-batches-py" / "data_batch_2", "a pickle of list, not a batch"


def _test_batch_only(source: Path):
    write_py2_pickle(source / "test_batch", cifar_batch([0, 1]))
    return source, "pickles without a training batch"


def _batch_without_labels(source: Path):
    write_py2_pickle(source / "data_batch_1", {"data": cifar_batch([0, 1])["data"]})
    return source / "data_batch_1", "a batch without labels"


def _unknown_label_key(source: Path):
    write_cifar10(source)
    return "--label-column 'coarse_labels'", "not a key of data_batch_1"


def _label_column_for_arrays(source: Path):
    source.mkdir()
    np.savez(source / "mnist.npz", x_train=np.zeros((4, 4, 4)), y_train=[0, 1, 0, 1])
    return "--label-column 'coarse_labels'", r"not for arrays \(mnist.npz\)"


@pytest.mark.parametrize("make", [_pickle_running_code, _truncated_pickle, _labels_and_images_disagree,
                                  _label_without_a_name, _pickle_of_a_list, _test_batch_only, _batch_without_labels,
                                  _unknown_label_key, _label_column_for_arrays, _test_images_of_another_shape,
                                  _hdf5_that_is_not_hdf5, _hdf5_test_file_only, _hdf5_labels_unclear,
                                  _matlab_file_that_is_not_one, _matlab_file_cut_short,
                                  _validation_images_of_another_shape, _class_arrays_of_two_image_sizes],
                         ids=lambda make: make.__name__[1:])
def test_arrays_that_cannot_be_a_competition_are_one_line_and_nothing_is_written(make, tmp_path, capsys):
    dataset_refused(make, tmp_path, capsys)
    assert not (tmp_path / "ran").exists()


def test_a_downloaded_cifar_python_tarball_becomes_a_competition(tmp_path):
    """Kaggle's CIFAR-10 python dataset as it ships: cifar-10-python.tar.gz (holding cifar-10-batches-py/) in the
    download's zip. download unpacks the tar, data --dataset reads the pickles."""
    import tarfile

    from test_kaggle_client import fake_client, run

    batches = tmp_path / "made"
    write_cifar10(batches)
    shipped = tmp_path / "as-kaggle-ships-it"
    shipped.mkdir()
    with tarfile.open(shipped / "cifar-10-python.tar.gz", "w:gz") as bundle:
        bundle.add(batches / "cifar-10-batches-py", "cifar-10-batches-py")
    bin_dir, _ = fake_client(tmp_path, source=shipped)
    finished = run(tmp_path, "download", "--dataset", "someone/cifar10-python", path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    assert sorted(path.name for path in (tmp_path / "data" / "cifar10-python").iterdir()) == [
        ".kaggle-download.json", "cifar-10-batches-py"]
    finished = run(tmp_path, "data", "--dataset", "data/cifar10-python")
    assert finished.returncode == 0, finished.stderr
    competition = load_competition(tmp_path / "data" / "cifar10-python-competition")
    assert competition.classes == CIFAR_NAMES and competition.x_test.shape == (4, 4, 4, 3)
