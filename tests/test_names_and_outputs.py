"""Output folders, file names and options that only fail against the data (a hostile-input sweep, 2026-12-05).

Each refused case: exit 2, exactly one line naming the file or option and the problem, and nothing under the
test's folder changed (test_hostile_data.refused_in_process). Each class has cases beyond the one first seen:

1. output folders   the run store, the submissions' and the report's folder never overlap the data folder;
                    a report deletes only figures it drew; a second submission in one second keeps the first
2. names            a file or folder name that is not UTF-8, anywhere the loaders list; a store name counted
                    in bytes, as the file system counts it
3. ids and columns  two ids naming one image (with and without the extension), in a labels CSV as in the
                    sample; two sample submissions; a label column found by its name or alone, never guessed
4. options vs data  images too small for the network and a subset smaller than the classes are refused
                    before the store is written; a subset that leaves too few images out trains on all
5. class folders    images in a class's subfolders are read (as Keras reads them), links back up once, and
                    macOS zips' __MACOSX/ is never a class
6. rare classes     a class of one image trains, never validated; the search's subset keeps it
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image_competition
from test_hostile_data import refused_in_process
from test_layouts import write_class_folders

from kaggle_pipeline import cli
from kaggle_pipeline.errors import ParameterError
from kaggle_pipeline.report import FIGURES, make_report
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.store import SubmissionStore, atomic_write_json
from kaggle_pipeline.workspace import MAX_NAME_LENGTH, competition_name, open_workspace

pytestmark = pytest.mark.usefixtures("restore_signals")


def small_images(folder: Path, side=4) -> Path:
    return write_image_competition(folder, count=24, test_count=6, side=side)


# 1. Output folders ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage, option, where", [
    ("search", "--models-dir", "parent"),       # models/<name> is the data folder itself
    ("search", "--models-dir", "train"),        # inside it
    ("submit", "--submissions-dir", "parent"),
    ("submit", "--submissions-dir", "test"),
    ("report", "--reports-dir", "parent"),
    ("report", "--reports-dir", "inside"),
])
def test_an_output_folder_overlapping_the_data_is_refused(stage, option, where, tmp_path, capsys):
    folder = small_images(tmp_path / "comp")
    if stage != "search":  # a store with one kept run, beside the data
        workspace = open_workspace(folder, tmp_path / "models")
        atomic_write_json(workspace.store.best_params_path, {"params": TINY_PARAMS, "validation_accuracy": 0.5})
        assert cli.main(["ensemble", "--data", str(folder), "--models-dir", str(tmp_path / "models"), "--n", "1",
                         "--epochs", "1", "--threshold", "0"]) == 0
        capsys.readouterr()
    given = {"parent": tmp_path, "train": folder / "train", "test": folder / "test", "inside": folder}[where]
    arguments = [stage, "--data", folder, "--models-dir", tmp_path / "models", option, given]
    if stage == "search":
        arguments = [stage, "--data", folder, option, given, "--space", "tiny", "--evals", "1"]
    refused_in_process(tmp_path, capsys, arguments, f"{option} '{given}'", "overlaps the data folder")


def test_a_report_deletes_only_the_figures_it_drew(tmp_path, capsys):
    folder = small_images(tmp_path / "comp")
    models = tmp_path / "models"
    assert cli.main(["search", "--data", str(folder), "--models-dir", str(models), "--space", "tiny", "--evals", "1",
                     "--search-epochs", "1"]) == 0
    reports = tmp_path / "reports" / "comp"
    reports.mkdir(parents=True)
    mine = {"screenshot.png": b"\x89PNG mine", "notes.txt": b"mine", "run_accuracy.png": b"an old report's"}
    for name, content in mine.items():
        (reports / name).write_bytes(content)
    make_report(open_workspace(folder, models, read_only=True), tmp_path / "reports", tmp_path / "submissions")
    # No ensemble yet: the run figures are not drawn, so the earlier report's goes; the user's files stay.
    assert not (reports / "run_accuracy.png").exists()
    assert (reports / "screenshot.png").read_bytes() == mine["screenshot.png"]
    assert (reports / "notes.txt").read_bytes() == mine["notes.txt"]
    assert {path.name for path in reports.glob("*.png")} == {"screenshot.png", "search.png", "hyperparameters.png"}
    assert {"search.png", "hyperparameters.png", "run_accuracy.png"} <= set(FIGURES)


def test_submissions_within_one_second_each_keep_their_files(tmp_path):
    submissions = SubmissionStore(tmp_path, "comp")
    now = time.mktime((2026, 12, 5, 20, 0, 0, 0, 0, -1))
    stamps = []
    for _ in range(3):
        stamp = submissions.new_stamp(now)
        submissions.folder.mkdir(exist_ok=True)
        submissions.stamped_csv(stamp).write_text(stamp)
        stamps.append(stamp)
    assert stamps == ["20261205-200000", "20261205-200000-2", "20261205-200000-3"]
    submissions.stamped_json("20261205-200001").write_text("{}")  # a summary alone also holds its stamp
    assert submissions.new_stamp(now + 1) == "20261205-200001-2"


# 2. Names ------------------------------------------------------------------------------------------------
def _rename_bytes(path: Path, name: bytes) -> Path:
    target = os.fsencode(path.parent) + b"/" + name
    os.rename(os.fsencode(path), target)
    return Path(os.fsdecode(target))


@pytest.mark.parametrize("case", ["class-folder", "train-image", "test-image", "csv-beside"])
def test_a_name_that_is_not_utf8_is_one_line_naming_it(case, tmp_path, capsys):
    folder = tmp_path / "plants"
    written = write_class_folders(folder, count=12, test_count=3, side=6)
    if case == "class-folder":
        first = sorted((folder / "train").iterdir())[0]
        _rename_bytes(first, first.name.encode() + b"\xe9")
        named = f"{folder / 'train'}/{first.name}\\xe9"
    elif case == "train-image":
        image = sorted(sorted((folder / "train").iterdir())[0].iterdir())[0]
        _rename_bytes(image, b"caf\xe9.png")
        named = f"{image.parent}/caf\\xe9.png"
    elif case == "test-image":
        name = written["order"][0]
        _rename_bytes(folder / "test" / name, b"\xe9t\xe9.png")
        (folder / "sample_submission.csv").write_bytes(
            (folder / "sample_submission.csv").read_bytes().replace(name.encode(), "été.png".encode()))
        named = f"{folder / 'test'}/\\xe9t\\xe9.png"
    else:
        (Path(os.fsdecode(os.fsencode(folder) + b"/r\xe9sum\xe9.csv"))).write_text("a,b\n")
        named = f"{folder}/r\\xe9sum\\xe9.csv"
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       named, "the name is not valid UTF-8")


def test_a_store_name_is_counted_in_bytes(tmp_path, capsys):
    assert competition_name(tmp_path, "é" * (MAX_NAME_LENGTH // 2)) == "é" * (MAX_NAME_LENGTH // 2)
    with pytest.raises(ParameterError, match=f"{MAX_NAME_LENGTH + 2} bytes in UTF-8"):
        competition_name(tmp_path, "é" * (MAX_NAME_LENGTH // 2 + 1))
    emoji = "😀" * 40  # 40 characters, 160 bytes: the file system's 255 is near once '-full' and stamps are added
    with pytest.raises(ParameterError, match="160 bytes"):
        competition_name(tmp_path, emoji)
    latin1 = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9"))
    latin1.mkdir()
    with pytest.raises(ParameterError, match="not valid UTF-8"):
        competition_name(latin1, None)
    folder = small_images(tmp_path / "comp")
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models",
                                          "--name", "é" * 60], f"--name '{'é' * 20}...' (NAME=)", "120 bytes")


# 3. Ids ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("first, second", [("1", "1.png"), ("1.png", "1"), ("2", "2.png")])
def test_two_training_ids_naming_one_image_are_refused(first, second, tmp_path, capsys):
    folder = small_images(tmp_path / "comp")
    rows = (folder / "trainLabels.csv").read_text().splitlines()
    label = rows[int(first.split(".")[0])].split(",")[1]
    other = "a" if label != "a" else "b"  # the second row gives the image another label
    rows = [row for row in rows if row.split(",")[0] != first.split(".")[0]]
    rows += [f"{first},{label}", f"{second},{other}"]
    (folder / "trainLabels.csv").write_text("\n".join(rows) + "\n")
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / "trainLabels.csv", f"ids '{first}' and '{second}' .* name the same image")


def test_two_test_ids_naming_one_image_are_refused(tmp_path, capsys):
    folder = small_images(tmp_path / "comp")
    sample = folder / "sampleSubmission.csv"
    rows = sample.read_text().splitlines()
    rows[2] = rows[1].replace(",", ".png,", 1)  # 25.png in place of 26: one image twice, one not at all
    sample.write_text("\n".join(rows) + "\n")
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       sample, "ids '25' and '25.png' .* name the same image 25.png")


@pytest.mark.parametrize("second", ["sample_submission.csv", "sample_submission_v2.csv", "SampleSubmission (1).csv",
                                    "sample_submission_stg1.csv"])  # the last: two of stage 1 (a stage 2 is chosen)
def test_two_sample_submissions_are_named_instead_of_one_guessed(second, tmp_path, capsys):
    folder = small_images(tmp_path / "comp")
    (folder / second).write_bytes((folder / "sampleSubmission.csv").read_bytes())
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder, f"more than one sample submission .*{second.replace('(', '.').replace(')', '.')}")


@pytest.mark.parametrize("header, refused", [
    ("id,w,h,target_cls", True), ("id,target_cls,w", True), ("id,target_cls", False), ("id,w,label", False),
    ("id,w,Label", False),
])
def test_a_labels_column_is_found_by_name_or_alone_never_guessed(header, refused, tmp_path, capsys):
    from kaggle_pipeline.data import load_competition

    folder = small_images(tmp_path / "comp")
    rows = (folder / "trainLabels.csv").read_text().splitlines()[1:]
    names = header.split(",")
    label_at = [i for i, name in enumerate(names) if name.lower() in ("label", "target_cls")][0]
    cells = [{**{i: "7" for i in range(1, len(names))}, 0: row.split(",")[0], label_at: row.split(",")[1]} for row in rows]
    (folder / "trainLabels.csv").write_text(header + "\n" + "".join(
        ",".join(cell[i] for i in range(len(names))) + "\n" for cell in cells))
    if refused:
        refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                           folder / "trainLabels.csv", "no column named like the sample's 'label' .* rename the one")
    else:
        assert load_competition(folder).classes == load_competition(small_images(tmp_path / "clean")).classes


# 4. Options against the data -------------------------------------------------------------------------------
@pytest.mark.parametrize("side, stage", [(3, "search"), (1, "search"), (3, "ensemble"), (2, "all")])
def test_images_too_small_for_the_network_are_refused_before_the_store_is_written(side, stage, tmp_path, capsys):
    folder = small_images(tmp_path / "tiny", side=side)
    refused_in_process(tmp_path, capsys, [stage, "--data", folder, "--models-dir", tmp_path / "models"],
                       folder, f"images of {side}x{side} pixels are too small .* --image-size")
    assert not (tmp_path / "models").exists()
    workspace = open_workspace(folder, tmp_path / "models", image_size=8, trains=True)  # the way out it names
    assert workspace.competition.image_shape[:2] == (8, 8)


@pytest.mark.parametrize("subset", [1, 2])
def test_a_subset_smaller_than_the_classes_is_refused_before_the_store_is_written(subset, tmp_path, capsys):
    folder = small_images(tmp_path / "comp")  # 3 classes
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models",
                                          "--subset", subset], f"--subset {subset}", "than the 3 classes")
    assert not (tmp_path / "models").exists()


def test_a_subset_leaving_fewer_images_out_than_classes_trains_on_all(tmp_path, capsys):
    # A stratified subset must leave one image of each class out; the quick preset's 12,000 of 12,005 images
    # made scikit-learn refuse the search before this rule.
    folder = small_images(tmp_path / "comp")
    models = tmp_path / "models"
    training = len(open_workspace(folder, models).y_train)
    assert cli.main(["search", "--data", str(folder), "--models-dir", str(models), "--space", "tiny", "--evals", "1",
                     "--search-epochs", "1", "--subset", str(training - 1)]) == 0
    assert f"running 1 more ({training} training images" in capsys.readouterr().err
    trials = json.loads((models / "comp" / "search" / "trials.json").read_text())["trials"]
    assert [trial["result"]["status"] for trial in trials] == ["ok"]


# 5. Class folders as zips and Keras trees leave them --------------------------------------------------------
def _nest(folder: Path, how: str) -> None:
    """Move some training images of the class folders into subfolders (or add macOS zip clutter)."""
    classes = sorted((folder / "train").iterdir())
    if how == "some-in-a-subfolder":
        images = sorted(classes[0].iterdir())
        (classes[0] / "batch 2").mkdir()
        for image in images[: len(images) // 2]:
            image.rename(classes[0] / "batch 2" / image.name)
    elif how == "all-two-levels-down":
        for class_folder in classes:
            inner = class_folder / "a" / "b"
            inner.mkdir(parents=True)
            for image in sorted(class_folder.glob("*.png")):
                image.rename(inner / image.name)
    elif how == "a-link-back-up":
        (classes[0] / "loop").symlink_to(classes[0], target_is_directory=True)
    elif how == "macos-zip":
        (folder / "train" / "__MACOSX" / classes[0].name).mkdir(parents=True)
        (folder / "train" / "__MACOSX" / classes[0].name / "._x.png").write_bytes(b"\0\5\26\7")
        (classes[1] / "__MACOSX").mkdir()


@pytest.mark.parametrize("how", ["some-in-a-subfolder", "all-two-levels-down", "a-link-back-up", "macos-zip"])
def test_images_in_class_subfolders_are_read_like_the_flat_tree(how, tmp_path):
    from kaggle_pipeline.data import load_competition

    write_class_folders(tmp_path / "flat", count=18, test_count=3, side=6)
    reference = load_competition(tmp_path / "flat")
    write_class_folders(tmp_path / "nested", count=18, test_count=3, side=6)
    _nest(tmp_path / "nested", how)
    competition = load_competition(tmp_path / "nested")
    assert competition.layout == "folders" and competition.classes == reference.classes

    def pairs(loaded):  # the same images with the same labels (the order within a class may differ)
        return sorted((int(label), image.tobytes()) for image, label in zip(loaded.x_train, loaded.y_train, strict=True))
    assert pairs(competition) == pairs(reference)
    np.testing.assert_array_equal(competition.x_test, reference.x_test)


# 6. Rare classes ----------------------------------------------------------------------------------------------
def _relabel(folder: Path, labels: dict[str, str]) -> None:
    """trainLabels.csv with the given ids' labels replaced (a new class of one image each)."""
    rows = (folder / "trainLabels.csv").read_text().splitlines()
    rows = [rows[0]] + [f"{row.split(',')[0]},{labels.get(row.split(',')[0], row.split(',')[1])}" for row in rows[1:]]
    (folder / "trainLabels.csv").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("rare", [{"3": "okapi"}, {"3": "okapi", "9": "quagga", "17": "aurochs"}, {"3": "pair", "9": "pair"}])
def test_a_class_with_one_or_two_images_trains_and_the_others_split_as_before(rare, tmp_path, capsys):
    folder = small_images(tmp_path / "comp")
    _relabel(folder, rare)
    workspace = open_workspace(folder, tmp_path / "models")
    classes = workspace.competition.classes
    singles = [classes.index(label) for label in set(rare.values()) if list(rare.values()).count(label) == 1]
    for label in singles:  # its one image trains; it is never validated on
        assert np.count_nonzero(workspace.y_train == label) == 1 and label not in workspace.y_validation
    assert set(np.unique(workspace.y_validation).tolist()) <= set(range(len(classes))) - set(singles)
    # The search's stratified subset takes every image of a class that has one in the training part (a pair
    # leaves one image on each side).
    assert cli.main(["search", "--data", str(folder), "--models-dir", str(tmp_path / "models"), "--space", "tiny",
                     "--evals", "1", "--search-epochs", "1", "--subset", "12"]) == 0
    trials = json.loads((tmp_path / "models" / "comp" / "search" / "trials.json").read_text())["trials"]
    assert [trial["result"]["status"] for trial in trials] == ["ok"]
    assert "running 1 more (12 training images" in capsys.readouterr().err


def test_too_few_classes_with_two_images_to_validate_on_is_one_line(tmp_path, capsys):
    folder = small_images(tmp_path / "comp", side=4)
    rows = (folder / "trainLabels.csv").read_text().splitlines()
    keep = {row.split(",")[0] for row in rows[1:] if row.split(",")[1] == rows[1].split(",")[1]}
    _relabel(folder, {row.split(",")[0]: f"only{row.split(',')[0]}" for row in rows[1:]
                      if row.split(",")[0] not in keep})
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / "trainLabels.csv", "fewer than two classes have more than one training image")


def test_a_leading_tilde_is_the_home_folder_unless_a_file_is_so_named(tmp_path, monkeypatch, capsys):
    """zsh leaves `make all DATA=~/kaggle/x` unexpanded and make passes it on as typed: the command line reads
    `~` as the home folder, for every path option, except where a file named `~...` exists as typed."""
    home = tmp_path / "home"
    write_class_folders(home / "kaggle" / "plants")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    arguments = ["search", "--data", "~/kaggle/plants", "--models-dir", "~/models", "--subset", "1"]
    refused_in_process(tmp_path, capsys, arguments, "--subset 1", "fewer training images per trial than the 3 classes")
    assert cli.user_path("~/kaggle/plants") == home / "kaggle" / "plants"
    assert cli.user_path("~") == home and cli.user_path("plants/~") == Path("plants/~")
    (tmp_path / "~").mkdir()  # a folder really named ~ in the working folder is taken as typed
    assert cli.user_path("~") == Path("~")
    assert cli.user_path("~nobody-such-user/x") == Path("~nobody-such-user/x")  # no such user: as typed
