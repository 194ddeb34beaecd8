"""The folder layouts real Kaggle image competitions ship, made tiny: class per folder (Plant Seedlings, State
Farm's imgs/train/<class>/), label in the file name (Dogs vs. Cats, with its test1/ folder), labels CSVs under any
name with ids with or without the extension (Aerial Cactus, Histopathologic Cancer Detection), and images of mixed
sizes resized to one side."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import STRING_CLASSES, run_in_process, synthetic_images, write_csv_competition, write_image_competition
from test_hostile_data import refused_in_process

from kaggle_pipeline.data import detect_layout, list_layouts, load_competition
from kaggle_pipeline.data.images import MAX_DEFAULT_SIDE, MIN_DEFAULT_SIDE
from kaggle_pipeline.errors import ParameterError, PipelineError

PLANTS = ["Black-grass", "Common Chickweed", "Small-flowered Cranesbill"]  # spaces and dashes kept exactly


def save(path: Path, pixels: np.ndarray, size: tuple[int, int] | None = None) -> None:
    from PIL import Image

    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    if size is not None:
        image = image.resize(size, Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_class_folders(folder: Path, count=36, test_count=9, side=12, root: str = "", sizes=None) -> dict:
    """train/<class>/<name>.png, test/<name>.png, sample_submission.csv keyed by file name with extension."""
    images, labels = synthetic_images(count + test_count, side=side, channels=3, seed=1)
    base = folder / root if root else folder
    truth = {}
    for index in range(count + test_count):
        name = f"{index:04x}f.png"
        size = None if sizes is None else sizes[index % len(sizes)]
        if index < count:
            save(base / "train" / PLANTS[labels[index]] / name, images[index], size)
        else:
            save(base / "test" / name, images[index], size)
            truth[name] = (PLANTS[labels[index]], images[index])
    test_names = sorted(truth, reverse=True)  # the sample's order, not the folder's
    (folder / "sample_submission.csv").write_text("file,species\n" + "".join(f"{name},x\n" for name in test_names))
    return {"truth": truth, "order": test_names, "images": images, "labels": labels}


def write_dogs_vs_cats(folder: Path, count=30, test_count=8, side=10) -> dict:
    images, labels = synthetic_images(count + test_count, side=side, channels=3, classes=2, seed=2)
    names = ["cat", "dog"]
    for index in range(count):
        save(folder / "train" / f"{names[labels[index]]}.{index}.png", images[index])
    for number in range(1, test_count + 1):
        save(folder / "test1" / f"{number}.png", images[count + number - 1])
    (folder / "sampleSubmission.csv").write_text("id,label\n" + "".join(f"{n},0.5\n" for n in range(1, test_count + 1)))
    return {"images": images, "labels": labels, "count": count}


def test_every_layout_is_registered_in_detection_order():
    assert list_layouts() == ["npy", "folders", "filenames", "images", "csv", "json", "tfrecords"]


def test_class_per_folder_keeps_class_names_and_orders_test_images_like_the_sample(tmp_path):
    made = write_class_folders(tmp_path / "plants")
    assert detect_layout(tmp_path / "plants") == "folders"
    competition = load_competition(tmp_path / "plants")
    assert competition.layout == "folders" and competition.classes == sorted(PLANTS)
    assert competition.x_train.shape == (36, 12, 12, 3)
    # The training labels are the folder names, exactly (spaces kept), for the images in those folders.
    for row in range(len(competition.x_train)):
        match = np.flatnonzero((made["images"][:36] == competition.x_train[row]).all(axis=(1, 2, 3)))
        assert PLANTS[made["labels"][match[0]]] == competition.classes[competition.y_train[row]]
    # Test ids are file names with their extension, in the sample's order.
    assert competition.test_ids == made["order"]
    for row, name in enumerate(made["order"]):
        np.testing.assert_array_equal(competition.x_test[row], made["truth"][name][1])


def test_one_hot_labels_in_arrays_become_their_column_index(tmp_path):
    """Sign Language Digits and course notebooks save labels as keras.utils.to_categorical writes them."""
    from conftest import write_npy_competition

    folder = write_npy_competition(tmp_path / "signs", count=24, test_count=6, side=4)
    classes = np.load(folder / "train_y.npy")
    names = sorted(set(classes))
    one_hot = (classes[:, None] == np.array(names)[None, :]).astype(np.float32)
    np.save(folder / "y_train.npy", one_hot)
    (folder / "train_y.npy").unlink()
    competition = load_competition(folder)
    assert competition.classes == [str(index) for index in range(len(names))]
    assert [names[int(competition.classes[label])] for label in competition.y_train] == list(classes)
    # Rows that are not one-hot (two 1s, or soft labels) stay two-dimensional: refused as before.
    one_hot[3] = 0.5
    np.save(folder / "y_train.npy", one_hot)
    with pytest.raises(PipelineError, match=r"expected 24 labels in one dimension, found shape \(24, \d\)"):
        load_competition(folder)


def test_class_folders_one_level_deeper_as_state_farm_ships_them(tmp_path):
    write_class_folders(tmp_path / "farm", root="imgs")
    (tmp_path / "farm" / "driver_imgs_list.csv").write_text("subject,classname,img\np002,c0,img_44733.jpg\n")
    competition = load_competition(tmp_path / "farm")
    assert competition.layout == "folders" and competition.classes == sorted(PLANTS)
    assert len(competition.x_test) == 9


@pytest.mark.parametrize("names, classes", [
    (("great_pyrenees_{}.png", "Abyssinian_{}.png"), ["great_pyrenees", "Abyssinian"]),  # the label may hold "_"
    (("dog-{:03d}.png", "cat-{:03d}.png"), ["dog", "cat"]),            # a hyphen and zero-padded numbers
    (("Normal ({}).png", "Viral Pneumonia ({}).png"), ["Normal", "Viral Pneumonia"]),  # copies' numbering
    (("cat_{} (1).png", "dog({}).png"), ["cat", "dog"]),              # a copy of a numbered name; no space
])
def test_label_before_a_number_in_the_file_name(names, classes, tmp_path):
    images, labels = synthetic_images(24, side=8, channels=3, classes=2, seed=4)
    folder = tmp_path / "pets"
    for index in range(20):
        save(folder / "train" / names[labels[index]].format(index), images[index])
    for number in range(4):
        save(folder / "test" / f"{number}.png", images[20 + number])
    (folder / "sample_submission.csv").write_text("id,label\n" + "".join(f"{n},x\n" for n in range(4)))
    competition = load_competition(folder)
    assert competition.layout == "filenames" and competition.classes == sorted(classes)
    truth = {names[labels[index]].format(index): classes[labels[index]] for index in range(20)}
    order = sorted(truth)
    assert [competition.classes[label] for label in competition.y_train] == [truth[name] for name in order]


@pytest.mark.parametrize("names", [
    ("IMG_{:04d}.png", "DSC_{:04d}.png"),   # a camera's numbering is not a class
    ("Train_{}.png", "Test_{}.png"),        # nor a split's (Plant Pathology 2020 names its images so)
    ("{}_1.png", "{}_2.png"),               # numbers on both sides of the separator: no label
    ("IMG_{:04d} (2).png", "({}).png"),     # a copy's number on a camera's name, or on nothing
])
def test_numbered_names_without_a_label_are_not_labels(names, tmp_path):
    images, labels = synthetic_images(12, side=8, channels=3, classes=2, seed=4)
    folder = tmp_path / "photos"
    for index in range(10):
        save(folder / "train" / names[labels[index]].format(index), images[index])
    save(folder / "test" / "0.png", images[10])
    (folder / "sample_submission.csv").write_text("id,label\n0,x\n")
    assert detect_layout(folder) != "filenames"
    with pytest.raises(PipelineError, match=r"no labels CSV .* and no labels in the training images' names"):
        load_competition(folder)
    with pytest.raises(PipelineError, match=r"no label in the file name .* or <label>_<number>.png"):
        load_competition(folder, layout="filenames")


def test_label_in_the_file_name_with_a_test1_folder(tmp_path):
    made = write_dogs_vs_cats(tmp_path / "dogs-vs-cats")
    competition = load_competition(tmp_path / "dogs-vs-cats")
    assert competition.layout == "filenames" and competition.classes == ["cat", "dog"]
    order = sorted(range(made["count"]), key=lambda index: f"{['cat', 'dog'][made['labels'][index]]}.{index}.png")
    np.testing.assert_array_equal(competition.y_train, made["labels"][order])
    np.testing.assert_array_equal(competition.x_test, made["images"][made["count"]:])  # ids 1..8 by file stem


@pytest.mark.parametrize("labels_name", ["train.csv", "train_labels.csv", "trainLabels.csv", "labels.csv", "my labels.csv"])
@pytest.mark.parametrize("with_extension", [True, False])
def test_a_labels_csv_under_any_name_with_ids_with_or_without_the_extension(labels_name, with_extension, tmp_path):
    folder = write_image_competition(tmp_path / "cactus", count=24, test_count=6, side=4)
    reference = load_competition(folder)
    lines = (folder / "trainLabels.csv").read_text().splitlines()
    (folder / "trainLabels.csv").unlink()
    suffix = ".png" if with_extension else ""
    rows = [f"{line.split(',')[0]}{suffix},{line.split(',')[1]}" for line in lines[1:]]
    (folder / labels_name).write_text("id,has_cactus\n" + "\n".join(rows) + "\n")
    sample = (folder / "sampleSubmission.csv").read_text().splitlines()
    (folder / "sampleSubmission.csv").write_text("\n".join([sample[0]] + [
        f"{line.split(',')[0]}{suffix},{line.split(',')[1]}" for line in sample[1:]]) + "\n")
    competition = load_competition(folder)
    assert competition.layout == "images"
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)
    assert competition.classes == reference.classes


@pytest.mark.parametrize("written, problem", [
    ("1.jpg", r"id '1.jpg' \(column 'id'\) has no image .*nearly matching: 1\.png"),
    ("1.gif", r"id '1.gif' \(column 'id'\) has no image .*nearly matching: 1\.png"),
    ("IMG1", r"id 'IMG1' \(column 'id'\) has no image .*such as 1\.png"),
])
def test_an_id_without_its_file_names_the_files_that_nearly_match(written, problem, tmp_path, capsys, restore_signals):
    folder = write_image_competition(tmp_path / "near", count=24, test_count=6, side=4)
    labels = (folder / "trainLabels.csv").read_text().replace("\n1,", f"\n{written},", 1)
    (folder / "trainLabels.csv").write_text(labels)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / "trainLabels.csv", problem)


@pytest.mark.parametrize("file_suffix, written", [(".png", "{}.PNG"), (".PNG", "{}.png"), (".Png", "{}.pNG"),
                                                   (".png", "train/{}.PNG")])
def test_an_id_whose_image_suffix_differs_only_in_case_matches_its_file(file_suffix, written, tmp_path):
    """CSVs written where case does not count (IMG_0001.JPG listed as IMG_0001.jpg), in labels CSVs and samples."""
    folder = write_image_competition(tmp_path / "case", count=24, test_count=6, side=4)
    reference = load_competition(folder)
    for path in [*(folder / "train").iterdir(), *(folder / "test").iterdir()]:
        path.rename(path.with_suffix(file_suffix))
    _write_ids(folder, written.format, written.replace("train", "test").format)
    competition = load_competition(folder)
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    np.testing.assert_array_equal(competition.y_train, reference.y_train)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)
    assert competition.test_ids == [written.replace("train", "test").format(stem) for stem in range(25, 31)]


def _two_files_one_id_apart_from_suffix_case(folder: Path) -> None:
    (folder / "train" / "1.png").rename(folder / "train" / "1.PNG")
    (folder / "train" / "2.png").rename(folder / "train" / "1.Png")
    header, *rows = (folder / "trainLabels.csv").read_text().splitlines()
    rows = ["1.png" + row[1:] if row.startswith("1,") else row for row in rows if not row.startswith("2,")]
    (folder / "trainLabels.csv").write_text("\n".join([header, *rows]) + "\n")


def _name_in_another_case(folder: Path) -> None:
    (folder / "train" / "1.png").rename(folder / "train" / "a1.png")
    _write_ids(folder, lambda stem: "A1.png" if stem == "1" else stem, str)


def _one_file_named_in_both_cases(folder: Path) -> None:
    _write_ids(folder, lambda stem: {"2": "2.png", "3": "2.PNG"}.get(stem, stem), str)


@pytest.mark.parametrize("change, problem", [
    # Two files that one id names but for the case of their suffix: which one is not guessed.
    (_two_files_one_id_apart_from_suffix_case, r"id '1.png' matches more than one image in .*train \(1\.PNG, 1\.Png\)"),
    # The name itself in another case is another file on this file system.
    (_name_in_another_case, r"id 'A1.png' \(column 'id'\) has no image .*nearly matching: a1\.png"),
    (_one_file_named_in_both_cases, r"ids '2.png' and '2.PNG' \(column 'id'\) name the same image 2\.png"),
])
def test_suffix_case_never_picks_between_files_or_names_one_file_twice(change, problem, tmp_path, capsys,
                                                                        restore_signals):
    folder = write_image_competition(tmp_path / "case", count=24, test_count=6, side=4)
    change(folder)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / "trainLabels.csv", problem)


def _write_ids(folder: Path, train_id, test_id) -> None:
    """Rewrite the labels CSV's and the sample's ids (the file stems 1, 2, ...) through train_id and test_id."""
    for name, rewrite in (("trainLabels.csv", train_id), ("sampleSubmission.csv", test_id)):
        header, *rows = (folder / name).read_text().splitlines()
        rows = [f"{rewrite(row.split(',')[0])},{row.split(',')[1]}" for row in rows]
        (folder / name).write_text("\n".join([header, *rows]) + "\n")


@pytest.mark.parametrize("written", [
    "train/{}.png", "train/{}", "./train/{}.png", "train\\{}.png", "paths/train/{}.png", "{folder}/train/{}.png",
])
def test_ids_that_are_paths_through_the_image_folder_match_their_files(written, tmp_path):
    """Labels CSVs and samples made by scripts name files by their path (CheXpert, many notebooks' CSVs)."""
    folder = write_image_competition(tmp_path / "paths", count=24, test_count=6, side=4)
    reference = load_competition(folder)
    _write_ids(folder, lambda stem: written.format(stem, folder=folder),
               lambda stem: written.replace("train", "test").format(stem, folder=folder))
    competition = load_competition(folder)
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    np.testing.assert_array_equal(competition.y_train, reference.y_train)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)
    # The submission is written with the sample's ids as the sample writes them.
    assert competition.test_ids == [written.replace("train", "test").format(stem, folder=folder)
                                    for stem in range(25, 31)]


@pytest.mark.parametrize("written, problem", [
    ("test/1.png", r"id 'test/1.png' \(column 'id'\) has no image in .*train .*nearly matching: 1\.png .*through train/"),
    ("other/1.png", r"id 'other/1.png' \(column 'id'\) has no image"),
    ("train/sub/1.png", r"id 'train/sub/1.png' \(column 'id'\) has no image"),
    ("../train/1.png", r"id '../train/1.png' \(column 'id'\) has no image"),
    ("/elsewhere/train/1.png", r"id '/elsewhere/train/1.png' \(column 'id'\) has no image"),
])
def test_a_path_id_through_another_folder_is_refused(written, problem, tmp_path, capsys, restore_signals):
    """Never a training label for a test image, nor a file the path does not name."""
    folder = write_image_competition(tmp_path / "paths", count=24, test_count=6, side=4)
    _write_ids(folder, lambda stem: written if stem == "1" else stem, lambda stem: stem)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / "trainLabels.csv", problem)


def test_a_path_id_and_a_name_for_one_image_are_refused(tmp_path, capsys, restore_signals):
    folder = write_image_competition(tmp_path / "paths", count=24, test_count=6, side=4)
    _write_ids(folder, lambda stem: "train/2.png" if stem == "1" else stem, lambda stem: stem)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / "trainLabels.csv", r"ids 'train/2.png' and '2' .* name the same image 2\.png")


def _one_hot_competition(folder: Path, header: list[str], row) -> Path:
    """The image competition with a sample holding a column per class, and its labels CSV rewritten as
    ``header`` with ``row(label)`` giving each image's cells after the id."""
    write_image_competition(folder, count=24, test_count=6, side=4)
    sample_header, *sample_rows = (folder / "sampleSubmission.csv").read_text().splitlines()
    (folder / "sampleSubmission.csv").write_text(
        "id," + ",".join(STRING_CLASSES) + "\n" + "".join(f"{line.split(',')[0]},0.3,0.3,0.4\n" for line in sample_rows))
    _, *rows = (folder / "trainLabels.csv").read_text().splitlines()
    (folder / "trainLabels.csv").write_text(",".join(header) + "\n" + "".join(
        ",".join([line.split(",")[0], *row(line.split(",")[1])]) + "\n" for line in rows))
    return folder


@pytest.mark.parametrize("header, row", [
    (["image_id", "cat", "dog", "frog"], lambda label: ["1" if name == label else "0" for name in STRING_CLASSES]),
    (["image_id", "frog", "cat", "dog"], lambda label: ["1" if name == label else "0" for name in ("frog", "cat", "dog")]),
    (["image_id", "cat", "dog", "frog", "fold"], lambda label: ["1.0" if name == label else "0.0" for name in STRING_CLASSES] + ["3"]),
])
def test_a_labels_csv_with_a_column_per_class_marks_each_images_class(header, row, tmp_path):
    """Plant Pathology 2020: image_id,healthy,multiple_diseases,rust,scab, one 1 per row, as the sample's columns."""
    reference = load_competition(write_image_competition(tmp_path / "reference", count=24, test_count=6, side=4))
    competition = load_competition(_one_hot_competition(tmp_path / "onehot", header, row))
    assert competition.classes == reference.classes == STRING_CLASSES
    np.testing.assert_array_equal(competition.y_train, reference.y_train)
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    assert competition.submission_format == "class_probabilities"


@pytest.mark.parametrize("cells, shown", [
    (["1", "1", "0"], "cat=1, dog=1, frog=0"),      # two classes: multi-label
    (["0", "0", "0"], "cat=0, dog=0, frog=0"),      # none
    (["2", "0", "0"], "cat=2, dog=0, frog=0"),      # a count, not a mark
    (["0.5", "0.5", "0"], "cat=0.5, dog=0.5, frog=0"),  # soft labels
    (["", "1", "0"], "cat=(empty), dog=1, frog=0"),  # an empty cell
    (["yes", "no", "no"], "cat=yes, dog=no, frog=no"),
])
def test_a_class_column_row_not_marking_exactly_one_class_is_one_line(cells, shown, tmp_path, capsys, restore_signals):
    first = []

    def row(label):
        if not first:
            first.append(label)
            return cells
        return ["1" if name == label else "0" for name in STRING_CLASSES]

    folder = _one_hot_competition(tmp_path / "onehot", ["image_id", *STRING_CLASSES], row)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / "trainLabels.csv", rf"row 2 \({re.escape(shown)}\) does not mark exactly one class .*\(1 such rows\)")


def _shared_folder_competition(folder: Path, one_hot: bool) -> Path:
    """Plant Pathology 2020's shape: every image in images/ (Train_<n>.jpg, Test_<n>.jpg), train.csv with the
    labels, test.csv with the test ids only, the sample with a column per class (or id,label)."""
    write_image_competition(folder, count=24, test_count=6, side=4)
    (folder / "images").mkdir()
    for part, prefix in (("train", "Train_"), ("test", "Test_")):
        for path in (folder / part).iterdir():
            path.rename(folder / "images" / f"{prefix}{path.name}")
        (folder / part).rmdir()
    _, *labels = (folder / "trainLabels.csv").read_text().splitlines()
    (folder / "trainLabels.csv").unlink()
    if one_hot:
        (folder / "train.csv").write_text("image_id," + ",".join(STRING_CLASSES) + "\n" + "".join(
            f"Train_{row.split(',')[0]}," + ",".join("1" if name == row.split(",")[1] else "0" for name in STRING_CLASSES)
            + "\n" for row in labels))
    else:
        (folder / "train.csv").write_text("image_id,label\n" + "".join(f"Train_{row}\n" for row in labels))
    _, *sample = (folder / "sampleSubmission.csv").read_text().splitlines()
    (folder / "sampleSubmission.csv").write_text(
        ("image_id," + ",".join(STRING_CLASSES) if one_hot else "image_id,label") + "\n"
        + "".join(f"Test_{row.split(',')[0]}" + (",0.3,0.3,0.4" if one_hot else ",cat") + "\n" for row in sample))
    (folder / "test.csv").write_text("image_id\n" + "".join(f"Test_{row.split(',')[0]}\n" for row in sample))
    return folder


@pytest.mark.parametrize("one_hot", [True, False])
def test_one_image_folder_for_train_and_test_is_split_by_the_labels_csv_and_the_sample(one_hot, tmp_path):
    reference = load_competition(write_image_competition(tmp_path / "reference", count=24, test_count=6, side=4))
    competition = load_competition(_shared_folder_competition(tmp_path / "plants", one_hot))
    assert competition.layout == "images" and competition.classes == reference.classes
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    np.testing.assert_array_equal(competition.y_train, reference.y_train)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)


@pytest.mark.parametrize("mutate, named, problem", [
    (lambda f: shutil.copy(f / "images" / "Test_25.png", f / "images" / "Stray_1.png"), "images/Stray_1.png",
     "image is neither in train.csv nor in sampleSubmission.csv .*each image is a training image or a test image"),
    # A test id that is a labelled image: never a test image as well.
    (lambda f: (f / "sampleSubmission.csv").write_text((f / "sampleSubmission.csv").read_text().replace(
        "Test_25,", "Train_1,")), "sampleSubmission.csv", r"id 'Train_1' \(column 'image_id'\) has no image"),
    (lambda f: [path.unlink() for path in (f / "images").glob("Test_*")], "images", "no test images beside those train.csv labels"),
])
def test_one_image_folder_that_does_not_split_cleanly_is_one_line(mutate, named, problem, tmp_path, capsys,
                                                                  restore_signals):
    folder = _shared_folder_competition(tmp_path / "plants", one_hot=True)
    mutate(folder)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / named, problem)


def test_a_pixel_table_beside_a_folder_of_pictures_is_still_a_pixel_table(tmp_path, capsys, restore_signals):
    from conftest import write_csv_competition

    folder = write_csv_competition(tmp_path / "digits", count=24, test_count=6)
    (folder / "plots").mkdir()
    shutil.copy(write_image_competition(tmp_path / "pictures", count=3, test_count=3, side=4) / "train" / "1.png",
                folder / "plots" / "loss.png")
    assert load_competition(folder).layout == "csv"
    # Missing its test.csv, it is still told so, not read as images with pixel0 for an id.
    (folder / "test.csv").unlink()
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / "test.csv", "file not found")


def _leaf_competition(folder: Path, features=("margin1", "shape1", "texture1")) -> Path:
    """Leaf Classification's shape: images/<id>.png for train and test, train.csv of id, species and measured
    features, test.csv of id and the features, a sample of id and one probability column per species."""
    write_image_competition(folder, count=24, test_count=6, side=4)
    (folder / "images").mkdir()
    for part in ("train", "test"):
        for path in (folder / part).iterdir():
            path.rename(folder / "images" / path.name)
        (folder / part).rmdir()
    _, *labels = (folder / "trainLabels.csv").read_text().splitlines()
    (folder / "trainLabels.csv").unlink()
    numbers = ",".join("0.5" for _ in features)
    (folder / "train.csv").write_text(f"id,species,{','.join(features)}\n" + "".join(
        f"{row.split(',')[0]},{row.split(',')[1]},{numbers}\n" for row in labels))
    test_ids = [row.split(",")[0] for row in (folder / "sampleSubmission.csv").read_text().splitlines()[1:]]
    (folder / "test.csv").write_text(f"id,{','.join(features)}\n" + "".join(f"{i},{numbers}\n" for i in test_ids))
    share = f"{1 / len(STRING_CLASSES):.6f}"
    (folder / "sampleSubmission.csv").write_text("id," + ",".join(STRING_CLASSES) + "\n" + "".join(
        f"{i}," + ",".join([share] * len(STRING_CLASSES)) + "\n" for i in test_ids))
    return folder


def test_measurements_beside_the_images_are_not_pixels_and_the_species_column_holds_the_labels(tmp_path):
    """Leaf Classification: a test.csv wider than id and label whose ids name the images is a table of
    measurements, not Digit Recognizer's pixels; the labels are the one column whose values are all the
    sample's class columns ('species' among the measurements)."""
    reference = load_competition(write_image_competition(tmp_path / "reference", count=24, test_count=6, side=4))
    competition = load_competition(_leaf_competition(tmp_path / "leaf"))
    assert competition.layout == "images" and competition.classes == reference.classes
    assert competition.submission_format == "class_probabilities"
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    np.testing.assert_array_equal(competition.y_train, reference.y_train)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)


@pytest.mark.parametrize("mutate, named, problem", [
    # A second column of class names: which holds the labels is not guessed.
    (lambda f: (f / "train.csv").write_text((f / "train.csv").read_text().replace("id,species,", "id,species,guess,")
                                            .replace(",0.5,0.5,0.5", ",cat,0.5,0.5,0.5")),
     "train.csv", r"no column named label/labels/class/target/category, and not exactly one whose values are all the "
                  r"sample's class columns, among 'species', 'guess'"),
    # Ids that name no image: a wide test.csv is then a pixel table, and this one has no label column to read.
    (lambda f: (f / "test.csv").write_text((f / "test.csv").read_text().replace("\n25,", "\nx25,")),
     "train.csv", "no label column"),
])
def test_measurements_that_do_not_fit_are_one_line(mutate, named, problem, tmp_path, capsys, restore_signals):
    folder = _leaf_competition(tmp_path / "leaf")
    mutate(folder)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / named, problem)


def test_several_unknown_csvs_are_named_instead_of_guessed(tmp_path):
    folder = write_image_competition(tmp_path / "two", count=24, test_count=6, side=4)
    (folder / "trainLabels.csv").rename(folder / "a.csv")
    (folder / "b.csv").write_text("id,label\n")
    with pytest.raises(PipelineError, match=r"several CSVs could hold the training labels \(a.csv, b.csv\)"):
        load_competition(folder)


@pytest.mark.parametrize("mutate, named, problem", [
    (lambda f: (f / "train" / "loose.png").write_bytes(b""), "train/loose.png", "beside class folders"),
    (lambda f: (f / "train" / "Empty").mkdir(), "train/Empty", "class folder holds no images"),
    (lambda f: (f / "test" / "extra.png").write_bytes((f / "test" / "0024f.png").read_bytes()), "test/extra.png",
     "test image is not in sample_submission.csv"),
    (lambda f: (f / "test" / "0024f.png").unlink(), "sample_submission.csv",
     r"id '0024f.png' \(column 'file'\) has no image"),
    (lambda f: os.mkfifo(f / "train" / PLANTS[0] / "fifo.png"), f"train/{PLANTS[0]}/fifo.png", "not a regular file"),
    (lambda f: (f / "train" / PLANTS[1] / "0000f.png").write_bytes(b"GIF89a"), f"train/{PLANTS[1]}/0000f.png",
     "cannot read image"),
])
def test_class_folder_mistakes_are_one_line(mutate, named, problem, tmp_path, capsys, restore_signals):
    folder = tmp_path / "plants"
    write_class_folders(folder)
    mutate(folder)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / named, problem)


def test_a_file_name_without_a_label_is_one_line(tmp_path, capsys, restore_signals):
    folder = tmp_path / "dogs"
    write_dogs_vs_cats(folder)
    next((folder / "train").glob("cat.*.png")).rename(folder / "train" / "noname.png")
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models",
                                          "--layout", "filenames"],
                       folder / "train" / "noname.png", "no label in the file name")


def test_layout_override(tmp_path, capsys, restore_signals):
    folder = tmp_path / "plants"
    write_class_folders(folder)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models",
                                          "--layout", "csv"], folder / "train.csv", "not found")
    assert load_competition(folder, layout="folders").layout == "folders"
    with pytest.raises(ParameterError, match="choose one of npy, folders, filenames, images, csv"):
        load_competition(folder, layout="class-folders")


SIZES = [(12, 12), (20, 16), (9, 30), (40, 40), (16, 12)]


def test_mixed_sizes_are_resized_to_the_median_shorter_side(tmp_path):
    write_class_folders(tmp_path / "mixed", sizes=SIZES)
    competition = load_competition(tmp_path / "mixed")
    median = int(np.median([min(width, height) for width, height in (SIZES * 9)[:45]]))
    side = min(MAX_DEFAULT_SIDE, max(MIN_DEFAULT_SIDE, median))
    assert competition.x_train.shape[1:] == competition.x_test.shape[1:] == (side, side, 3)


def test_one_size_is_kept_and_image_size_resizes_every_layout(tmp_path):
    write_class_folders(tmp_path / "same", side=12)
    assert load_competition(tmp_path / "same").image_shape == (12, 12, 3)  # one size <= 128: kept exactly
    assert load_competition(tmp_path / "same", image_size=20).image_shape == (20, 20, 3)
    from conftest import write_csv_competition, write_npy_competition

    assert load_competition(write_csv_competition(tmp_path / "csv", count=24, test_count=6), image_size=8).image_shape == (8, 8, 1)
    assert load_competition(write_npy_competition(tmp_path / "npy", count=24, test_count=6), image_size=8).image_shape == (8, 8, 1)


def test_photos_larger_than_the_default_bound_are_brought_down_to_it(tmp_path):
    from PIL import Image

    folder = write_image_competition(tmp_path / "photos", count=6, test_count=2, side=4)
    for path in list((folder / "train").glob("*.png")) + list((folder / "test").glob("*.png")):
        Image.new("RGB", (300, 200), (10, 200, 30)).save(path.with_suffix(".jpg"), quality=95)
        path.unlink()
    (folder / "trainLabels.csv").write_text("id,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(1, 7)))
    competition = load_competition(folder)
    assert competition.image_shape == (MAX_DEFAULT_SIDE, MAX_DEFAULT_SIDE, 3)
    assert abs(int(competition.x_train[0, 64, 64, 1]) - 200) <= 3  # colour kept through JPEG draft + resize


def test_the_image_size_is_kept_by_the_store_and_a_different_one_refused(tmp_path, capsys, restore_signals):
    folder = tmp_path / "plants"
    write_class_folders(folder, sizes=SIZES)
    common = ["--data", folder, "--models-dir", tmp_path / "models"]
    search = run_in_process("search", *common, "--image-size", "16", "--space", "tiny", "--evals", "1",
                            "--search-epochs", "1", cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    manifest = json.loads((tmp_path / "models" / "plants" / "store.json").read_text())
    assert manifest["image_size"] == 16 and manifest["image_shape"] == [16, 16, 3]
    refused_in_process(tmp_path, capsys, ["ensemble", *common, "--image-size", "24"], "--image-size 24 (SIZE=)",
                       "made with image size 16")
    # Without --image-size the store's own size is used.
    ensemble = run_in_process("ensemble", *common, "--n", "1", "--epochs", "1", "--threshold", "0", cwd=tmp_path)
    assert ensemble.returncode == 0, ensemble.stderr


def _move_to_kaggle_images_folders(folder: Path, id_column: str, label_column: str, with_extension: bool) -> None:
    """CIFAR-10's layout (train/, test/, trainLabels.csv) as Cassava and APTOS ship theirs: train_images/,
    test_images/, train.csv keyed by image_id or id_code, and a test.csv of ids beside the sample."""
    (folder / "train").rename(folder / "train_images")
    (folder / "test").rename(folder / "test_images")
    suffix = ".png" if with_extension else ""
    rows = (folder / "trainLabels.csv").read_text().splitlines()[1:]
    (folder / "trainLabels.csv").unlink()
    (folder / "train.csv").write_text(f"{id_column},{label_column}\n" + "".join(
        f"{row.split(',')[0]}{suffix},{row.split(',')[1]}\n" for row in rows))
    sample = (folder / "sampleSubmission.csv").read_text().splitlines()[1:]
    (folder / "sampleSubmission.csv").unlink()
    (folder / "sample_submission.csv").write_text(f"{id_column},{label_column}\n" + "".join(
        f"{row.split(',')[0]}{suffix},0\n" for row in sample))
    (folder / "test.csv").write_text(f"{id_column}\n" + "".join(f"{row.split(',')[0]}{suffix}\n" for row in sample))


@pytest.mark.parametrize("id_column, label_column, with_extension", [
    ("image_id", "label", True),       # Cassava Leaf Disease
    ("id_code", "diagnosis", False),   # APTOS 2019
])
def test_train_images_and_test_images_folders_as_cassava_and_aptos_ship_them(id_column, label_column, with_extension,
                                                                              tmp_path):
    folder = write_image_competition(tmp_path / "leaves", count=24, test_count=6, side=4)
    reference = load_competition(folder)
    _move_to_kaggle_images_folders(folder, id_column, label_column, with_extension)
    competition = load_competition(folder)
    assert competition.layout == "images" and competition.classes == reference.classes
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    np.testing.assert_array_equal(competition.y_train, reference.y_train)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)


def test_class_folders_under_train_images_as_paddy_disease_ships_them(tmp_path):
    write_class_folders(tmp_path / "flat", count=18, test_count=3, side=6)
    reference = load_competition(tmp_path / "flat")
    written = write_class_folders(tmp_path / "paddy", count=18, test_count=3, side=6)
    (tmp_path / "paddy" / "train").rename(tmp_path / "paddy" / "train_images")
    (tmp_path / "paddy" / "test").rename(tmp_path / "paddy" / "test_images")
    competition = load_competition(tmp_path / "paddy")
    assert competition.layout == "folders" and competition.classes == reference.classes
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)
    assert competition.test_ids == written["order"]


def test_cassava_as_it_ships_with_tfrecords_folders_beside_the_image_folders(tmp_path):
    """Cassava Leaf Disease's real folder: train_tfrecords/ and test_tfrecords/ (TFRecord shards, no images)
    beside train_images/ and test_images/, and label_num_to_disease_map.json. Only a train*/test* folder that
    holds images, directly or in class folders, can be the image folder; before, Cassava was refused."""
    folder = write_image_competition(tmp_path / "cassava", count=24, test_count=6, side=4)
    reference = load_competition(folder)
    _move_to_kaggle_images_folders(folder, "image_id", "label", True)
    for name in ("train_tfrecords", "test_tfrecords"):
        (folder / name).mkdir()
        (folder / name / f"ld_{name}00-1338.tfrec").write_bytes(bytes(64))
    (folder / "empty_test_dir").mkdir()
    (folder / "label_num_to_disease_map.json").write_text('{"0": "Cassava Bacterial Blight (CBB)"}')
    competition = load_competition(folder)
    assert competition.layout == "images" and competition.classes == reference.classes
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)
    # Paddy Disease's class folders under train_images/ count as images too, beside a train_tfrecords/.
    paddy = tmp_path / "paddy"
    write_class_folders(paddy, count=18, test_count=3, side=6)
    (paddy / "train").rename(paddy / "train_images")
    (paddy / "test").rename(paddy / "test_images")
    (paddy / "train_tfrecords").mkdir()
    (paddy / "train_tfrecords" / "shard.tfrec").write_bytes(bytes(64))
    assert load_competition(paddy).layout == "folders"


@pytest.mark.parametrize("second", ["train_masks", "train_tfrecords"])
def test_two_folders_named_like_train_are_not_guessed_between(second, tmp_path, capsys, restore_signals):
    """Two train* folders that both hold images (segmentation masks) are named; with neither holding images,
    the same (a folder of shards beside a folder of shards)."""
    folder = write_image_competition(tmp_path / "two", count=24, test_count=6, side=4)
    _move_to_kaggle_images_folders(folder, "image_id", "label", True)
    if second == "train_masks":
        shutil.copytree(folder / "train_images", folder / "train_masks")
    else:
        for path in (folder / "train_images").iterdir():
            path.rename(path.with_suffix(".tfrec"))
        (folder / "train_tfrecords").mkdir()
        (folder / "train_tfrecords" / "shard.tfrec").write_bytes(bytes(64))
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder, f"train_images/, {second}/ could each be the train images")


def _nest(folder: Path, inner: str) -> None:
    """Move everything in ``folder`` into ``folder/inner/``."""
    moved = folder.with_name(folder.name + ".moving")
    folder.rename(moved)
    folder.mkdir()
    moved.rename(folder / inner)


@pytest.mark.parametrize("write, nesting", [
    (write_class_folders, {"test": "unknown"}),  # Keras' flow_from_directory wants test/unknown/
    (write_class_folders, {"train": "train", "test": "test"}),  # train.zip and test.zip unpacked into train/, test/
    (write_image_competition, {"train": "train", "test": "test"}),
    (write_dogs_vs_cats, {"train": "train", "test1": "test1"}),  # Dogs vs. Cats unzipped into folders of their own
])
def test_a_folder_holding_only_its_images_folder_is_read_through(write, nesting, tmp_path):
    write(tmp_path / "flat")
    reference = load_competition(tmp_path / "flat")
    write(tmp_path / "nested")
    for outer, inner in nesting.items():
        _nest(tmp_path / "nested" / outer, inner)
    competition = load_competition(tmp_path / "nested")
    assert competition.layout == reference.layout and competition.classes == reference.classes
    np.testing.assert_array_equal(competition.x_train, reference.x_train)
    np.testing.assert_array_equal(competition.y_train, reference.y_train)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)
    assert competition.test_ids == reference.test_ids


@pytest.mark.parametrize("mutate, named, problem", [
    # A class tree of one class is not a folder to read through: it is refused as one class, as before.
    (lambda f: [shutil.rmtree(path) for path in sorted((f / "train").iterdir())[1:]], "train",
     r"a single class \('Black-grass'\)"),
    # Two subfolders of test/ are not guessed between.
    (lambda f: _nest(f / "test", "a") or (f / "test" / "b").mkdir(), "test",
     r"no test images \(test images lie in it, or in its only folder; it holds a/, b/\)"),
    # Images below the lone subfolder's own subfolders are not test images.
    (lambda f: _nest(f / "test", "unknown") or _nest(f / "test" / "unknown", "deeper"), "test/unknown",
     r"no test images \(.* it holds deeper/\)"),
])
def test_folders_around_images_that_are_not_read_through_are_one_line(mutate, named, problem, tmp_path, capsys,
                                                                      restore_signals):
    folder = tmp_path / "plants"
    write_class_folders(folder)
    mutate(folder)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / named, problem)


@pytest.mark.parametrize("copies", [1, 2])
def test_a_competition_one_folder_down_is_named_not_guessed(copies, tmp_path, capsys, restore_signals):
    """A zip unpacked into a folder of its own (data/dogs/dog-breed-identification/): the error names where the
    sample submission is; with two such folders, both, and neither is picked."""
    outer = tmp_path / "dogs"
    names = ["dog-breed-identification", "dog-breed-identification-copy"][:copies]
    for name in names:
        write_image_competition(outer / name, count=24, test_count=6, side=4)
    (outer / "notes").mkdir()
    shown = ", ".join(str(outer / name) for name in names)
    refused_in_process(tmp_path, capsys, ["search", "--data", outer, "--models-dir", tmp_path / "models"], outer,
                       r"(no sample submission \(.*\) found|cannot tell the layout)" + re.escape(
                           f"; {shown} {'holds one' if copies == 1 else 'hold one each'}: pass that folder as --data"))


@pytest.mark.parametrize("archives", [["dog-breed-identification.zip"], ["test.zip", "train.zip"]])
def test_a_competition_still_in_its_archives_is_told_to_unpack_them(archives, tmp_path, capsys, restore_signals):
    """Downloaded by hand from the website and not unpacked: the folder holds the archives (and perhaps the
    CSVs); the error names them. A zip given as --data is named as an archive, not a folder."""
    import zipfile

    made = write_image_competition(tmp_path / "made", count=24, test_count=6, side=4)
    folder = tmp_path / "dogs"
    folder.mkdir()
    for archive in archives:
        with zipfile.ZipFile(folder / archive, "w") as written:
            for path in sorted(made.rglob("*")):
                if archive == "dog-breed-identification.zip" or path.relative_to(made).parts[0] == archive[:-4]:
                    written.write(path, path.relative_to(made))
    shown = ", ".join(archives)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"], folder,
                       re.escape(f"cannot tell the layout; it holds {shown}: unpack {'it' if len(archives) == 1 else 'them'} "
                                 "here first (make download unpacks what it downloads)"))
    refused_in_process(tmp_path, capsys, ["search", "--data", folder / archives[0], "--models-dir", tmp_path / "models"],
                       folder / archives[0], "an archive, not a folder; unpack it into a folder")


BESIDE = re.escape("is beside it: unpack it here first (make download unpacks what it downloads)")


@pytest.mark.parametrize("write, name, archive, named, problem", [
    # Dogs vs. Cats: train/ unpacked, test1.zip not (test/ is missing, test1.zip beside it).
    (write_dogs_vs_cats, "test1", "test1.zip", "test", "image folder not found; test1\\.zip " + BESIDE),
    # CIFAR-10 shaped: the labels CSV and test/ unpacked, train.7z not.
    (write_image_competition, "train", "train.7z", "train", "image folder not found; train.7z " + BESIDE),
    # Digit Recognizer by hand: train.csv.zip beside an unpacked test.csv.
    (write_csv_competition, "train.csv", "train.csv.zip", "train.csv", "file not found; train.csv.zip " + BESIDE),
    # Plant Seedlings' test/ unpacked but train.zip not: no labels anywhere, and the archive named.
    (write_class_folders, "train", "train.zip", ".", "no labels CSV .*; it holds train.zip: unpack it here first"),
])
def test_files_still_in_their_archives_are_named_with_what_is_missing(write, name, archive, named, problem, tmp_path,
                                                                      capsys, restore_signals):
    """Part of a competition downloaded by hand and left packed: the one line says what is missing and which
    archive beside it holds it, instead of only that it is missing."""
    import zipfile

    folder = tmp_path / "plants"
    write(folder, **({"count": 24, "test_count": 6, "side": 4} if write in (write_image_competition, write_csv_competition) else {}))
    with zipfile.ZipFile(folder / archive, "w") as packed:
        for path in [folder / name, *sorted((folder / name).rglob("*"))]:
            packed.write(path, path.relative_to(folder))
    shutil.rmtree(folder / name) if (folder / name).is_dir() else (folder / name).unlink()
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / named if named != "." else folder, problem)


def test_a_competition_folder_never_unpacked_names_its_archive(tmp_path, capsys, restore_signals):
    """--data data/plants where only data/plants.zip is: the archive beside the missing folder is named."""
    (tmp_path / "plants.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    refused_in_process(tmp_path, capsys, ["search", "--data", tmp_path / "plants", "--models-dir", tmp_path / "models"],
                       tmp_path / "plants", "competition folder not found; plants.zip " + BESIDE)


def test_files_that_are_not_images_are_left_out_with_a_word_and_jfif_is_a_jpeg(tmp_path, caplog):
    """A .jfif photo is a JPEG and is read; a text file or Thumbs.db in an image folder is left out, and the
    log says so once per folder with the suffixes and counts (before, they vanished without a word)."""
    import logging

    from PIL import Image

    folder = tmp_path / "plants"
    write_class_folders(folder, count=18, test_count=3, side=6)
    reference = load_competition(folder, write_cache=False)
    first = sorted((folder / "train" / PLANTS[0]).iterdir())[0]
    Image.open(first).convert("RGB").save(folder / "train" / PLANTS[0] / "photo.jfif", format="JPEG")
    (folder / "train" / PLANTS[1] / "notes.txt").write_text("taken on a cloudy day\n")
    (folder / "train" / PLANTS[1] / "Thumbs.db").write_bytes(bytes(16))
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data.folders"):
        competition = load_competition(folder, write_cache=False)
    assert len(competition.x_train) == len(reference.x_train) + 1
    messages = [record.getMessage() for record in caplog.records]
    assert [message for message in messages if "left out" in message] == [
        f"data: {folder / 'train' / PLANTS[1]}: left out 2 file(s) that are not images by their suffix (.db 1, .txt 1); "
        "images are .avif, .bmp, .dcm, .dicom, .gif, .j2k, .jfif, .jp2, .jpeg, .jpg, .pbm, .pgm, .png, .pnm, .ppm, .tif, .tiff, "
        ".webp"]


def test_files_that_are_not_images_in_many_class_folders_are_said_for_a_few(tmp_path, caplog):
    """Tiny ImageNet's 200 class folders each hold a <wnid>_boxes.txt: 200 lines before. Three are named, one line
    says there are more, and each is still named at debug level (-v)."""
    import logging

    folder = tmp_path / "boxes"
    write_class_folders(folder, count=18, test_count=3, side=6)
    for name in ("Maize", "Sugar beet"):  # five class folders
        shutil.copytree(folder / "train" / PLANTS[0], folder / "train" / name)
    classes = sorted(path for path in (folder / "train").iterdir())
    for class_folder in classes:
        (class_folder / f"{class_folder.name}_boxes.txt").write_text("0 0 5 5\n")
    with caplog.at_level(logging.DEBUG, logger="kaggle_pipeline.data.folders"):
        load_competition(folder, write_cache=False)
    said = [record for record in caplog.records if "left out 1 file(s)" in record.getMessage()]
    assert [record.levelno for record in said] == [logging.INFO] * 3 + [logging.DEBUG] * (len(classes) - 3)
    assert f"data: {folder / 'train'}: more of its folders hold files that are not images; -v (VERBOSE=2) names each" \
        in caplog.messages


def test_every_layout_forced_on_every_other_layouts_folder_loads_or_is_one_line(tmp_path):
    """--layout overrides the detection: whatever folder it is given, a layout either reads it or refuses it with a
    PipelineError naming a file of it, never another exception (the tfrecords layout once raised IndexError)."""
    from conftest import write_npy_competition
    from test_json_layout import write_iceberg
    from test_tfrecords_layout import write_petals

    made = {
        "npy": write_npy_competition(tmp_path / "npy", count=24, test_count=6, side=4),
        "folders": tmp_path / "folders",
        "filenames": tmp_path / "filenames",
        "images": write_image_competition(tmp_path / "images", count=24, test_count=6, side=4),
        "csv": write_csv_competition(tmp_path / "csv", count=24, test_count=6, side=4),
        "json": write_iceberg(tmp_path / "json"),
        "tfrecords": tmp_path / "tfrecords",
    }
    write_class_folders(made["folders"])
    write_dogs_vs_cats(made["filenames"])
    write_petals(made["tfrecords"], sizes=("64x64",))
    assert sorted(made) == sorted(list_layouts())
    for layout in list_layouts():
        for shape, folder in made.items():
            try:
                competition = load_competition(folder, layout=layout, write_cache=False)
            except PipelineError as error:
                assert str(error).startswith(str(folder)) and "\n" not in str(error), (layout, shape, str(error))
            else:
                assert len(competition.x_train) and len(competition.x_test), (layout, shape)


# Two-stage competitions (2016-2018): a test folder per stage and a sample per stage; the last stage's sample,
# which Kaggle scores late submissions against, lists the images of every stage.
FISH = ["ALB", "BET", "NoF", "YFT"]


def write_fisheries(folder: Path, stage_one="test_stg1", stage_one_sample="sample_submission_stg1.csv") -> dict:
    """The Nature Conservancy Fisheries Monitoring's shape: train/<class>/img_*.jpg, test_stg1/img_*.jpg,
    test_stg2/image_*.jpg, a sample per stage with a column per class; stage 2's ids give its images by a path."""
    images, labels = synthetic_images(24 + 5 + 7, side=8, channels=3, classes=4, seed=5)
    for index in range(24):
        save(folder / "train" / FISH[labels[index]] / f"img_{index:05d}.png", images[index])
    first = [f"img_{900 + index:05d}.png" for index in range(5)]
    second = [f"image_{index + 1:05d}.png" for index in range(7)]
    truth = {}
    for offset, name in enumerate(first):
        save(folder / stage_one / name, images[24 + offset])
        truth[name] = images[24 + offset]
    for offset, name in enumerate(second):
        save(folder / "test_stg2" / name, images[29 + offset])
        truth[f"test_stg2/{name}"] = images[29 + offset]
    header, row = "image," + ",".join(FISH) + "\n", "," + ",".join(["0.25"] * 4) + "\n"
    (folder / stage_one_sample).write_text(header + "".join(name + row for name in first))
    ids = first[::-1] + [f"test_stg2/{name}" for name in second]  # the sample's order, not the folders'
    (folder / "sample_submission_stg2.csv").write_text(header + "".join(image_id + row for image_id in ids))
    return {"truth": truth, "ids": ids}


@pytest.mark.parametrize("stage_one, stage_one_sample", [("test_stg1", "sample_submission_stg1.csv"),
                                                          ("test", "sample_submission.csv")])
def test_a_two_stage_competition_reads_every_stages_test_images_as_the_last_sample_lists_them(stage_one,
                                                                                               stage_one_sample, tmp_path,
                                                                                               caplog):
    import logging

    folder = tmp_path / "the-nature-conservancy-fisheries-monitoring"
    made = write_fisheries(folder, stage_one, stage_one_sample)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        competition = load_competition(folder)
    assert competition.sample_submission == folder / "sample_submission_stg2.csv"
    assert any(f"sample_submission_stg2.csv is the last stage's sample submission, the one Kaggle scores now; left "
               f"aside: {stage_one_sample}" in record.getMessage() for record in caplog.records)
    assert competition.layout == "folders" and competition.classes == FISH and len(competition.x_train) == 24
    assert competition.test_ids == made["ids"] and competition.submission_columns == FISH
    for row, image_id in enumerate(made["ids"]):
        np.testing.assert_array_equal(competition.x_test[row], made["truth"][image_id])
    # Both stages' images are in the cache key: a changed stage-1 image is parsed again.
    from kaggle_pipeline.data.competition import source_files

    assert folder / stage_one / "img_00900.png" in source_files(folder, "folders")


def _fish_name_in_both_stages(folder: Path):
    save(folder / "test_stg2" / "img_00900.png", np.zeros((8, 8, 3), dtype=np.uint8))
    return folder / "sample_submission_stg2.csv", r"id 'img_00900.png' \(column 'image'\) names an image in each of " \
        r"test_stg1/, test_stg2/; an id must name one"


def _fish_id_in_no_stage(folder: Path):
    sample = folder / "sample_submission_stg2.csv"
    sample.write_text(sample.read_text().replace("img_00901.png", "img_00999.png"))
    return sample, r"id 'img_00999.png' \(column 'image'\) has no image in test_stg1/ or test_stg2/ \(1 ids"


def _fish_stage_one_image_unlisted(folder: Path):
    sample = folder / "sample_submission_stg2.csv"
    sample.write_text("".join(line for line in sample.read_text().splitlines(keepends=True) if "img_00902" not in line))
    return folder / "test_stg1" / "img_00902.png", r"test image is not in sample_submission_stg2.csv"


def _fish_stage_path_through_the_other_folder(folder: Path):
    sample = folder / "sample_submission_stg2.csv"
    sample.write_text(sample.read_text().replace("test_stg2/image_00003.png", "test_stg1/image_00003.png"))
    return sample, r"id 'test_stg1/image_00003.png' .*has no image in .*test_stg1"


def _fish_two_samples_of_one_stage(folder: Path):
    (folder / "sampleSubmission_stg2.csv").write_bytes((folder / "sample_submission_stg2.csv").read_bytes())
    return folder, r"more than one sample submission"


def _fish_a_test_folder_that_is_no_stage(folder: Path):
    (folder / "test_stg1").rename(folder / "test1")
    return folder, r"test1/, test_stg2/ could each be the test images"


@pytest.mark.parametrize("damage", [_fish_name_in_both_stages, _fish_id_in_no_stage, _fish_stage_one_image_unlisted,
                                    _fish_stage_path_through_the_other_folder, _fish_two_samples_of_one_stage,
                                    _fish_a_test_folder_that_is_no_stage], ids=lambda damage: damage.__name__[6:])
def test_a_two_stage_competition_that_does_not_fit_together_is_one_line(damage, tmp_path, capsys, restore_signals):
    folder = tmp_path / "fish"
    write_fisheries(folder)
    named, problem = damage(folder)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"], named, problem)


def test_labels_that_are_lists_of_tags_are_said_to_be_trained_as_combinations(tmp_path, caplog):
    """Plant Pathology 2021's labels are space-separated tags; each combination is a class, and the log says so.
    Class names with spaces that are not tags (Plant Seedlings' 'Common Chickweed') say nothing."""
    import logging

    tags = ["healthy", "scab", "rust", "scab frog_eye_leaf_spot", "rust complex", "complex", "frog_eye_leaf_spot"]
    folder = write_image_competition(tmp_path / "plant-pathology-2021-fgvc8", count=42, test_count=6)
    labels = (folder / "trainLabels.csv").read_text().splitlines()
    (folder / "trainLabels.csv").write_text("\n".join([labels[0]] + [f"{line.split(',')[0]},{tags[row % len(tags)]}"
                                                                     for row, line in enumerate(labels[1:])]) + "\n")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        competition = load_competition(folder)
        write_class_folders(tmp_path / "plants")
        load_competition(tmp_path / "plants")  # 'Common Chickweed', 'Small-flowered Cranesbill': names, not tags
    assert len(competition.classes) == 7
    said = [record.getMessage() for record in caplog.records if "label powerset" in record.getMessage()]
    assert said == ["data: the 7 labels look like lists of 5 tags (e.g. 'rust complex'): each combination is trained "
                    "as one class (a label powerset); a combination not in the training labels is never predicted, "
                    "and multi-label training (a probability per tag) is not supported"]


@pytest.mark.parametrize("where", ["class", "test"])
def test_a_folder_of_heic_photos_says_what_it_holds_and_how_to_convert_them(where, tmp_path, capsys, restore_signals):
    """iPhones save HEIC, which Pillow does not decode here: the folder's error names the files it does hold (the
    log line that said they were left out is not printed when the stage stops) and how to convert them."""
    folder = tmp_path / "plants"
    write_class_folders(folder)
    emptied = folder / "train" / PLANTS[1] if where == "class" else folder / "test"
    for path in sorted(emptied.iterdir()):
        path.rename(path.with_suffix(".HEIC"))
    (emptied / "notes.txt").write_text("shot on a phone\n")
    problem = ("class folder holds no images" if where == "class" else "no test images") + \
        r"; it holds \d+ file\(s\) that are not images by their suffix \(.heic \d+, .txt 1\); HEIC photos \(as " \
        r"iPhones save them\) are not read here: convert them to JPEG first"
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"], emptied, problem)


def test_a_two_stage_competition_with_a_labels_csv_reads_both_stages(tmp_path):
    """The labels-CSV layout takes the same stages: test/ (stage 1) beside test_stg2/, ids by name only."""
    from PIL import Image

    folder = write_image_competition(tmp_path / "cervix", count=30, test_count=8)
    (folder / "test_stg2").mkdir()
    for number in (35, 36, 37, 38):
        (folder / "test" / f"{number}.png").rename(folder / "test_stg2" / f"{number}.png")
    (folder / "sampleSubmission.csv").rename(folder / "sample_submission.csv")
    ids = [str(number) for number in range(38, 30, -1)]
    (folder / "sample_submission_stg2.csv").write_text("id,label\n" + "".join(f"{image_id},cat\n" for image_id in ids))
    competition = load_competition(folder)
    assert competition.layout == "images" and competition.test_ids == ids
    for row, image_id in enumerate(ids):
        stage = "test_stg2" if int(image_id) >= 35 else "test"
        np.testing.assert_array_equal(competition.x_test[row], np.asarray(Image.open(folder / stage / f"{image_id}.png")))
