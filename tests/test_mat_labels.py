"""Datasets whose image files are labelled by MATLAB files (``kaggle_pipeline.data.mat_labels``), as torchvision's
Flowers102 and StanfordCars read them, made competitions by ``data --dataset``."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image
from test_hostile_data import dataset_refused, refused_by_a_fresh_process

from kaggle_pipeline.data import load_competition
from kaggle_pipeline.data.dataset import prepare_dataset


def write_image(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 6), shade, np.uint8)).save(path)


def flowers(source: Path, count: int = 24, classes: int = 3, split_ids: bool = True) -> dict[str, int]:
    """Flowers-102 as it ships: jpg/image_00001.jpg ..., imagelabels.mat (labels 1 x N, doubles) and setid.mat
    (trnid, valid, tstid: image numbers). Returns image name -> class number."""
    labels = np.array([1 + (number * 7) % classes for number in range(count)], dtype=float)
    for number in range(1, count + 1):
        write_image(source / "jpg" / f"image_{number:05d}.png", 30 * int(labels[number - 1]))
    scipy.io.savemat(source / "imagelabels.mat", {"labels": labels[None, :]})
    if split_ids:
        numbers = np.random.default_rng(0).permutation(np.arange(1, count + 1)).astype(np.uint16)
        scipy.io.savemat(source / "setid.mat", {"trnid": numbers[None, :count // 3],
                                                "valid": numbers[None, count // 3:count // 2],
                                                "tstid": numbers[None, count // 2:]})
    return {f"image_{number:05d}.png": int(labels[number - 1]) for number in range(1, count + 1)}


def annotations(rows: list[tuple], fields: tuple[str, ...]) -> np.ndarray:
    """A MATLAB struct array (1 x N) of records, as scipy writes and reads Stanford Cars' annotations."""
    records = np.zeros((1, len(rows)), dtype=[(field, "O") for field in fields])
    for number, row in enumerate(rows):
        records[0, number] = tuple(value if isinstance(value, str) else np.array([[value]], np.uint8) for value in row)
    return records


def cell(names: list[str]) -> np.ndarray:
    array = np.empty((1, len(names)), dtype=object)
    array[0, :] = names
    return array


CAR_NAMES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "BMW M3 Coupe 2012"]


def cars_devkit(source: Path, count: int = 12, test_labels: bool = True) -> None:
    """Stanford Cars as torchvision reads it: cars_train/ and cars_test/ both numbered from 00001.jpg,
    devkit/cars_train_annos.mat (bbox_x1, class, fname), devkit/cars_test_annos.mat without classes,
    devkit/cars_meta.mat (class_names), and cars_test_annos_withlabels.mat beside them."""
    for split in ("train", "test"):
        rows = [(1, 1 + (number + (split == "test")) % 3, f"{number:05d}.jpg") for number in range(1, count + 1)]
        for _, label, name in rows:
            write_image(source / f"cars_{split}" / name, 30 * label)
        (source / "devkit").mkdir(exist_ok=True)
        if split == "train":
            scipy.io.savemat(source / "devkit" / "cars_train_annos.mat",
                             {"annotations": annotations(rows, ("bbox_x1", "class", "fname"))})
        else:
            scipy.io.savemat(source / "devkit" / "cars_test_annos.mat",
                             {"annotations": annotations([(x, name) for x, _, name in rows], ("bbox_x1", "fname"))})
            if test_labels:
                scipy.io.savemat(source / "cars_test_annos_withlabels.mat",
                                 {"annotations": annotations(rows, ("bbox_x1", "class", "fname"))})
    scipy.io.savemat(source / "devkit" / "cars_meta.mat", {"class_names": cell(CAR_NAMES)})


def cars_annos(source: Path, count: int = 16) -> dict[str, tuple[str, bool]]:
    """Stanford Cars' single file: car_ims/000001.jpg ... and cars_annos.mat (relative_im_path, class, test;
    class_names). Returns image name -> (class name, test?)."""
    rows = [(f"car_ims/{number:06d}.jpg", 1 + number % 3, int(number % 4 == 0)) for number in range(1, count + 1)]
    for name, label, _ in rows:
        write_image(source / name, 30 * label)
    scipy.io.savemat(source / "cars_annos.mat", {
        "annotations": annotations(rows, ("relative_im_path", "class", "test")), "class_names": cell(CAR_NAMES)})
    return {name.split("/")[1]: (CAR_NAMES[label - 1], bool(test)) for name, label, test in rows}


def made(folder: Path) -> dict[str, dict[str, str]]:
    """What a made competition says of each image of the dataset: split -> image (its path) -> label."""
    found = {}
    for split, table, images in (("train", "train_labels.csv", "train"), ("test", "solution.csv", "test")):
        with open(folder / table, newline="") as handle:
            found[split] = {os.readlink(folder / images / row["id"]): row["label"] for row in csv.DictReader(handle)}
    return found


def test_flowers_102_labels_its_numbered_images_and_its_split_ids_choose_the_test_set(tmp_path, caplog):
    source = tmp_path / "flowers"
    truth = flowers(source)
    caplog.set_level(logging.INFO)
    prepare_dataset(source, tmp_path / "out")
    found = made(tmp_path / "out")
    setid = scipy.io.loadmat(source / "setid.mat", squeeze_me=True)
    assert {Path(path).name for path in found["test"]} == {f"image_{number:05d}.png" for number in setid["tstid"]}
    assert len(found["train"]) == len(setid["trnid"]) + len(setid["valid"])  # the val split trains
    for split in found.values():
        assert all(label == str(truth[Path(path).name]) for path, label in split.items())
    assert "from imagelabels.mat's labels, split by trnid, valid, tstid" in caplog.text
    competition = load_competition(tmp_path / "out")
    assert all(image[0, 0, 0] == 30 * int(competition.classes[label])
               for image, label in zip(competition.x_train, competition.y_train, strict=True))


def test_flowers_without_split_ids_has_a_share_of_each_class_held_out(tmp_path):
    source = tmp_path / "flowers"
    truth = flowers(source, split_ids=False)
    prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    found = made(tmp_path / "out")
    assert (len(found["train"]), len(found["test"])) == (18, 6)
    assert all(label == str(truth[Path(path).name]) for split in found.values() for path, label in split.items())


def test_a_matlab_v73_labels_array_and_missing_images_are_read(tmp_path, caplog):
    """A v7.3 file is HDF5, its 1 x N arrays stored N x 1; a download missing some of the labelled images goes on
    without them, said in a warning."""
    source = tmp_path / "flowers"
    truth = flowers(source, split_ids=False)
    (source / "imagelabels.mat").unlink()
    with h5py.File(source / "imagelabels.mat", "w") as handle:
        handle["labels"] = np.array([[truth[f"image_{number:05d}.png"]] for number in range(1, 25)], dtype=float)
    (source / "jpg" / "image_00024.png").unlink()
    prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    found = made(tmp_path / "out")
    assert len(found["train"]) + len(found["test"]) == 23
    assert all(label == str(truth[Path(path).name]) for split in found.values() for path, label in split.items())
    assert "1 of the 24 images imagelabels.mat labels are missing" in caplog.text


@pytest.mark.parametrize("nesting", ["torchvision", "kaggle"])
def test_stanford_cars_devkit_names_each_splits_images_in_its_own_folder(nesting, tmp_path):
    """Both splits number their images from 00001.jpg: each annotations file names its split's folder's images.
    Kaggle's copy nests them (cars_train/cars_train/, car_devkit/devkit/)."""
    source = tmp_path / "cars"
    cars_devkit(source)
    if nesting == "kaggle":
        for split in ("cars_train", "cars_test"):
            (source / split).rename(tmp_path / split)
            (source / split).mkdir()
            (tmp_path / split).rename(source / split / split)
        (source / "car_devkit").mkdir()
        (source / "devkit").rename(source / "car_devkit" / "devkit")
    prepare_dataset(source, tmp_path / "out")
    found = made(tmp_path / "out")
    assert all("cars_train" in path for path in found["train"]) and all("cars_test" in path for path in found["test"])
    assert (len(found["train"]), len(found["test"])) == (12, 12)
    for split, shift in (("train", 0), ("test", 1)):
        assert all(label == CAR_NAMES[(int(Path(path).stem) + shift) % 3] for path, label in found[split].items())


def test_stanford_cars_without_test_labels_holds_out_a_share_of_its_training_images(tmp_path, caplog):
    source = tmp_path / "cars"
    cars_devkit(source, test_labels=False)
    caplog.set_level(logging.INFO)
    prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    found = made(tmp_path / "out")
    assert all("cars_train" in path for split in found.values() for path in split)
    assert (len(found["train"]), len(found["test"])) == (9, 3)
    assert "left out 12 image(s) that no MATLAB file labels" in caplog.text


def test_stanford_cars_single_annotations_file_splits_by_its_test_field_and_names_the_classes(tmp_path):
    source = tmp_path / "cars"
    truth = cars_annos(source)
    (source / "notes.mat").write_bytes(b"not a MATLAB file")  # left out with a warning
    prepare_dataset(source, tmp_path / "out")
    found = made(tmp_path / "out")
    for split in ("train", "test"):
        assert {Path(path).name: label for path, label in found[split].items()} == {
            name: label for name, (label, test) in truth.items() if test == (split == "test")}


def test_a_labels_array_is_chosen_by_label_column_where_there_are_several(tmp_path):
    source = tmp_path / "flowers"
    truth = flowers(source, split_ids=False)
    scipy.io.savemat(source / "grades.mat", {"class": np.ones((1, 24))})
    prepare_dataset(source, tmp_path / "out", label_column="labels", test_fraction=0.25)
    found = made(tmp_path / "out")
    assert all(label == str(truth[Path(path).name]) for split in found.values() for path, label in split.items())


def stanford_dogs(source: Path, lists: dict[str, slice]) -> list[str]:
    """Stanford Dogs as it ships: Images/<synset>-<breed>/<synset>_<n>.jpg and lists/<split>_list.mat (file_list,
    annotation_list, labels); the image paths, in order. ``lists``: each list file's share of them."""
    breeds = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"]
    files = [f"{breed}/{breed.split('-')[0]}_{number}.jpg" for breed in breeds for number in (10074, 10131, 10621, 1073)]
    for number, name in enumerate(files):
        write_image(source / "Images" / name, 30 * (number // 4 + 1))
    for name, part in lists.items():
        (source / "lists").mkdir(exist_ok=True)
        listed = files[part]
        scipy.io.savemat(source / "lists" / name, {
            "file_list": cell(listed).T, "annotation_list": cell([path[:-4] for path in listed]).T,
            "labels": np.array([[1 + breeds.index(path.split("/")[0])] for path in listed])})
    return files


def test_stanford_dogs_lists_choose_its_test_set_and_its_class_folders_label_it(tmp_path, caplog):
    """Stanford Dogs' train_list.mat and test_list.mat (text arrays of image paths, as TensorFlow Datasets reads
    them) choose the split; the class folders label the images. Before, the lists were left out and a random share
    held out, so scores could not be compared with published ones."""
    source = tmp_path / "dogs"
    files = stanford_dogs(source, {"train_list.mat": slice(None, None, 2), "test_list.mat": slice(1, None, 2)})
    caplog.set_level(logging.INFO)
    prepare_dataset(source, tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out" / "train")) == sorted({name.split("/")[0] for name in files})
    with open(tmp_path / "out" / "solution.csv", newline="") as handle:
        test = {os.readlink(tmp_path / "out" / "test" / row["id"]): row["label"] for row in csv.DictReader(handle)}
    assert sorted(test) == sorted(str(source / "Images" / name) for name in files[1::2])
    assert all(label == Path(path).parent.name for path, label in test.items())
    marker = json.loads((tmp_path / "out" / "PREPARED.json").read_text())
    assert marker["held_out_fraction"] is None and [Path(path).name for path in marker["split_lists"]] == \
        ["test_list.mat", "train_list.mat"]
    assert "(labels arrays, but no folder" not in caplog.text


def test_mat_lists_of_another_dataset_s_names_are_no_split(tmp_path):
    """Text arrays naming images the dataset does not hold (a list of another download) choose nothing: a share is
    held out as for any dataset without a split."""
    source = tmp_path / "dogs"
    stanford_dogs(source, {})
    for split in ("train", "test"):
        (source / "lists").mkdir(exist_ok=True)
        scipy.io.savemat(source / "lists" / f"{split}_list.mat", {"file_list": cell([f"other/{n}.jpg" for n in range(4)]).T})
    prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    assert json.loads((tmp_path / "out" / "PREPARED.json").read_text())["held_out_fraction"] == 0.25


def test_class_folders_beside_labels_arrays_that_fit_no_folder_stay_in_charge(tmp_path, caplog):
    """A labels array that numbers no folder's images (and lists no names) beside class folders: the folders label
    them, as before MATLAB files were read, and the array is said to be left out."""
    source = tmp_path / "dogs"
    files = stanford_dogs(source, {})
    scipy.io.savemat(source / "Images" / "breeds.mat", {"labels": np.arange(1, 21)})
    caplog.set_level(logging.INFO)
    prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    assert sorted(os.listdir(tmp_path / "out" / "train")) == sorted({name.split("/")[0] for name in files})
    assert "left out breeds.mat: labels (labels arrays, but no folder" in caplog.text


def _two_folders_of_numbered_images(source: Path):
    flowers(source, split_ids=False)
    for number in range(1, 25):
        write_image(source / "segmim" / f"segmim_{number:05d}.png", 0)
    return source / "imagelabels.mat", r"its 24 labels could be those of the images in jpg, segmim"


def _class_beyond_the_class_names(source: Path):
    cars_devkit(source)
    scipy.io.savemat(source / "devkit" / "cars_meta.mat", {"class_names": cell(CAR_NAMES[:2])})
    return source / "cars_test_annos_withlabels.mat", r"record 1 \(annotations.class\): class 3, but the 2 class names"


def _record_naming_two_images(source: Path):
    cars_annos(source)
    write_image(source / "more" / "000001.jpg", 0)
    scipy.io.savemat(source / "cars_annos.mat", {"annotations": annotations(
        [("000001.jpg", 1, 0), ("car_ims/000002.jpg", 2, 1)], ("relative_im_path", "class", "test"))})
    return source / "cars_annos.mat", r"record 1 \(annotations\): '000001.jpg' names 2 images"


def _label_column_no_field_has(source: Path):
    cars_annos(source)
    return "--label-column 'make'", r"not a field of cars_annos.mat's annotations \(relative_im_path, class, test\)"


def _test_classes_without_training_images(source: Path):
    """The line names the first of them and a few training classes of many (Stanford Cars has 196)."""
    names = [f"Car {number:02d}" for number in range(12)]
    rows = [(f"car_ims/{number:06d}.jpg", number % 12 + 1, int(number % 12 < 2)) for number in range(48)]
    for name, label, _ in rows:
        write_image(source / name, label)
    scipy.io.savemat(source / "cars_annos.mat", {
        "annotations": annotations(rows, ("relative_im_path", "class", "test")), "class_names": cell(names)})
    return source / "cars_annos.mat", (r"classes 'Car 00' and 1 more have no training images \(the training classes "
                                       r"are Car 02, Car 03, .*Car 09, \.\.\. \(10 in all\)\)$")


def _image_in_both_mat_lists(source: Path):
    stanford_dogs(source, {"train_list.mat": slice(0, 5), "test_list.mat": slice(4, None)})
    return source / "lists" / "train_list.mat", (r"n02085782_10074.jpg is listed in both the train and the test split "
                                                 r"\(test_list.mat\)")


def _mat_list_name_naming_two_images(source: Path):
    files = stanford_dogs(source, {"train_list.mat": slice(0, 4)})
    write_image(source / "Images" / "n02085782-Japanese_spaniel" / Path(files[0]).name, 90)
    scipy.io.savemat(source / "lists" / "test_list.mat", {"file_list": cell([Path(files[0]).name, *files[5:]]).T})
    return source / "lists" / "test_list.mat", r"file_list: 'n02085620_10074.jpg' names 2 images"


def _test_labels_only(source: Path):
    cars_devkit(source)
    (source / "devkit" / "cars_train_annos.mat").unlink()
    return source / "cars_test_annos_withlabels.mat", r"labels test images only; no MATLAB file labels the training"


# Flowers-102 with one MATLAB file written over: (case, split ids?, file, its arrays, problem).
FLOWERS_FILES = [
    ("split_ids_out_of_range", True, "setid.mat", {"trnid": np.arange(1, 13)[None], "tstid": np.arange(13, 26)[None]},
     r"tstid holds numbers that are not those of imagelabels.mat's 24 images \(1 to 24\)"),
    ("image_in_train_and_test_ids", True, "setid.mat", {"trnid": np.arange(1, 14)[None],
                                                        "tstid": np.arange(13, 25)[None]},
     r"image 13 is in tstid \(test\) and in a train array"),
    ("labels_for_no_folder_of_images", False, "imagelabels.mat", {"labels": np.ones((1, 80))},
     r"80 labels, but no folder holds images numbered 1 to 80 \(jpg/ holds 24 images\)"),
    ("label_not_a_whole_number", False, "imagelabels.mat", {"labels": np.full((1, 24), 1.5)},
     r"labels\[1\]: 1.5 is not a class number"),
    ("several_labels_arrays", False, "grades.mat", {"class": np.ones((1, 24))},
     r"several labels arrays \(grades.mat: class, imagelabels.mat: labels\); name one"),
]


# Stanford Cars' cars_annos.mat with a file of records written over or beside it: (case, file, records, fields,
# problem).
CARS_FILES = [
    ("image_labelled_two_ways", "more_annos.mat", [("car_ims/000001.jpg", 3, 0)], ("relative_im_path", "class", "test"),
     r"000001.jpg is 'BMW M3 Coupe 2012' here but 'Acura RL Sedan 2012' in cars_annos.mat"),
    ("image_in_a_train_and_a_test_file", "more_annos.mat", [("car_ims/000001.jpg", 2, 1)],
     ("relative_im_path", "class", "test"), r"000001.jpg is a test image here but a train image in cars_annos.mat"),
    ("test_field_not_zero_or_one", "cars_annos.mat", [("car_ims/000001.jpg", 1, 2), ("car_ims/000002.jpg", 2, 0)],
     ("relative_im_path", "class", "test"), r"test field holds values other than 0 and 1"),
    ("two_class_fields", "cars_annos.mat", [("car_ims/000001.jpg", 1, 1), ("car_ims/000002.jpg", 2, 2)],
     ("relative_im_path", "class", "label"), r"several class fields \(class, label\); name one with LABEL_COLUMN="),
]


def _cars_file(case):
    def make(source: Path):
        _, name, records, fields, problem = case
        cars_annos(source)
        scipy.io.savemat(source / name, {"annotations": annotations(records, fields)})
        return source / name, problem
    make.__name__ = f"_{case[0]}"
    return make


def _flowers_file(case):
    def make(source: Path):
        _, split_ids, name, arrays, problem = case
        flowers(source, split_ids=split_ids)
        scipy.io.savemat(source / name, arrays)
        return source / name, problem
    make.__name__ = f"_{case[0]}"
    return make


@pytest.mark.parametrize("make", [*map(_flowers_file, FLOWERS_FILES), _two_folders_of_numbered_images,
                                  *map(_cars_file, CARS_FILES), _class_beyond_the_class_names, _record_naming_two_images,
                                  _label_column_no_field_has, _image_in_both_mat_lists, _mat_list_name_naming_two_images,
                                  _test_labels_only, _test_classes_without_training_images],
                         ids=lambda make: make.__name__[1:])
def test_matlab_labels_that_cannot_label_the_images_are_one_line_and_nothing_is_written(make, tmp_path, capsys):
    dataset_refused(make, tmp_path, capsys)


def test_a_fifo_named_like_a_labels_file_is_not_opened(tmp_path):
    """scipy and h5py would wait for a writer forever; the dataset is then unlabelled, one line, in a fresh
    process under a time limit."""
    source = tmp_path / "dataset"
    flowers(source, split_ids=False)
    (source / "imagelabels.mat").unlink()
    os.mkfifo(source / "imagelabels.mat")
    refused_by_a_fresh_process(tmp_path, ["data", "--dataset", source, "--out", tmp_path / "out"], source,
                               "at least two classes")
