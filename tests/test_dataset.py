"""``data --dataset``: a labelled Kaggle *dataset* (Chest X-Ray's train/val/test class trees, Intel Image
Classification's seg_train/seg_train/, PetImages' bare class folders) made a competition folder with a local
answer key, its images linked and never written; refused cases are one line with nothing changed."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_in_process, write_csv_competition, write_image_competition
from test_hostile_data import dataset_refused, refused_in_process, snapshot

from kaggle_pipeline.data import answer_key_labels, load_competition
from kaggle_pipeline.data.dataset import prepare_dataset
from kaggle_pipeline.errors import PipelineError

pytestmark = pytest.mark.usefixtures("restore_signals")


def save(path: Path, value: int) -> None:
    """A small image whose every pixel is ``value``: its source is known from its pixels after linking."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 7, 3), value, dtype=np.uint8)).save(path)


def write_chest_xray(root: Path) -> dict[int, str]:
    """chest_xray/chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/; val repeats a train file name. Returns each
    image's pixel value -> (split, class)."""
    made, value = {}, 1
    for split, count in (("train", 6), ("val", 2), ("test", 3)):
        for label in ("NORMAL", "PNEUMONIA"):
            for number in range(count):
                save(root / "chest_xray" / split / label / f"IM-{number:04d}.png", value)
                made[value] = (split, label)
                value += 1
    return made


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_a_dataset_with_train_val_and_test_splits_becomes_a_competition_with_its_answer_key(tmp_path):
    source = tmp_path / "chest_xray"
    made = write_chest_xray(source)
    before = snapshot(source)
    assert prepare_dataset(source, tmp_path / "data" / "xray")
    assert snapshot(source) == before  # the dataset is only linked to
    competition = load_competition(tmp_path / "data" / "xray")
    assert competition.layout == "folders" and competition.classes == ["NORMAL", "PNEUMONIA"]
    assert len(competition.x_train) == 16  # train and val: the pipeline makes its own validation split
    trained = {int(image[0, 0, 0]): competition.classes[label] for image, label in
               zip(competition.x_train, competition.y_train, strict=True)}
    assert trained == {value: label for value, (split, label) in made.items() if split != "test"}
    # Every test image is the dataset's test split, its answer its class folder; ids and order say nothing of it.
    truth = answer_key_labels(competition)
    tested = {int(image[0, 0, 0]): competition.classes[label] for image, label in
              zip(competition.x_test, truth, strict=True)}
    assert tested == {value: label for value, (split, label) in made.items() if split == "test"}
    assert competition.test_ids == [f"{number}.png" for number in range(1, 7)]
    assert [row[1] for row in rows(tmp_path / "data" / "xray" / "sample_submission.csv")[1:]] == ["NORMAL"] * 6
    marker = json.loads((tmp_path / "data" / "xray" / "PREPARED.json").read_text())
    assert marker["train_images"] == 16 and marker["test_images"] == 6 and marker["held_out_fraction"] is None
    assert os.path.islink(tmp_path / "data" / "xray" / "test" / "1.png")
    assert not prepare_dataset(source, tmp_path / "data" / "xray")  # already prepared: nothing written


def test_split_folders_of_any_name_are_read_through_their_lone_folder_and_unlabelled_ones_left_out(tmp_path, caplog):
    source = tmp_path / "intel"
    value = 1
    for split, count in (("seg_train", 4), ("seg_test", 2)):
        for label in ("buildings", "forest", "sea"):
            for number in range(count):
                save(source / split / split / label / f"{number}.png", value)
                value += 1
    save(source / "seg_pred" / "seg_pred" / "1.png", 200)
    save(source / "test-multiple_fruits" / "1.png", 201)  # Fruits-360's unlabelled test folder
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "intel-competition")
    said = [record.getMessage() for record in caplog.records]
    assert "data: left out seg_pred (not named like a train, val or test split)" in said
    assert "data: left out test-multiple_fruits (no class folders, no labels in its file names: unlabelled)" in said
    competition = load_competition(tmp_path / "intel-competition")
    assert competition.classes == ["buildings", "forest", "sea"]
    assert (len(competition.x_train), len(competition.x_test)) == (12, 6)
    assert not {200, 201} & set(competition.x_test[:, 0, 0, 0].tolist())


def test_the_one_folder_a_download_unpacks_into_is_read_through_unless_it_is_a_split(tmp_path, caplog):
    """make download puts a dataset in data/<name>/, holding the one folder its zip held (cats/PetImages/,
    chest-xray/chest_xray/, beside a README): read through it, saying so. A lone train/ is a split (held out)."""
    source = tmp_path / "cats"
    for label, value in (("Cat", 1), ("Dog", 2)):
        for number in range(5):
            save(source / "PetImages" / label / f"{number}.png", value)
    (source / "readme.txt").write_text("Microsoft's cats and dogs\n")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "cats-competition")
    assert f"data: reading {source / 'PetImages'} (the one folder in {source})" in caplog.messages
    competition = load_competition(tmp_path / "cats-competition")
    assert competition.classes == ["Cat", "Dog"] and len(competition.x_train) + len(competition.x_test) == 10
    xray = tmp_path / "chest-xray"
    write_chest_xray(xray / "chest_xray")  # chest_xray/chest_xray/: two lone folders, the second of its name
    prepare_dataset(xray, tmp_path / "xray-competition")
    assert (len(load_competition(tmp_path / "xray-competition").x_test)) == 6  # the test split, not held out
    split_only = tmp_path / "split-only"
    for label, value in (("a", 1), ("b", 2)):
        for number in range(5):
            save(split_only / "train" / label / f"{number}.png", value)
    prepare_dataset(split_only, tmp_path / "split-competition", test_fraction=0.2)
    assert load_competition(tmp_path / "split-competition").classes == ["a", "b"]


def test_an_unlabelled_test_split_beside_the_folder_holding_the_splits_is_left_out(tmp_path, caplog):
    """New Plant Diseases: "New Plant Diseases Dataset(Augmented)/<the same>/train/<class>/" and valid/, beside
    test/test/AppleCedarRust1.JPG, unlabelled: refused as splits without class folders before."""
    source = tmp_path / "new-plant-diseases"
    inner = source / "New Plant Diseases Dataset(Augmented)" / "New Plant Diseases Dataset(Augmented)"
    for split, count in (("train", 4), ("valid", 1)):
        for label, value in (("Apple___Apple_scab", 1), ("Tomato___Early_blight", 2)):
            for number in range(count):
                save(inner / split / label / f"{number}_{label}.JPG", value)
    for name in ("AppleCedarRust1", "TomatoEarlyBlight2"):
        save(source / "test" / "test" / f"{name}.JPG", 9)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", test_fraction=0.2)
    assert "data: left out test (no class folders, no labels in its file names: unlabelled)" in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["Apple___Apple_scab", "Tomato___Early_blight"]
    assert (len(competition.x_train), len(competition.x_test)) == (8, 2)  # valid trains; a fifth is held out
    assert 9 not in competition.x_train[:, 0, 0, 0] and 9 not in competition.x_test[:, 0, 0, 0]


def test_folders_without_images_beside_the_one_with_them_are_left_out(tmp_path, caplog):
    """Stanford Dogs: images/Images/<breed>/ beside annotations/Annotation/<breed>/<name> (XML without a suffix)."""
    source = tmp_path / "stanford-dogs"
    for breed, value in (("n02085620-Chihuahua", 1), ("n02085782-Japanese_spaniel", 2)):
        for number in range(5):
            save(source / "images" / "Images" / breed / f"{breed[:9]}_{number}.jpg", value)
            (source / "annotations" / "Annotation" / breed).mkdir(parents=True, exist_ok=True)
            (source / "annotations" / "Annotation" / breed / f"{breed[:9]}_{number}").write_text("<annotation/>")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert "data: left out annotations (no images) beside images" in caplog.messages
    assert load_competition(tmp_path / "out").classes == ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"]
    # A class folder left empty is not a folder of something else: the dataset stays one class short, refused.
    pets = tmp_path / "pets"
    for batch in ("batch1", "batch2"):
        save(pets / "cat" / batch / "1.png", 1)
    (pets / "dog").mkdir()
    with pytest.raises(PipelineError, match="at least two classes with images"):
        prepare_dataset(pets, tmp_path / "pets-out")


def test_labels_in_file_names_label_a_split(tmp_path, caplog):
    """Dogs vs. Cats re-shared as a dataset: train/train/cat.0.jpg, dog.0.jpg, ...; test1/test1/1.jpg unlabelled."""
    source = tmp_path / "dogs-vs-cats"
    for label, value in (("cat", 1), ("dog", 2)):
        for number in range(5):
            save(source / "train" / "train" / f"{label}.{number}.jpg", value)
    for number in range(1, 4):
        save(source / "test1" / "test1" / f"{number}.jpg", 9)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", test_fraction=0.4)
    assert "data: left out test1 (no class folders, no labels in its file names: unlabelled)" in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["cat", "dog"] and (len(competition.x_train), len(competition.x_test)) == (6, 4)
    truth = answer_key_labels(competition)
    assert all(int(image[0, 0, 0]) == (1 if competition.classes[label] == "cat" else 2)
               for image, label in zip(competition.x_test, truth, strict=True))


def test_a_folder_labelled_by_its_file_names_is_not_a_class_beside_other_folders(tmp_path, caplog):
    """Oxford-IIIT Pet: images/Abyssinian_1.jpg, great_pyrenees_12.jpg (the labels in the names) beside
    annotations/trimaps/Abyssinian_1.png: read as two classes, images and annotations, before."""
    source = tmp_path / "oxford-pets"
    for label, value in (("Abyssinian", 1), ("great_pyrenees", 2)):
        for number in range(1, 6):
            save(source / "images" / f"{label}_{number}.jpg", value)
            save(source / "annotations" / "trimaps" / f"{label}_{number}.png", 3)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert "data: left out annotations beside images, whose file names hold the labels" in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["Abyssinian", "great_pyrenees"]
    assert 3 not in competition.x_train[:, 0, 0, 0] and 3 not in competition.x_test[:, 0, 0, 0]


def test_class_folders_named_like_one_split_are_classes(tmp_path):
    """Real and Fake Face Detection: training_fake/ and training_real/ hold the images: classes, which were refused as
    split folders without class folders. train/ and val/ of images alone are still no classes; a class folder
    holding a folder of its own name (cat/cat/ from a zip) is no copy of the dataset."""
    source = tmp_path / "real_and_fake_face"
    for label, value in (("training_fake", 1), ("training_real", 2)):
        for number in range(3):
            save(source / label / f"{label[9:]}_{number}.jpg", value)
    prepare_dataset(source, tmp_path / "out")
    assert load_competition(tmp_path / "out").classes == ["training_fake", "training_real"]
    splits = tmp_path / "splits"
    for split in ("train", "val"):
        save(splits / split / "1.jpg", 1)
    with pytest.raises(PipelineError, match="its split folders hold no class folders"):
        prepare_dataset(splits, tmp_path / "out-splits")
    zipped = tmp_path / "zipped"
    for label, value in (("cat", 1), ("dog", 2)):
        for number in range(3):
            save(zipped / label / label / f"{number}.jpg", value)
    prepare_dataset(zipped, tmp_path / "out-zipped")
    assert load_competition(tmp_path / "out-zipped").classes == ["cat", "dog"]


def test_folders_of_class_folders_are_read_as_their_classes(tmp_path, caplog):
    """LC25000 (Lung and Colon Cancer Histopathological Images): colon_image_sets/ of colon_aca/, colon_n/ and
    lung_image_sets/ of three: five classes. They were read as two, colon and lung, without a word. (Subfolders
    of one name in each class stay parts of their class: test_class_folders_with_subfolders_of_one_name_...)"""
    source = tmp_path / "lung_colon_image_set"
    groups = {"colon_image_sets": ["colon_aca", "colon_n"], "lung_image_sets": ["lung_aca", "lung_n", "lung_scc"]}
    for group, labels in groups.items():
        for index, label in enumerate(labels):
            for number in range(5):
                save(source / group / label / f"{label}{number}.jpeg", 10 * index + number)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "PREPARED.json").read_text())["classes"] == [
        "colon_aca", "colon_n", "lung_aca", "lung_n", "lung_scc"]
    assert any("as 5 classes (colon_aca, colon_n, lung_aca, lung_n, ...)" in message for message in caplog.messages)


@pytest.mark.parametrize("masks", ["masks", "lung masks"])
def test_class_folders_of_images_beside_masks_read_only_the_images(masks, tmp_path, caplog):
    """COVID-19 Radiography Database: COVID/images/ and COVID/masks/ (COVID-QU-Ex: "lung masks/"), per class. It
    was refused as versions of one dataset, and told to pass COVID/ alone, which would have made images and masks
    the classes."""
    source = tmp_path / "covid"
    root = source / "COVID-19_Radiography_Dataset"
    for index, label in enumerate(("COVID", "Normal", "Viral Pneumonia")):
        for number in range(5):
            save(root / label / "images" / f"{label}-{number}.png", 10 * index + number)
            save(root / label / masks / f"{label}-{number}.png", 200)
        (root / f"{label}.metadata.xlsx").write_bytes(b"PK")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert f"data: reading each class's images/ (left out {masks} beside it)" in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["COVID", "Normal", "Viral Pneumonia"]
    assert len(competition.x_train) + len(competition.x_test) == 15
    assert 200 not in competition.x_train[:, 0, 0, 0] and 200 not in competition.x_test[:, 0, 0, 0]


def write_food(source: Path, extra_lines: str = "") -> None:
    """Food-101 as Kaggle shares it: food-101/food-101/images/<class>/<number>.jpg (numbers repeat across classes
    here), meta/train.txt and test.txt of <class>/<number>, and other text files."""
    root = source / "food-101" / "food-101"
    for label, value in (("apple_pie", 10), ("caesar_salad", 20)):
        for number in range(5):
            save(root / "images" / label / f"{100 + number}.jpg", value + number)
    (root / "meta").mkdir()
    (root / "meta" / "train.txt").write_text("".join(f"{label}/{100 + number}\n" for label in ("apple_pie", "caesar_salad")
                                                     for number in range(3)))
    (root / "meta" / "test.txt").write_text("apple_pie/103\n./apple_pie/104.jpg\n/content/food/images/caesar_salad/104\n"
                                            + extra_lines)
    (root / "meta" / "classes.txt").write_text("apple_pie\ncaesar_salad\n")
    (root / "meta" / "test.json").write_text(json.dumps({"apple_pie": ["apple_pie/100"]}))
    (root / "README.txt").write_text("Food-101: train.txt and test.txt list the split\n")


def test_the_dataset_s_own_split_lists_choose_its_test_set(tmp_path, caplog):
    source = tmp_path / "food-101"
    write_food(source)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert ("data: the dataset's own split from food-101/food-101/meta/test.txt, food-101/food-101/meta/train.txt: "
            "6 training and 3 test images") in caplog.messages
    assert "data: left out 1 image(s) that no split list names" in caplog.messages  # caesar_salad/103
    competition = load_competition(tmp_path / "out")
    truth = answer_key_labels(competition)
    tested = {int(image[0, 0, 0]): competition.classes[label] for image, label in
              zip(competition.x_test, truth, strict=True)}
    assert tested == {13: "apple_pie", 14: "apple_pie", 24: "caesar_salad"}
    assert sorted(int(image[0, 0, 0]) for image in competition.x_train) == [10, 11, 12, 20, 21, 22]
    marker = json.loads((tmp_path / "out" / "PREPARED.json").read_text())
    assert marker["held_out_fraction"] is None and [Path(path).name for path in marker["split_lists"]] == \
        ["test.txt", "train.txt"]


def linked_answers(out: Path) -> dict[Path, str]:
    """The written competition's test images, as the dataset's files they link to, and their answers."""
    with open(out / "solution.csv", newline="") as handle:
        return {Path(os.readlink(out / "test" / row["id"])): row["label"] for row in csv.DictReader(handle)}


def write_dtd(source: Path, partitions: int = 3) -> dict[int, dict[str, list[str]]]:
    """The Describable Textures Dataset: dtd/images/<class>/<class>_<n>.jpg and labels/train<k>.txt, val<k>.txt,
    test<k>.txt for ten partitions, each a whole split of the same images (``partitions`` of them here). Returns
    partition -> split -> image paths."""
    names = [f"{texture}/{texture}_{number:04d}.jpg" for texture in ("banded", "braided") for number in range(1, 7)]
    for value, name in enumerate(names, start=1):
        save(source / "dtd" / "images" / name, value)
    lists = {}
    for partition in range(1, partitions + 1):
        order = names[partition:] + names[:partition]  # each partition tests other images
        lists[partition] = {"train": order[0::3], "val": order[1::3], "test": order[2::3]}
        for split, listed in lists[partition].items():
            (source / "dtd" / "labels").mkdir(parents=True, exist_ok=True)
            (source / "dtd" / "labels" / f"{split}{partition}.txt").write_text("\n".join(listed) + "\n")
    (source / "dtd" / "labels" / "labels_joint_anno.txt").write_text(
        "".join(f"{name} {name.split('/')[0]}\n" for name in names))
    return lists


def test_numbered_partitions_of_split_lists_use_the_first(tmp_path, caplog):
    """DTD ships ten partitions (train1.txt ... test10.txt), SUN397 ten (Training_01.txt ... Testing_10.txt): read
    together, an image was in a train and a test list and the dataset was refused. The first partition chooses the
    split, as TensorFlow Datasets' default and published results do; lists without a number are read as before."""
    source = tmp_path / "dtd"
    lists = write_dtd(source, partitions=10)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert "data: the split lists number 10 partitions of the dataset; partition 1 chooses the test set (left out: " \
           "dtd/labels/test2.txt, dtd/labels/train2.txt, dtd/labels/val2.txt and 24 more)" in caplog.messages
    tested = linked_answers(tmp_path / "out")
    assert sorted(path.relative_to(source / "dtd" / "images").as_posix() for path in tested) == sorted(lists[1]["test"])
    assert all(label == path.parent.name for path, label in tested.items())
    marker = json.loads((tmp_path / "out" / "PREPARED.json").read_text())
    assert [Path(path).name for path in marker["split_lists"]] == ["test1.txt", "train1.txt", "val1.txt"]


def test_lists_numbered_once_each_are_one_split_not_partitions(tmp_path):
    """train_2017.txt beside test_2018.txt: the numbers are the lists' own, not partitions; both choose the split."""
    source = tmp_path / "dtd"
    lists = write_dtd(source, partitions=1)
    labels = source / "dtd" / "labels"
    (labels / "train1.txt").rename(labels / "train_2017.txt")
    (labels / "test1.txt").rename(labels / "test_2018.txt")
    (labels / "val1.txt").unlink()
    prepare_dataset(source, tmp_path / "out")
    tested = linked_answers(tmp_path / "out")
    assert sorted(path.relative_to(source / "dtd" / "images").as_posix() for path in tested) == sorted(lists[1]["test"])


def test_partitions_numbered_from_zero_and_padded_use_the_lowest(tmp_path):
    """Training_00.txt / Testing_00.txt beside Training_01.txt ...: the lowest number, read as a number (01 is 1)."""
    source = tmp_path / "sun"
    names = [f"a/abbey/sun_{number}.jpg" for number in range(6)] + [f"b/bakery/shop/sun_{n}.jpg" for n in range(6)]
    for value, name in enumerate(names, start=1):
        save(source / "SUN397" / name, value)
    for partition in range(3):
        order = names[partition:] + names[:partition]
        (source / "Partitions").mkdir(exist_ok=True)
        (source / "Partitions" / f"Training_{partition:02d}.txt").write_text("".join(f"/{n}\n" for n in order[0::2]))
        (source / "Partitions" / f"Testing_{partition:02d}.txt").write_text("".join(f"/{n}\n" for n in order[1::2]))
    prepare_dataset(source, tmp_path / "out")
    tested = linked_answers(tmp_path / "out")
    assert sorted(path.relative_to(source / "SUN397").as_posix() for path in tested) == sorted(names[1::2])
    # SUN397 files its classes under their initials: the classes are abbey and bakery's shop, not a and b
    assert {label for label in tested.values()} == {"abbey", "bakery shop"}


def test_split_lists_named_in_camel_case_choose_the_test_set(tmp_path):
    """MIT Indoor-67 (Kaggle's copy): TrainImages.txt and TestImages.txt beside indoorCVPR_09/Images/<class>/; the
    lists were not read as split lists and a random share was held out."""
    source = tmp_path / "indoor"
    names = [f"{scene}/img_{number}.jpg" for scene in ("bakery", "kitchen") for number in range(5)]
    for value, name in enumerate(names, start=1):
        save(source / "indoorCVPR_09" / "Images" / name, value)
    (source / "TrainImages.txt").write_text("\n".join(names[0:3] + names[5:8]) + "\n")
    (source / "TestImages.txt").write_text("\n".join(names[3:5] + names[8:10]) + "\n")
    prepare_dataset(source, tmp_path / "out")
    tested = linked_answers(tmp_path / "out")
    assert sorted(f"{path.parent.name}/{path.name}" for path in tested) == sorted(names[3:5] + names[8:10])
    assert json.loads((tmp_path / "out" / "PREPARED.json").read_text())["held_out_fraction"] is None


def test_class_folders_filed_under_their_initials_are_the_classes(tmp_path, caplog):
    """SUN397 and Places365 keep a folder per letter (a/abbey/, c/church/indoor/, c/church/outdoor/): read as 26
    classes of letters before, without a word. A class folder holding folders of images only is a class per
    folder; letters holding images, or folders not beginning with the letter, are classes as before."""
    source = tmp_path / "sun"
    classes = {"a/abbey": 10, "a/airport_terminal": 20, "c/church/indoor": 30, "c/church/outdoor": 40, "z/zen_garden": 50}
    for folder, value in classes.items():
        for number in range(3):
            save(source / "SUN397" / folder / f"sun_{value + number}.jpg", value + number)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", test_fraction=0.34)
    assert "data: reading a, c, z as an index by initial of 5 classes (abbey, airport_terminal, church indoor, ...)" \
        in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["abbey", "airport_terminal", "church indoor", "church outdoor", "zen_garden"]
    value_of = dict(zip(competition.classes, classes.values(), strict=True))  # both in name order
    truth = answer_key_labels(competition)
    assert all(int(image[0, 0, 0]) // 10 * 10 == value_of[competition.classes[label]]
               for image, label in zip(competition.x_test, truth, strict=True))


@pytest.mark.parametrize("case", ["folder_not_beginning_with_its_letter", "images_in_a_letter"])
def test_single_letter_class_folders_that_are_no_index_stay_classes(case, tmp_path):
    """Sign language letters (A/, B/ of images) are classes; so are letters holding folders named otherwise."""
    source = tmp_path / "letters"
    for letter, value in (("A", 10), ("B", 20)):
        for number in range(3):
            inner = "hand" if case == "folder_not_beginning_with_its_letter" and letter == "B" else f"{letter.lower()}_hand"
            save(source / letter / inner / f"{number}.jpg", value + number)
            if case == "images_in_a_letter":
                save(source / letter / f"x{number}.jpg", value + number)
    prepare_dataset(source, tmp_path / "out", test_fraction=0.34)
    assert load_competition(tmp_path / "out").classes == ["A", "B"]


def test_a_class_folder_whose_images_are_named_two_ways_is_a_class_beside_the_others(tmp_path):
    """dog/ of dog_1.jpg and puppy_2.jpg beside cat/: the names hold two labels, as Oxford-IIIT Pet's images/ does,
    but the folders beside it hold images of their own, so every folder is a class (dog/ was read alone, its names
    the classes, and cat/ left out)."""
    source = tmp_path / "pets"
    for number in range(3):
        save(source / "photos" / "cat" / f"cat_{number}.jpg", 10)
        save(source / "photos" / "dog" / f"dog_{number}.jpg", 20)
        save(source / "photos" / "dog" / f"puppy_{number}.jpg", 20)
    prepare_dataset(source, tmp_path / "out", test_fraction=0.34)
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["cat", "dog"] and len(competition.x_train) + len(competition.x_test) == 9


def write_cub(source: Path) -> dict[str, str]:
    """CUB-200-2011 as it ships: images/<number>.<class>/<image>.jpg, images.txt of "<id> <path>",
    train_test_split.txt of "<id> <1 for training>", and text files of other ids (classes, boxes, labels). Returns
    image name -> its split."""
    root = source / "CUB_200_2011"
    lines, flags, boxes, splits = [], [], [], {}
    for label, value in (("001.Black_footed_Albatross", 10), ("002.Laysan_Albatross", 20)):
        for number in range(1, 6):
            name = f"{label.split('.')[1]}_{number:04d}_{value}.jpg"
            save(root / "images" / label / name, value + number)
            image_id = len(lines) + 1
            lines.append(f"{image_id} {label}/{name}\n")
            flags.append(f"{image_id} {int(number % 2 == 1)}\n")
            boxes.append(f"{image_id} 60.0 27.0 325.0 304.0\n")
            splits[name] = "train" if number % 2 == 1 else "test"
    (root / "images.txt").write_text("".join(lines))
    (root / "train_test_split.txt").write_text("".join(flags))
    (root / "bounding_boxes.txt").write_text("".join(boxes))
    (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    (root / "image_class_labels.txt").write_text("".join(f"{number} {1 + (number > 5)}\n" for number in range(1, 11)))
    (root / "parts").mkdir()
    (root / "parts" / "parts.txt").write_text("1 back\n2 beak\n")
    return splits


def test_cub_s_training_flags_choose_its_test_set_through_its_images_list(tmp_path, caplog):
    source = tmp_path / "cub"
    splits = write_cub(source)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert ("data: the dataset's own split from CUB_200_2011/train_test_split.txt, CUB_200_2011/images.txt: "
            "6 training and 4 test images") in caplog.messages
    with open(tmp_path / "out" / "solution.csv", newline="") as handle:
        tested = {Path(os.readlink(tmp_path / "out" / "test" / row["id"])): row["label"] for row in csv.DictReader(handle)}
    assert {path.name for path in tested} == {name for name, split in splits.items() if split == "test"}
    assert all(label == path.parent.name for path, label in tested.items())
    marker = json.loads((tmp_path / "out" / "PREPARED.json").read_text())
    assert [Path(path).name for path in marker["split_lists"]] == ["train_test_split.txt", "images.txt"]


def test_training_flags_other_than_0_and_1_are_no_split(tmp_path):
    """A file named like both splits whose second fields are not 0 and 1 is some other table: the test set is held
    out at random, as before."""
    source = tmp_path / "cub"
    write_cub(source)
    (source / "CUB_200_2011" / "train_test_split.txt").write_text("".join(f"{n} {n % 3}\n" for n in range(1, 11)))
    prepare_dataset(source, tmp_path / "out", test_fraction=0.2)
    marker = json.loads((tmp_path / "out" / "PREPARED.json").read_text())
    assert marker["held_out_fraction"] == 0.2 and "split_lists" not in marker


def test_split_lists_name_images_by_their_stems_and_only_the_images_read(tmp_path, caplog):
    """Oxford-IIIT Pet: annotations/trainval.txt and test.txt of "Abyssinian_1 1 1 1" (the first word names the
    image) with # comments; annotations/trimaps/ holds PNGs of the same names, which are not the images; list.txt
    is no split; a listed image the download lacks is a warning."""
    source = tmp_path / "oxford-pets"
    for label, value in (("Abyssinian", 1), ("great_pyrenees", 2)):
        for number in range(1, 6):
            save(source / "images" / f"{label}_{number}.jpg", value)
            save(source / "annotations" / "trimaps" / f"{label}_{number}.png", 3)
    header = "#Image CLASS-ID SPECIES BREED ID\n"
    (source / "annotations" / "trainval.txt").write_text(header + "".join(
        f"{label}_{number} {index} 1 1\n" for index, label in enumerate(("Abyssinian", "great_pyrenees"), 1)
        for number in range(1, 4)))
    (source / "annotations" / "test.txt").write_text(header + "Abyssinian_4 1 1 1\r\ngreat_pyrenees_4 2 2 2\r\n"
                                                     "great_pyrenees_5 2 2 2\r\nsamoyed_1 3 2 3\r\n")
    (source / "annotations" / "list.txt").write_text(header + "Abyssinian_5 1 1 1\n")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert any("annotations/test.txt: 1 of its 4 lines name no image of the dataset (samoyed_1)" in message
               for message in caplog.messages)
    competition = load_competition(tmp_path / "out")
    assert (len(competition.x_train), len(competition.x_test)) == (6, 3)
    assert 3 not in competition.x_train[:, 0, 0, 0] and 3 not in competition.x_test[:, 0, 0, 0]
    assert sorted(competition.classes[label] for label in answer_key_labels(competition)) == \
        ["Abyssinian", "great_pyrenees", "great_pyrenees"]


def write_tiny_imagenet(source: Path, annotations: str | None = None) -> Path:
    """tiny-imagenet-200/: train/<wnid>/images/<wnid>_<n>.JPEG with <wnid>_boxes.txt beside; val/images/ labelled by
    val/val_annotations.txt ("val_0.JPEG<tab><wnid><tab>box"); test/images/ unlabelled; wnids.txt, words.txt."""
    root = source / "tiny-imagenet-200"
    wnids = ("n01443537", "n01629819")
    for value, wnid in enumerate(wnids, start=1):
        for number in range(4):
            save(root / "train" / wnid / "images" / f"{wnid}_{number}.JPEG", value)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t5\t5\n")
    for number in range(4):
        save(root / "val" / "images" / f"val_{number}.JPEG", 10 + number % 2)
        save(root / "test" / "images" / f"test_{number}.JPEG", 50)
    (root / "val" / "val_annotations.txt").write_text(annotations if annotations is not None else "".join(
        f"val_{number}.JPEG\t{wnids[number % 2]}\t0\t0\t5\t5\n" for number in range(4)))
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("n01443537\tgoldfish\nn01629819\tEuropean fire salamander\n")
    return root


def test_a_split_of_unlabelled_images_is_labelled_by_its_labels_list(tmp_path, caplog):
    """Tiny ImageNet: val/images/ was read as a class named "images" (and test/images/ as its test set)."""
    source = tmp_path / "tiny"
    write_tiny_imagenet(source)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    assert "data: val labelled by val_annotations.txt" in caplog.messages
    assert sum("left out 1 file(s) that are not images" in message for message in caplog.messages) == 2
    assert "data: left out test (no class folders, no labels in its file names: unlabelled)" in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["n01443537", "n01629819"]
    images = np.concatenate([competition.x_train, competition.x_test])
    labels = np.concatenate([competition.y_train, answer_key_labels(competition)])
    assert sorted(int(image[0, 0, 0]) for image in images) == [1] * 4 + [2] * 4 + [10, 10, 11, 11]
    assert all((int(image[0, 0, 0]) - 1) % 9 % 2 == label for image, label in zip(images, labels, strict=True))
    # A test split labelled by its list is the test set.
    labelled_test = tmp_path / "labelled-test"
    root = write_tiny_imagenet(labelled_test)
    # FGVC-Aircraft's lists: the name, then the label, which may hold spaces.
    (root / "test" / "labels.txt").write_text("".join(f"val_{number} {('n01443537', 'n01629819 x')[number % 2]}\n"
                                                      for number in range(4)))
    (root / "train" / "n01629819").rename(root / "train" / "n01629819 x")
    for number in range(4):
        (root / "test" / "images" / f"test_{number}.JPEG").rename(root / "test" / "images" / f"val_{number}.JPEG")
    shutil.rmtree(root / "val")
    prepare_dataset(labelled_test, tmp_path / "out-test")
    competition = load_competition(tmp_path / "out-test")
    assert competition.classes == ["n01443537", "n01629819 x"] and len(competition.x_test) == 4
    assert sorted(competition.classes[label] for label in answer_key_labels(competition)) == \
        ["n01443537", "n01443537", "n01629819 x", "n01629819 x"]


def test_a_split_with_a_text_file_per_image_is_not_labelled_by_them(tmp_path, caplog):
    """YOLO's layout keeps a boxes file beside each image (test/1.jpg, test/1.txt "0 0.5 0.5 0.2 0.2"): no labels
    list, and trying each would list the folder once per file."""
    source = tmp_path / "boxes"
    for label, value in (("cat", 1), ("dog", 2)):
        for number in range(4):
            save(source / "train" / label / f"{number}.png", value)
    for number in range(12):
        save(source / "test" / f"{number}.jpg", 9)
        (source / "test" / f"{number}.txt").write_text(f"{number}.jpg cat\n")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    assert "data: left out test (no class folders, no labels in its file names: unlabelled)" in caplog.messages


def write_fgvc_aircraft(source: Path) -> Path:
    """fgvc-aircraft-2013b/data/images/<id>.jpg (no labels in folders or names) beside labels lists of two kinds
    for each split (images_variant_train.txt: "1000001 707-320"; images_family_*.txt: "1000001 Boeing 707"),
    trainval repeating train and val, and images_<split>.txt of names only. Returns data/."""
    root = source / "fgvc-aircraft-2013b" / "data"
    families = {"707-320": "Boeing 707", "F/A-18": "F/A-18"}
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for variant_number, variant in enumerate(families):
        for number in range(6):
            name = f"{1000000 + 10 * variant_number + number}"
            save(root / "images" / f"{name}.jpg", 10 * variant_number + number)
            rows[("train", "val", "test")[number % 3]].append((name, variant))
    rows["trainval"] = rows["train"] + rows["val"]
    for split, listed in rows.items():
        (root / f"images_variant_{split}.txt").write_text("".join(f"{name} {variant}\n" for name, variant in listed))
        (root / f"images_family_{split}.txt").write_text("".join(f"{name} {families[variant]}\n"
                                                                 for name, variant in listed))
        (root / f"images_{split}.txt").write_text("".join(f"{name}\n" for name, _ in listed))
    return root


def test_labels_lists_beside_a_folder_of_unlabelled_images_label_and_split_it(tmp_path):
    """FGVC-Aircraft was refused as one class, "images"; its variant lists label the images and say the split."""
    source = tmp_path / "fgvc"
    write_fgvc_aircraft(source)
    prepare_dataset(source, tmp_path / "variant", label_column="variant")
    competition = load_competition(tmp_path / "variant")
    assert competition.layout == "images" and competition.classes == ["707-320", "F/A-18"]
    assert (len(competition.x_train), len(competition.x_test)) == (8, 4)  # trainval's repeats counted once
    assert sorted(int(image[0, 0, 0]) for image in competition.x_test) == [2, 5, 12, 15]
    prepare_dataset(source, tmp_path / "family", label_column="family")
    assert load_competition(tmp_path / "family").classes == ["Boeing 707", "F/A-18"]


def _labels_lists_of_two_kinds(source: Path):
    return write_fgvc_aircraft(source), r"labels lists of 2 kinds \(images_family, images_variant\); name one with"


def _labels_lists_naming_an_image_train_and_test(source: Path):
    root = write_fgvc_aircraft(source)
    for kind in ("variant", "family"):
        (root / f"images_{kind}_test.txt").unlink()
    (root / "images_variant_test.txt").write_text("1000002 707-320\n1000000 707-320\n")
    return root / "images_variant_train.txt", r"1000000.jpg is train '707-320' here but test '707-320' in"


def test_text_files_named_like_splits_that_list_no_images_change_nothing(tmp_path, caplog):
    source = tmp_path / "pets"
    for label, value in (("cat", 1), ("dog", 2)):
        for number in range(5):
            save(source / label / f"{number}.png", value)
    (source / "test.txt").write_text("how the photos were taken\nby whom\n")
    (source / "train.txt").write_text("")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", test_fraction=0.4)
    assert "data: left out test.txt (named like a split, but its lines do not name the dataset's images)" in \
        caplog.messages
    assert json.loads((tmp_path / "out" / "PREPARED.json").read_text())["held_out_fraction"] == 0.4
    # A test list alone: the images it does not name train.
    (source / "test.txt").write_text("cat/0.png\ndog/4\n")
    prepare_dataset(source, tmp_path / "out-listed")
    competition = load_competition(tmp_path / "out-listed")
    assert (len(competition.x_train), len(competition.x_test)) == (8, 2)


def test_a_competition_folder_made_a_dataset_gets_a_local_answer_key_and_says_so(tmp_path, caplog):
    """Plant Seedlings as downloaded: train/<class>/, test/ unlabelled, sample_submission.csv."""
    source = tmp_path / "plant-seedlings-classification"
    for label, value in (("Black-grass", 1), ("Charlock", 2)):
        for number in range(5):
            save(source / "train" / label / f"{number}.png", value)
    save(source / "test" / "0021e90e4.png", 9)
    (source / "sample_submission.csv").write_text("file,species\n0021e90e4.png,Charlock\n")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert any(message.startswith(f"data: {source} is a competition folder (sample_submission.csv): make all DATA=")
               for message in caplog.messages)
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["Black-grass", "Charlock"] and 9 not in competition.x_test[:, 0, 0, 0]
    # CIFAR-10's shape (train/<id>.png, trainLabels.csv; test ids that are training ids too), with its answer key.
    cifar = write_image_competition(tmp_path / "cifar-10", count=24, test_count=6, side=4)
    prepare_dataset(cifar, tmp_path / "cifar-out", test_fraction=0.25)
    local, original = load_competition(tmp_path / "cifar-out"), load_competition(cifar)
    assert local.layout == "images" and len(local.x_train) + len(local.x_test) == len(original.x_train) == 24
    # Digit Recognizer's shape: train.csv labelled, test.csv of pixels only (and the answer key beside).
    digits = write_csv_competition(tmp_path / "digit-recognizer", count=40, test_count=10, side=4)
    prepare_dataset(digits, tmp_path / "digits-out", test_fraction=0.25)
    local, original = load_competition(tmp_path / "digits-out"), load_competition(digits)
    assert local.layout == "csv" and len(local.x_train) + len(local.x_test) == len(original.x_train) == 40


def test_class_folders_named_like_a_split_are_classes_not_splits(tmp_path):
    source = tmp_path / "landscapes"
    for label, value in (("valley", 1), ("contest", 2), ("interval", 3)):
        for number in range(5):
            save(source / label / f"{number}.png", value)
    prepare_dataset(source, tmp_path / "out")
    assert load_competition(tmp_path / "out").classes == ["contest", "interval", "valley"]


def test_class_folders_only_hold_out_a_stratified_seeded_test_set_of_readable_images(tmp_path, caplog):
    source = tmp_path / "PetImages"
    for label, first in (("Cat", 1), ("Dog", 101)):
        for number in range(10):
            save(source / label / f"{number}.png", first + number)
    broken = [source / "Cat" / "666.png", source / "Dog" / "11702.png"]
    for path in broken:
        path.write_bytes(b"")  # as Microsoft's download ships them
    with caplog.at_level(logging.WARNING, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "pets", test_fraction=0.5)
    dropped = [record.getMessage() for record in caplog.records if "left out of the test set" in record.getMessage()]
    prepare_dataset(source, tmp_path / "pets-again", test_fraction=0.5)
    out = tmp_path / "pets"
    assert rows(out / "solution.csv") == rows(tmp_path / "pets-again" / "solution.csv")  # seeded
    answers = [label for _, label in rows(out / "solution.csv")[1:]]
    # Half of each class (11 files), less the unreadable ones that fell on the test side, which are named.
    assert len(answers) + len(dropped) == 12  # round(0.5 x 11) of each class
    assert answers.count("Cat") + answers.count("Dog") == len(answers) and {"Cat", "Dog"} <= set(answers)
    linked = {os.path.realpath(path) for path in (out / "train").rglob("*.png")}
    for path in broken:
        assert (os.path.realpath(path) in linked) != any(str(path) in message for message in dropped)
    competition = load_competition(out, skip_unreadable=True)  # a broken training image is left out on request
    assert len(competition.x_test) == len(answers)
    assert sorted(int(value) for value in competition.x_test[:, 0, 0, 0]) == sorted(
        int(Path(os.readlink(out / "test" / image_id)).stem) + (1 if label == "Cat" else 101)
        for image_id, label in rows(out / "solution.csv")[1:])


def _one_class(source: Path):
    save(source / "Cat" / "1.png", 1)
    save(source / "Cat" / "2.png", 2)
    return source, "at least two classes with images"


def _one_image_per_class(source: Path):
    save(source / "Cat" / "1.png", 1)
    save(source / "Dog" / "1.png", 2)
    return source, "no class has two images, so no test image can be held out"


def _names_apart_only_in_their_numbers(source: Path):
    """Chinese MNIST: data/data/input_<suite>_<sample>_<code>.jpg beside chinese_mnist.csv, whose columns make the
    names but none holds one. It was read as classes input_1_1, input_1_2, ... (suite and sample) without a word."""
    rows = ["suite_id,sample_id,code,value,character"]
    for suite in (1, 2):
        for sample in (1, 2):
            for code, value in ((1, 0), (2, 1)):
                save(source / "data" / "data" / f"input_{suite}_{sample}_{code}.jpg", code)
                rows.append(f"{suite},{sample},{code},{value},{'零一'[value]}")
    (source / "chinese_mnist.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return source / "data" / "data", "no class folders"


def _test_class_unknown(source: Path):
    for split in ("train", "test"):
        save(source / split / "cat" / "1.png", 1)
        save(source / split / "dog" / "1.png", 2)
    save(source / "test" / "horse" / "1.png", 3)
    return source / "test", "class 'horse' has no training images"


def _test_split_only(source: Path):
    save(source / "test" / "cat" / "1.png", 1)
    return source, r"a test split \(test\) but no training split"


def _split_without_class_folders(source: Path):
    save(source / "train" / "1.png", 1)
    save(source / "test" / "cat" / "1.png", 1)
    return source, r"a test split \(test\) but no training split"


def _no_split_with_class_folders(source: Path):
    save(source / "train" / "1.png", 1)
    save(source / "test" / "1.png", 1)
    return source, "its split folders hold no class folders"


def write_pixel_table(path: Path, labels, first_value: int, header=True, pixels=16, column="label") -> None:
    """A labelled pixel table (Kaggle's fashion-mnist_train.csv): row i's pixels all ``first_value + i``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join([column, *(f"pixel{k + 1}" for k in range(pixels))])] if header else []
    lines += [",".join([str(label), *[str(first_value + row)] * pixels]) for row, label in enumerate(labels)]
    path.write_text("\n".join(lines) + "\n")


def test_labelled_pixel_tables_become_a_pixel_competition_with_a_shuffled_unlabelled_test_csv(tmp_path):
    """Kaggle's Fashion-MNIST dataset: fashion-mnist_train.csv and fashion-mnist_test.csv (label,pixel1..784),
    the idx files beside them; the test table sorted by class, as some are."""
    source = tmp_path / "fashionmnist"
    write_pixel_table(source / "fashion-mnist_train.csv", [0, 1, 2] * 4, 1)
    write_pixel_table(source / "fashion-mnist_test.csv", [0, 0, 1, 1, 2, 2], 101)
    (source / "t10k-labels-idx1-ubyte").write_bytes(b"\0" * 16)
    before = snapshot(source)
    assert prepare_dataset(source, tmp_path / "out")
    assert snapshot(source) == before
    competition = load_competition(tmp_path / "out")
    assert competition.layout == "csv" and competition.classes == ["0", "1", "2"]
    assert sorted(competition.x_train[:, 0, 0, 0]) == list(range(1, 13))
    assert [competition.classes[label] for label in competition.y_train] == ["0", "1", "2"] * 4
    truth = answer_key_labels(competition)
    tested = {int(image[0, 0, 0]): competition.classes[label] for image, label in zip(competition.x_test, truth, strict=True)}
    assert tested == {101: "0", 102: "0", 103: "1", 104: "1", 105: "2", 106: "2"}
    assert list(competition.x_test[:, 0, 0, 0]) != sorted(competition.x_test[:, 0, 0, 0])  # seeded shuffle: 6! orders
    assert rows(tmp_path / "out" / "test.csv")[0] == [f"pixel{k}" for k in range(16)]  # no label column
    assert not prepare_dataset(source, tmp_path / "out")


def test_one_labelled_pixel_table_in_a_lone_folder_has_its_test_set_held_out(tmp_path, caplog):
    source = tmp_path / "mnist"
    write_pixel_table(source / "mnist-in-csv" / "mnist_train.csv", [3, 5] * 10, 1, column="class")
    write_pixel_table(source / "mnist-in-csv" / "mnist_val.csv", [3, 5], 30, column="class")  # a val table trains too
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["3", "5"] and (len(competition.x_train), len(competition.x_test)) == (16, 6)
    truth = [competition.classes[label] for label in answer_key_labels(competition)]
    assert truth.count("3") == truth.count("5") == 3  # stratified
    values = sorted([*competition.x_train[:, 0, 0, 0], *competition.x_test[:, 0, 0, 0]])
    assert values == [*range(1, 21), 30, 31]


def test_a_pixel_table_with_a_split_column_splits_its_rows_by_it(tmp_path, capsys):
    """FER2013 as Kaggle's datasets ship it: fer2013.csv of emotion, pixels (space-separated) and Usage (Training,
    PublicTest, PrivateTest). Its label column is not named like one: asked for, then given."""
    source = tmp_path / "fer2013"
    source.mkdir()
    rows = ["emotion,pixels,Usage"]
    for row in range(12):
        usage = "Training" if row < 8 else ("PublicTest" if row < 10 else "PrivateTest")
        rows.append(f"{row % 3}," + " ".join([str(10 * (row + 1))] * 16) + f",{usage}")
    (source / "fer2013.csv").write_text("\n".join(rows) + "\n")
    refused_in_process(tmp_path, capsys, ["data", "--dataset", source, "--out", tmp_path / "out"],
                       source / "fer2013.csv", "a table of pixels, but its first line names no label column")
    assert prepare_dataset(source, tmp_path / "out", label_column="emotion")
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["0", "1", "2"]
    assert sorted(competition.x_train[:, 0, 0, 0]) == list(range(10, 90, 10))
    truth = answer_key_labels(competition)
    assert {int(image[0, 0, 0]): competition.classes[label] for image, label in
            zip(competition.x_test, truth, strict=True)} == {90: "2", 100: "0", 110: "1", 120: "2"}
    (source / "fer2013.csv").write_text("\n".join([*rows, "1," + " ".join(["50"] * 16) + ",Holdout"]) + "\n")
    with pytest.raises(PipelineError, match="split 'Holdout' in row 14 is not a train, val or test split"):
        prepare_dataset(source, tmp_path / "out-again", label_column="emotion")


def test_a_labels_csv_beside_class_folders_is_not_a_pixel_table(tmp_path, caplog):
    """Paddy Disease as a dataset: train.csv of file names and labels beside train_images/<class>/."""
    source = tmp_path / "paddy"
    for label, value in (("blast", 1), ("normal", 2)):
        for number in range(3):
            save(source / "train_images" / label / f"{number}.png", value)
    (source / "train.csv").write_text("image_id,label,variety,age\n0.png,blast,ADT45,45\n")
    (source / "credits.csv").write_bytes(b"name,role\nJos\xe9,photos\n")  # Latin-1, not a table we can read
    os.mkfifo(source / "listing.csv")  # never waited on
    with caplog.at_level(logging.WARNING, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert load_competition(tmp_path / "out").layout == "folders"
    for name in ("credits.csv", "listing.csv"):
        assert any(message.startswith(f"data: left out {name}, which cannot be read as a table") for message in
                   caplog.messages)


def write_butterflies(source: Path) -> None:
    """Butterfly Image Classification: train/ and test/ of images, Training_set.csv (filename,label, labels with
    spaces and slashes no folder could be named), Testing_set.csv of file names only."""
    labels = ["ADONIS", "RED/WHITE ADMIRAL", "ADONIS", "RED/WHITE ADMIRAL", "ADONIS", "RED/WHITE ADMIRAL"]
    rows = ["filename,label"]
    for number, label in enumerate(labels, start=1):
        save(source / "train" / f"Image_{number}.jpg", number)
        rows.append(f'Image_{number}.jpg,"{label}"')
    (source / "Training_set.csv").write_text("\n".join(rows) + "\n")
    save(source / "test" / "Image_1.jpg", 200)  # the same name as a training image, in test/
    (source / "Testing_set.csv").write_text("filename\nImage_1.jpg\n")


def test_a_csv_labelling_the_images_makes_a_competition_of_the_images_layout(tmp_path, caplog):
    source = tmp_path / "butterflies"
    write_butterflies(source)
    before = snapshot(source)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        assert prepare_dataset(source, tmp_path / "out", test_fraction=0.34)
    assert snapshot(source) == before
    assert "data: left out Testing_set.csv (names images, but holds no labels)" in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.layout == "images" and competition.classes == ["ADONIS", "RED/WHITE ADMIRAL"]
    seen = {int(image[0, 0, 0]): competition.classes[label] for image, label in
            zip(competition.x_train, competition.y_train, strict=True)}
    truth = answer_key_labels(competition)
    seen.update({int(image[0, 0, 0]): competition.classes[label] for image, label in
                 zip(competition.x_test, truth, strict=True)})
    assert seen == {1: "ADONIS", 2: "RED/WHITE ADMIRAL", 3: "ADONIS", 4: "RED/WHITE ADMIRAL", 5: "ADONIS",
                    6: "RED/WHITE ADMIRAL"}  # the unlabelled test/Image_1.jpg (200) is in neither
    assert len(competition.x_test) == 2  # one of each label held out
    assert "data: left out 1 image(s) that no labels table names" in caplog.messages  # test/Image_1.jpg


ISIC_CLASSES = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]


def write_isic(source: Path, marks=None) -> None:
    """ISIC 2019 as it ships: ISIC_2019_Training_Input/<image>.jpg, the ground truth as a column per class
    (image,MEL,NV,...,UNK of 1.0 and 0.0; UNK never marked) and a table of metadata keyed by the same images."""
    rows = []
    for number in range(12):
        name = f"ISIC_{number:07d}"
        save(source / "ISIC_2019_Training_Input" / f"{name}.jpg", 10 * (number % 3 + 1))
        rows.append([name] + [f"{float(column == number % 3):.1f}" for column in range(len(ISIC_CLASSES))])
    for row, values in (marks or {}).items():
        rows[row][1:] = values
    with open(source / "ISIC_2019_Training_GroundTruth.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["image", *ISIC_CLASSES], *rows])
    with open(source / "ISIC_2019_Training_Metadata.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["image", "age_approx", "anatom_site_general", "lesion_id", "sex"],
                                      *[[row[0], 55, "head/neck", f"BCN_{index}", "male"] for index, row in enumerate(rows)]])


def test_a_csv_marking_each_image_s_class_in_a_column_per_class_labels_it(tmp_path, caplog):
    """The class is the column holding the row's 1; the metadata beside it names the images too, but its columns
    are not classes: left out with a line (without the class columns its columns stay a question, CelebA's)."""
    source = tmp_path / "isic"
    write_isic(source)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    assert ("data: left out ISIC_2019_Training_Metadata.csv (other columns about the images) beside "
            "ISIC_2019_Training_GroundTruth.csv's class columns") in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["BCC", "MEL", "NV"]
    truth = answer_key_labels(competition)
    for images, labels in ((competition.x_train, competition.y_train), (competition.x_test, truth)):
        assert [ISIC_CLASSES[int(image[0, 0, 0]) // 10 - 1] for image in images] == \
            [competition.classes[label] for label in labels]
    # A column named like labels beside another of 0 and 1 is the labels, not a class column (image,target,fold).
    table = source / "ISIC_2019_Training_GroundTruth.csv"
    rows = list(csv.reader(table.open(newline="")))
    with open(source / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["image", "target", "fold"]] + [[row[0], row[1][0], number % 2]
                                                                      for number, row in enumerate(rows[1:])])
    table.unlink()
    (source / "ISIC_2019_Training_Metadata.csv").unlink()
    prepare_dataset(source, tmp_path / "out-target", test_fraction=0.25)
    assert load_competition(tmp_path / "out-target").classes == ["0", "1"]
    write_isic(source)
    # One class column named: a binary task (is it a melanoma?), the metadata then has no such column.
    prepare_dataset(source, tmp_path / "out-mel", test_fraction=0.25, label_column="MEL")
    assert load_competition(tmp_path / "out-mel").classes == ["0.0", "1.0"]


def test_a_table_of_several_columns_one_of_them_the_images_folders_leaves_the_class_folders_in_charge(tmp_path,
                                                                                                     caplog):
    """Imagenette as fastai ships it: train/ and val/ of class folders, and noisy_imagenette.csv of path,
    noisy_labels_0, ..._50, is_valid; noisy_labels_0 is each image's folder. It was refused: "which column holds the
    labels?". A table whose columns name no image's folder still asks (HAM10000's part folders are no classes)."""
    source = tmp_path / "imagenette2"
    rows = []
    for split in ("train", "val"):
        for index, wnid in enumerate(("n01440764", "n02102040")):
            for number in range(4):
                name = f"{split}/{wnid}/{wnid}_{number}.JPEG"
                save(source / name, 10 * index + number)
                noisy = [wnid, wnid if number else ("n02102040", "n01440764")[index]]  # 1% of labels changed
                rows.append([name, *noisy, str(split == "val")])
    with open(source / "noisy_imagenette.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["path", "noisy_labels_0", "noisy_labels_1", "is_valid"], *rows])
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", test_fraction=0.25)
    assert "data: noisy_imagenette.csv labels each image with its folder's name; reading the class folders" in \
        caplog.messages
    assert sorted(os.listdir(tmp_path / "out" / "train")) == ["n01440764", "n02102040"]
    with open(source / "noisy_imagenette.csv", newline="") as handle:
        table = list(csv.reader(handle))
    with open(source / "noisy_imagenette.csv", "w", newline="") as handle:  # no column names the folders now
        csv.writer(handle).writerows([table[0]] + [[row[0], row[2], row[2], row[3]] for row in table[1:]])
    with pytest.raises(PipelineError, match="which column holds the labels"):
        prepare_dataset(source, tmp_path / "out-2")


def write_gtsrb(source: Path) -> None:
    """GTSRB as Kaggle ships it: Train/<ClassId>/<...>.png, Test/<n>.png, Train.csv and Test.csv of
    Width,Height,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2,ClassId,Path, and Meta/<ClassId>.png (each sign's pictogram) with
    Meta.csv of Path,ClassId,ShapeId,ColorId,SignId. A pixel value is 10 x the class + the image's number."""
    header = "Width,Height,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2,ClassId,Path\n"
    train, test, meta = [header], [header], ["Path,ClassId,ShapeId,ColorId,SignId\n"]
    for sign in range(3):
        for number in range(4):
            save(source / "Train" / str(sign) / f"{sign:05d}_00000_{number:05d}.png", 10 * sign + number)
            train.append(f"6,7,1,1,5,6,{sign},Train/{sign}/{sign:05d}_00000_{number:05d}.png\n")
            save(source / "Test" / f"{4 * sign + number:05d}.png", 10 * sign + number)
            if number < 3:  # the fourth test image of each sign is in no table: left out
                test.append(f"6,7,1,1,5,6,{sign},Test/{4 * sign + number:05d}.png\n")
        save(source / "Meta" / f"{sign}.png", 200 + sign)
        meta.append(f"Meta/{sign}.png,{sign},{sign % 2},0,1.{sign}\n")
    for name, lines in (("Train.csv", train), ("Test.csv", test), ("Meta.csv", meta)):
        (source / name).write_text("".join(lines))


def test_tables_labelling_by_a_class_id_column_and_paths_label_the_images(tmp_path):
    """GTSRB: the labels' column is ClassId, beside six columns of sizes and boxes (it was refused: "which column
    holds the labels?"), and ClassId's 0, 1, 2 also name Meta/0.png ...: the paths name more images, so they are
    the ids. Test.csv is the test set; each sign's pictogram trains with its class."""
    source = tmp_path / "gtsrb"
    write_gtsrb(source)
    prepare_dataset(source, tmp_path / "out")
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["0", "1", "2"]
    truth = answer_key_labels(competition)
    assert len(competition.x_test) == 9 and all(int(image[0, 0, 0]) // 10 == int(competition.classes[label])
                                                for image, label in zip(competition.x_test, truth, strict=True))
    assert sorted(int(value) for value in competition.x_train[:, 0, 0, 0]) == \
        sorted([10 * sign + number for sign in range(3) for number in range(4)] + [200, 201, 202])


def test_a_labels_csv_naming_images_by_another_image_extension_names_them(tmp_path):
    """A table still saying Image_1.png of images converted to .jpg: it was left out, and the dataset refused as
    one class ("train"). A name with no image extension still names nothing."""
    source = tmp_path / "butterflies"
    write_butterflies(source)
    table = source / "Training_set.csv"
    table.write_text(table.read_text().replace(".jpg", ".png"))
    prepare_dataset(source, tmp_path / "out", test_fraction=0.34)
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["ADONIS", "RED/WHITE ADMIRAL"]
    assert len(competition.x_train) + len(competition.x_test) == 6
    table.write_text(table.read_text().replace(".png", ".txt"))
    with pytest.raises(PipelineError, match="hold no class folders"):
        prepare_dataset(source, tmp_path / "out-2")


def test_class_marks_of_several_tags_beside_class_folders_leave_the_folders_in_charge(tmp_path, caplog):
    """Tom and Jerry Image Classification: folders jerry/, tom/, tom_jerry_0/ (neither), tom_jerry_1/ (both), and
    ground_truth.csv of filename,tom,jerry marking both or neither: the table marks tags, the folders are classes."""
    source = tmp_path / "tom_and_jerry"
    rows = []
    for label, marks, value in (("jerry", (0, 1), 1), ("tom", (1, 0), 2), ("tom_jerry_0", (0, 0), 3),
                                ("tom_jerry_1", (1, 1), 4)):
        for number in range(3):
            save(source / "tom_and_jerry" / label / f"frame{value}{number}.jpg", value)
            rows.append([f"frame{value}{number}.jpg", *marks])
    with open(source / "ground_truth.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["filename", "tom", "jerry"], *rows])
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert any("left out ground_truth.csv (rows marking several classes or none" in message
               for message in caplog.messages)
    assert load_competition(tmp_path / "out").classes == ["jerry", "tom", "tom_jerry_0", "tom_jerry_1"]


def write_styles(source: Path, rows: int) -> None:
    """Fashion Product Images: images/<id>.jpg and styles.csv of id,...,masterCategory,...,productDisplayName, where
    a few names hold a comma, unquoted: one such row here."""
    lines = ["id,gender,masterCategory,articleType,productDisplayName"]
    for number in range(rows):
        save(source / "images" / f"{1000 + number}.jpg", number % 3 + 1)
        name = "Puma Men, Black Shoes" if number == 5 else "Turtle Check Men Navy Blue Shirt"
        lines.append(f"{1000 + number},Men,{('Apparel', 'Footwear', 'Accessories')[number % 3]},Shirts,{name}")
    (source / "styles.csv").write_text("\n".join(lines) + "\n")


def test_a_labels_csv_s_few_rows_of_more_fields_than_its_header_are_left_out_with_a_warning(tmp_path, caplog):
    source = tmp_path / "fashion-product-images"
    write_styles(source, 120)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", label_column="masterCategory")
    assert any("styles.csv: left out 1 row(s) of more fields than its header (line 7: expected 5 fields, saw 6)"
               in message for message in caplog.messages)
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["Accessories", "Apparel", "Footwear"]
    assert len(competition.x_train) + len(competition.x_test) == 119


def test_a_labels_csv_without_a_header_line_keeps_its_first_row(tmp_path, caplog):
    """Image_1.jpg,ADONIS on the first line was taken for the header: Image_1.jpg was left out without a word."""
    source = tmp_path / "butterflies"
    write_butterflies(source)
    table = source / "Training_set.csv"
    table.write_text(table.read_text().split("\n", 1)[1])
    prepare_dataset(source, tmp_path / "out", test_fraction=0.34)
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["ADONIS", "RED/WHITE ADMIRAL"]
    assert len(competition.x_train) + len(competition.x_test) == 6
    # A first line of header words stays a header even where an image has that name.
    save(source / "train" / "label.jpg", 99)
    table.write_text("filename,label\n" + table.read_text())
    prepare_dataset(source, tmp_path / "out-header", test_fraction=0.34)
    assert len(load_competition(tmp_path / "out-header").x_train) == 4


def test_a_labelled_test_table_is_the_test_set_and_ids_may_be_paths_from_a_notebook(tmp_path):
    source = tmp_path / "butterflies"
    write_butterflies(source)
    (source / "Testing_set.csv").write_text("file,class\n../input/butterflies/test/Image_1.jpg,ADONIS\n")
    prepare_dataset(source, tmp_path / "out")
    competition = load_competition(tmp_path / "out")
    assert len(competition.x_train) == 6 and competition.x_test[:, 0, 0, 0].tolist() == [200]
    assert [competition.classes[label] for label in answer_key_labels(competition)] == ["ADONIS"]


def test_a_csv_that_repeats_the_class_folders_leaves_them_and_their_splits_in_charge(tmp_path, caplog):
    """100 Sports Image Classification: train/, valid/, test/ class trees and sports.csv of every image's path,
    label (its folder's name) and split, beside a model file."""
    source = tmp_path / "sports"
    rows = ["class id,filepaths,labels,data set"]
    for split, count in (("train", 4), ("valid", 1), ("test", 2)):
        for number, label in enumerate(("air hockey", "archery")):
            for index in range(count):
                save(source / split / label / f"{index}.jpg", 10 * number + index)
                rows.append(f"{number},{split}/{label}/{index}.jpg,{label},{split}")
    (source / "sports.csv").write_text("\n".join(rows) + "\n")
    (source / "EfficientNetB0-100-(224 X 224)- 98.40.h5").write_bytes(b"\x89HDF")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out")
    assert "data: sports.csv labels each image with its folder's name; reading the class folders" in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.layout == "folders" and competition.classes == ["air hockey", "archery"]
    assert (len(competition.x_train), len(competition.x_test)) == (10, 4)  # the dataset's own test split


def test_a_metadata_csv_keyed_by_names_without_extension_takes_its_label_column_by_name(tmp_path, capsys):
    """HAM10000: images in two part folders, HAM10000_metadata.csv keyed by image_id (no extension), labels in
    dx beside other few-valued columns: which one is the label is asked, then given with --label-column."""
    source = tmp_path / "ham10000"
    rows = ["lesion_id,image_id,dx,dx_type,sex"]
    for number in range(8):
        save(source / f"HAM10000_images_part_{number % 2 + 1}" / f"ISIC_{number:07d}.jpg", number + 1)
        rows.append(f"HAM_{number // 2},ISIC_{number:07d},{'nv' if number % 2 else 'mel'},histo,{'male' if number < 4 else 'female'}")
    (source / "HAM10000_metadata.csv").write_text("\n".join(rows) + "\n")
    refused_in_process(tmp_path, capsys, ["data", "--dataset", source, "--out", tmp_path / "out"],
                       source / "HAM10000_metadata.csv",
                       r"which column holds the labels\? lesion_id, dx, dx_type, sex; name it with LABEL_COLUMN=")
    refused_in_process(tmp_path, capsys, ["data", "--dataset", source, "--out", tmp_path / "out", "--label-column",
                                          "diagnosis"], "--label-column 'diagnosis'",
                       "no CSV of the dataset that names its images has it")
    assert prepare_dataset(source, tmp_path / "out", label_column="DX", test_fraction=0.25)
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["mel", "nv"]
    labels = {int(image[0, 0, 0]): competition.classes[label] for image, label in
              zip(competition.x_train, competition.y_train, strict=True)}
    assert labels == {value: "nv" if (value - 1) % 2 else "mel" for value in labels} and len(labels) == 6


def test_tables_without_the_label_column_are_other_tables(tmp_path, caplog):
    """CelebA: list_attr_celeba.csv (image_id and 40 attributes of -1/1) beside list_eval_partition.csv
    (image_id, partition): LABEL_COLUMN=Smiling picks the attribute, the partitions are left out, with a line;
    without it, the attributes are asked for, and two tables labelling one image would be refused."""
    source = tmp_path / "celeba"
    attributes, partitions = ["image_id,Male,Smiling,Young"], ["image_id,partition"]
    for number in range(1, 9):
        save(source / "img_align_celeba" / "img_align_celeba" / f"{number:06d}.jpg", number)
        attributes.append(f"{number:06d}.jpg,1,{1 if number % 2 else -1},-1")
        partitions.append(f"{number:06d}.jpg,{number % 3}")
    (source / "list_attr_celeba.csv").write_text("\n".join(attributes) + "\n")
    (source / "list_eval_partition.csv").write_text("\n".join(partitions) + "\n")
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.data"):
        prepare_dataset(source, tmp_path / "out", label_column="Smiling", test_fraction=0.25)
    assert "data: left out list_eval_partition.csv (names images, but holds no column 'Smiling')" in caplog.messages
    competition = load_competition(tmp_path / "out")
    assert competition.classes == ["-1", "1"] and len(competition.x_train) + len(competition.x_test) == 8
    (source / "list_attr_celeba.csv").write_text("\n".join(row.rsplit(",", 2)[0] for row in attributes) + "\n")
    with pytest.raises(PipelineError, match=r"row 2: 000001.jpg is labelled again \(list_attr_celeba.csv row 2"):
        prepare_dataset(source, tmp_path / "out-again")


def _labels_csv_naming_a_missing_image(source: Path):
    write_butterflies(source)
    with open(source / "Training_set.csv", "a") as table:
        table.write("Image_99.jpg,ADONIS\n")
    return source / "Training_set.csv", "row 8: filename 'Image_99.jpg' names no image of the dataset"


def _labels_csv_with_an_empty_label(source: Path):
    write_butterflies(source)
    with open(source / "Training_set.csv", "a") as table:
        table.write("Image_1.jpg,\n")
    return source / "Training_set.csv", "row 8: no label in column 'label'"


def _class_columns_marking_two_classes(source: Path):
    write_isic(source, marks={4: ["1.0", "1.0"] + ["0.0"] * 7})
    return source / "ISIC_2019_Training_GroundTruth.csv", (r"row 6 \(MEL=1.0, NV=1.0, BCC=0.0, .*\) does not mark "
                                                          r"exactly one class")


def _metadata_without_class_columns(source: Path):
    """Without the ground truth, the metadata's columns are a question, as before."""
    write_isic(source)
    (source / "ISIC_2019_Training_GroundTruth.csv").unlink()
    return source / "ISIC_2019_Training_Metadata.csv", "which column holds the labels"


def _labels_csv_naming_an_ambiguous_image(source: Path):
    write_butterflies(source)
    save(source / "val" / "Image_2.jpg", 50)
    return source / "Training_set.csv", "row 3: filename 'Image_2.jpg' names 2 images"


def _image_in_both_split_lists(source: Path):
    write_food(source, "caesar_salad/100\n")
    return (source / "food-101" / "food-101" / "meta" / "train.txt",
            r"line 4: 100.jpg is listed in both the train and the test split \(.*test.txt: line 4\)")


def _image_in_both_lists_of_the_first_partition(source: Path):
    """Partitions after the first are left out; within the first, an image in a train and a test list is still one
    line."""
    lists = write_dtd(source)
    with open(source / "dtd" / "labels" / "test1.txt", "a") as handle:
        handle.write(lists[1]["train"][0] + "\n")
    return source / "dtd" / "labels" / "train1.txt", (rf"line 1: {Path(lists[1]['train'][0]).name} is listed in both "
                                                      r"the train and the test split \(.*test1.txt: line 5\)")


def _datasets_side_by_side(source: Path):
    """Blood Cell Images as it downloads: dataset-master/ (JPEGImages/ and a table for detection) beside
    dataset2-master/dataset2-master/images/TRAIN/<class>/: read as two classes, one per dataset, before."""
    for label, value in (("EOSINOPHIL", 1), ("LYMPHOCYTE", 2)):
        for split in ("TRAIN", "TEST"):
            save(source / "dataset2-master" / "dataset2-master" / "images" / split / label / f"_0_{value}.jpeg", value)
    for number in range(3):
        save(source / "dataset-master" / "dataset-master" / "JPEGImages" / f"BloodImage_{number:05d}.jpg", number)
    return source, (r"dataset-master, dataset2-master are not classes but datasets "
                    r"\(dataset2-master/dataset2-master/images/TEST is a split of one\); pass one of them")


def _a_copy_of_the_dataset_beside_it(source: Path):
    """Real and Fake Face Detection as it downloads: real_and_fake_face/ and, one folder down in
    real_and_fake_face_detection/, the same again: they were read as two classes, one per copy."""
    for copy in (source / "real_and_fake_face", source / "real_and_fake_face_detection" / "real_and_fake_face"):
        for label, value in (("training_fake", 1), ("training_real", 2)):
            save(copy / label / f"{label[9:]}_1.jpg", value)
    return source, (r"real_and_fake_face, real_and_fake_face_detection are not classes but datasets "
                    r"\(real_and_fake_face_detection/real_and_fake_face is a copy of real_and_fake_face/\)")


def _labels_csv_of_many_malformed_rows(source: Path):
    """More than 1% of the rows malformed: the table cannot be read, and the line says so (the warning that said it
    was dropped with the stage: "no CSV ... has it" alone sent the user looking for the column)."""
    write_styles(source, 30)
    return "--label-column 'masterCategory'", (r"no CSV of the dataset that names its images has it; styles.csv cannot "
                                               r"be read as a table \(cannot parse CSV .*line 7, saw 6\)\)")


def _images_list_naming_two_images(source: Path):
    write_cub(source)
    root = source / "CUB_200_2011"
    save(root / "images" / "002.Laysan_Albatross" / "Black_footed_Albatross_0001_10.jpg", 5)
    lines = (root / "images.txt").read_text().splitlines(keepends=True)
    (root / "images.txt").write_text("".join(["1 Black_footed_Albatross_0001_10.jpg\n"] + lines[1:]))
    return root / "images.txt", r"'Black_footed_Albatross_0001_10.jpg' \(id 1\) names 2 images"


def _split_list_naming_two_images(source: Path):
    write_food(source, "101\n")
    return source / "food-101" / "food-101" / "meta" / "test.txt", "line 4: '101' names 2 images"


def _labels_list_labelling_an_image_twice(source: Path):
    root = write_tiny_imagenet(source, "val_0.JPEG n01443537\nval_1.JPEG n01629819\nval_0 n01629819\n")
    return root / "val" / "val_annotations.txt", r"line 3: val_0.JPEG is labelled again \(line 1\)"


def _label_column_for_class_folders(source: Path):
    save(source / "cat" / "1.png", 1)
    save(source / "dog" / "1.png", 2)
    return "--label-column 'dx'", "only for a dataset labelled by a CSV"


def _versions_of_one_dataset(source: Path):
    for version, value in (("color", 1), ("grayscale", 2), ("segmented", 3)):
        for label in ("Apple___scab", "Apple___healthy", "Grape___rot"):
            save(source / "plantvillage dataset" / version / label / "1.png", value)
    return source / "plantvillage dataset", ("color, grayscale, segmented each hold the same 3 class folders "
                                             r"\(Apple___healthy, Apple___scab, Grape___rot, ...\): versions of one dataset")


def test_class_folders_with_subfolders_of_one_name_are_still_classes(tmp_path):
    source = tmp_path / "pets"
    for label, value in (("cat", 1), ("dog", 2)):
        for number in range(3):
            save(source / label / "batch1" / f"{number}.png", value)
    prepare_dataset(source, tmp_path / "out")
    assert load_competition(tmp_path / "out").classes == ["cat", "dog"]


def _fifo_named_like_a_pixel_table(source: Path):
    for label, value in (("cat", 1), ("dog", 2)):
        save(source / label / "1.png", value)
    os.mkfifo(source / "mnist_train.csv")  # opened without blocking: refused, never waited on
    os.mkfifo(source / "notes.csv")  # not named like a table of the dataset: left out, with a warning
    return source / "mnist_train.csv", "is a FIFO"


def _pixel_sets_side_by_side(source: Path):
    for variant in ("balanced", "digits"):
        for split in ("train", "test"):
            write_pixel_table(source / f"emnist-{variant}-{split}.csv", [0, 1, 0, 1], 1)
    return source, r"pixel tables of 2 different sets \(emnist-balanced-test.csv, emnist-balanced-train.csv"


def test_pixel_sets_of_one_data_in_several_forms_name_a_folder_holding_one(tmp_path, capsys):
    """FER2013's competition download: fer2013.tar.gz unpacked to fer2013/fer2013.csv (emotion,pixels,Usage) beside
    icml_face_data.csv and train.csv, the same faces in other columns: the folder holding one alone is named."""
    source = tmp_path / "dataset"
    for path in (source / "fer2013" / "fer2013.csv", source / "icml_face_data.csv"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("emotion,pixels,Usage\n0,1 2 3 4,Training\n1,4 3 2 1,PublicTest\n")
    (source / "train.csv").write_text("emotion,pixels\n0,1 2 3 4\n1,4 3 2 1\n")
    refused_in_process(tmp_path, capsys, ["data", "--dataset", source, "--out", tmp_path / "out", "--label-column",
                                          "emotion"], source,
                       r"pixel tables of 3 different sets \(fer2013.csv, icml_face_data.csv, train.csv\); pass a "
                       r"folder holding one of them, such as .*/dataset/fer2013$")


def _pixel_test_table_only(source: Path):
    write_pixel_table(source / "sign_mnist_test.csv", [0, 1, 0, 1], 1)
    return source, r"a test table \(sign_mnist_test.csv\) but no training table"


def _pixel_test_label_unknown(source: Path):
    write_pixel_table(source / "x_train.csv", [0, 1, 0, 1], 1)
    write_pixel_table(source / "x_test.csv", [0, 7], 1)
    return source / "x_test.csv", "class '7' has no training rows"


def _pixel_tables_of_two_sizes(source: Path):
    write_pixel_table(source / "x_train.csv", [0, 1, 0, 1], 1)
    write_pixel_table(source / "x_test.csv", [0, 1], 1, pixels=25)
    return source / "x_test.csv", "25 pixel values per image, but x_train.csv has 16"


def _pixel_table_missing_label(source: Path):
    write_pixel_table(source / "x_train.csv", [0, 1, "", 1], 1)
    return source / "x_train.csv", "missing label in row 4"


def _pixel_table_bad_pixel(source: Path):
    write_pixel_table(source / "x_train.csv", [0, 1, 0, 1], 1)
    with open(source / "x_train.csv", "a") as table:
        table.write("1," + ",".join(["abc"] * 16) + "\n")
    return source / "x_train.csv", "non-numeric pixel value 'abc'"


def _pixel_table_without_header(source: Path):
    write_pixel_table(source / "emnist-digits-train.csv", [0, 1, 0, 1], 1, header=False)
    write_pixel_table(source / "emnist-digits-test.csv", [0, 1], 1, header=False)
    return source / "emnist-digits-test.csv", r"a table without a header line \(its first line is numbers\)"


def _pixel_table_one_label(source: Path):
    write_pixel_table(source / "x_train.csv", [4, 4, 4], 1)
    return source / "x_train.csv", "at least two labels"


@pytest.mark.parametrize("make", [_one_class, _one_image_per_class, _names_apart_only_in_their_numbers,
                                  _test_class_unknown, _test_split_only, _split_without_class_folders,
                                  _no_split_with_class_folders, _pixel_sets_side_by_side, _pixel_test_table_only,
                                  _pixel_test_label_unknown, _pixel_tables_of_two_sizes, _pixel_table_missing_label,
                                  _pixel_table_bad_pixel, _pixel_table_without_header, _pixel_table_one_label,
                                  _labels_csv_naming_a_missing_image, _labels_csv_with_an_empty_label,
                                  _labels_csv_naming_an_ambiguous_image, _class_columns_marking_two_classes,
                                  _metadata_without_class_columns, _versions_of_one_dataset,
                                  _fifo_named_like_a_pixel_table, _image_in_both_split_lists,
                                  _image_in_both_lists_of_the_first_partition,
                                  _split_list_naming_two_images, _images_list_naming_two_images,
                                  _datasets_side_by_side, _a_copy_of_the_dataset_beside_it,
                                  _labels_csv_of_many_malformed_rows,
                                  _labels_list_labelling_an_image_twice,
                                  _labels_lists_of_two_kinds, _labels_lists_naming_an_image_train_and_test],
                         ids=lambda make: make.__name__[1:])
def test_a_dataset_that_cannot_be_a_competition_is_one_line_and_nothing_is_written(make, tmp_path, capsys):
    dataset_refused(make, tmp_path, capsys)


@pytest.mark.parametrize("arguments, named, problem", [
    (["--out", "{source}/inside"], "{source}/inside", "lies inside the dataset folder"),
    (["--out", "{full}"], "{full}", "exists and is not empty"),
    (["--source", "/usr/share/datasets/fashion-mnist"], "--source '/usr/share/datasets/fashion-mnist'", "not with --dataset"),
])
def test_options_that_do_not_fit_a_dataset_are_one_line(arguments, named, problem, tmp_path, capsys):
    source = tmp_path / "dataset"
    _test_class_unknown(source)
    (source / "test" / "horse" / "1.png").unlink()
    (source / "test" / "horse").rmdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine\n")
    fill = {"source": source, "full": tmp_path / "full"}
    arguments = [argument.format(**fill) for argument in arguments]
    refused_in_process(tmp_path, capsys, ["data", "--dataset", source, *arguments], named.format(**fill), problem)


def test_a_label_column_for_a_dataset_without_a_labels_csv_or_without_a_dataset_is_one_line(tmp_path, capsys):
    source = tmp_path / "pets"
    named, problem = _label_column_for_class_folders(source)
    refused_in_process(tmp_path, capsys, ["data", "--dataset", source, "--out", tmp_path / "out", "--label-column",
                                          "dx"], named, problem)
    refused_in_process(tmp_path, capsys, ["data", "--out", tmp_path / "fm", "--label-column", "dx"],
                       "--label-column 'dx'", "only with --dataset")


def test_a_test_fraction_without_a_dataset_or_out_of_range_is_one_line(tmp_path, capsys):
    refused_in_process(tmp_path, capsys, ["data", "--out", tmp_path / "fm", "--test-fraction", "0.3"],
                       "--test-fraction 0.3", "only with --dataset")
    answered = run_in_process("data", "--dataset", tmp_path, "--test-fraction", "1", cwd=tmp_path)
    assert answered.returncode == 2 and answered.stderr.count("\n") == 1, answered.stderr
    assert "argument --test-fraction: must be above 0 and below 1, got 1" in answered.stderr


def test_the_default_output_is_data_slash_its_name_or_beside_it_when_the_dataset_is_there(tmp_path, capsys):
    for where, made in ((tmp_path / "downloads" / "xray", tmp_path / "data" / "xray"),
                        (tmp_path / "data" / "pets", tmp_path / "data" / "pets-competition")):
        for label in ("cat", "dog"):
            for number in range(3):
                save(where / label / f"{number}.png", number)
        answered = run_in_process("data", "--dataset", where, cwd=tmp_path)
        assert answered.returncode == 0, answered.stderr
        assert (made / "PREPARED.json").is_file() and f"next: make all DATA={made.relative_to(tmp_path)}" in answered.stderr


def _zip_of(folder: Path, archive: Path, extra: dict[str, bytes] | None = None) -> Path:
    """``folder``'s files zipped by their paths inside it, as Kaggle's site zips a dataset, plus ``extra`` members."""
    import zipfile

    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(folder).as_posix())
        for name, content in (extra or {}).items():
            bundle.writestr(name, content)
    return archive


def test_the_zip_kaggles_site_downloads_is_unpacked_into_data_and_made_a_competition(tmp_path):
    """Downloaded from the browser, a dataset is ~/Downloads/archive.zip: unpacked into data/archive/ with the
    download's guarantees (the archive only read), then made a competition beside it; a second call changes
    nothing."""
    made = tmp_path / "made"
    write_butterflies(made)
    archive = _zip_of(made, tmp_path / "Downloads" / "archive.zip")
    before = snapshot(tmp_path / "Downloads")
    answered = run_in_process("data", "--dataset", archive, cwd=tmp_path)
    assert answered.returncode == 0, answered.stderr
    assert f"data: unpacked {archive} into data/archive" in answered.stderr
    assert snapshot(tmp_path / "Downloads") == before
    competition = load_competition(tmp_path / "data" / "archive-competition")
    assert competition.classes == ["ADONIS", "RED/WHITE ADMIRAL"]
    unpacked = snapshot(tmp_path / "data")
    again = run_in_process("data", "--dataset", archive, cwd=tmp_path)
    assert again.returncode == 0 and "already prepared: data/archive-competition" in again.stderr
    assert snapshot(tmp_path / "data") == unpacked


def _archive_of_one_class(tmp_path: Path):
    save(tmp_path / "made" / "cat" / "1.png", 1)
    return _zip_of(tmp_path / "made", tmp_path / "archive.zip"), "a dataset needs at least two classes"


def _archive_escaping_its_folder(tmp_path: Path):
    write_butterflies(tmp_path / "made")
    archive = _zip_of(tmp_path / "made", tmp_path / "archive.zip", {"../../escaped.txt": b"x"})
    return archive, "member '../../escaped.txt' would be written outside data/archive"


def _archive_onto_a_users_folder(tmp_path: Path):
    write_butterflies(tmp_path / "made")
    (tmp_path / "data" / "archive").mkdir(parents=True)
    (tmp_path / "data" / "archive" / "mine.txt").write_text("the user's")
    return _zip_of(tmp_path / "made", tmp_path / "archive.zip"), "already here"


def _a_file_that_is_not_a_zip(tmp_path: Path):
    (tmp_path / "archive.zip").write_bytes(b"<html>a sign-in page</html>")
    return tmp_path / "archive.zip", "neither a folder nor a zip archive"


@pytest.mark.parametrize("make", [_archive_of_one_class, _archive_escaping_its_folder, _archive_onto_a_users_folder,
                                  _a_file_that_is_not_a_zip], ids=lambda make: make.__name__[1:])
def test_an_archive_that_cannot_be_a_competition_leaves_nothing_behind(make, tmp_path):
    archive, problem = make(tmp_path)
    before = snapshot(tmp_path)
    answered = run_in_process("data", "--dataset", archive.name, cwd=tmp_path)
    assert answered.returncode == 2, answered.stderr
    assert answered.stderr.count("\n") == 1 and answered.stderr.startswith("error: ") and problem in answered.stderr
    after = snapshot(tmp_path)
    for state in (before, after):  # data/ made and removed again changes the folder's own time, nothing else
        state.pop(str(tmp_path))
    assert after == before
