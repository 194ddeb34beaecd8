"""--skip-unreadable (SKIP_UNREADABLE=1): a few training images that cannot be read (a download cut off, a file
that is not an image; Microsoft's cats-and-dogs photos ship some) are left out instead of stopping the job, each
named, within a limit; the labels stay with their images in every layout of image files, and a store made so
keeps reading its data so. Without the option the first one is the usual one line, which now names the option."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import run_in_process, write_image_competition
from test_hostile_data import refused_in_process
from test_layouts import write_class_folders, write_dogs_vs_cats
from test_tfrecords_layout import example, jpeg, write_records

from kaggle_pipeline.data import load_competition
from kaggle_pipeline.data.images import MAX_UNREADABLE_SHARE
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.workspace import open_workspace

DAMAGES = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "not an image": lambda data: b"<html><body>404 Not Found</body></html>\n",
}
PROBLEMS = {"empty": r"empty: 0 bytes", "truncated": r"truncated|cannot read image", "not an image": r"not a PNG or JPEG"}


def pixels_of(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def write_sixteen_bit_folders(folder: Path, count=30, side=10) -> None:
    """Class folders of 12-bit grey scans in 16-bit PNGs; every image holds the highest value (4095) once, so
    leaving one out does not change the competition's significant bits."""
    from PIL import Image

    rng = np.random.default_rng(3)
    for index in range(count + 6):
        pixels = rng.integers(0, 4096, (side, side), dtype=np.uint16)
        pixels[0, 0] = 4095
        path = folder / ("train" / Path(f"grade{index % 3}") if index < count else Path("test")) / f"{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)  # I;16
    (folder / "sample_submission.csv").write_text(
        "id,label\n" + "".join(f"{index:03d},grade0\n" for index in range(count, count + 6)))


LAYOUTS = {
    "folders": (lambda folder: write_class_folders(folder), "train/*/*.png"),
    "filenames": (lambda folder: write_dogs_vs_cats(folder), "train/*.png"),
    "images": (lambda folder: write_image_competition(folder, count=60, test_count=12), "train/*.png"),
    "16-bit folders": (write_sixteen_bit_folders, "train/*/*.png"),
}


def damage(path: Path, how: str) -> None:
    path.write_bytes(DAMAGES[how](path.read_bytes()))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_unreadable_training_images_are_left_out_and_the_labels_stay_with_their_images(layout, tmp_path):
    write, pattern = LAYOUTS[layout]
    folder = tmp_path / "competition"
    write(folder)
    clean = load_competition(folder)
    # Three images of different classes where the layout has them, damaged three ways.
    files = sorted(folder.glob(pattern))
    chosen = [files[1], files[len(files) // 2], files[-2]]
    rows = []
    for path in chosen:
        if layout == "16-bit folders":
            rows.append(next(row for row in range(len(files)) if files[row] == path))  # read in this order
        else:
            rows.append(int(np.flatnonzero((clean.x_train == pixels_of(path)[..., :clean.x_train.shape[3]])
                                           .all(axis=(1, 2, 3)))[0]))
    damaged = sorted(zip(rows, chosen, DAMAGES, strict=True))  # (row, file, how), in the order the layout reads them
    for _, path, how in damaged:
        damage(path, how)

    with pytest.raises(PipelineError, match=re.escape(str(damaged[0][1])) + r": .*SKIP_UNREADABLE=1 \(--skip-unreadable\)"):
        load_competition(folder)
    skipped = load_competition(folder, skip_unreadable=True)
    kept = np.setdiff1d(np.arange(len(clean.x_train)), rows)
    np.testing.assert_array_equal(skipped.x_train, clean.x_train[kept])
    assert [skipped.classes[label] for label in skipped.y_train] == [clean.classes[label] for label in clean.y_train[kept]]
    np.testing.assert_array_equal(skipped.x_test, clean.x_test)
    assert skipped.test_ids == clean.test_ids
    assert len(skipped.left_out) == 3
    for line, (_, path, how) in zip(skipped.left_out, damaged, strict=True):
        assert line.startswith(f"{path}: ") and re.search(PROBLEMS[how], line), line
    assert skipped.describe()["left_out"] == skipped.left_out and skipped.describe()["skip_unreadable"] is True


def test_a_record_whose_image_does_not_decode_is_left_out(tmp_path):
    folder = tmp_path / "flowers"
    images = {number: jpeg(number) for number in range(24)}
    broken = {3: images[3][:40], 8: b"not a jpeg"}
    write_records(folder / "train" / "00.tfrec", [example({"image": broken.get(number, images[number]), "class": number % 3,
                                                            "id": f"t{number}".encode()}) for number in range(24)])
    write_records(folder / "test" / "00.tfrec", [example({"image": jpeg(100 + number), "id": f"q{number}".encode()})
                                                  for number in range(4)])
    (folder / "sample_submission.csv").write_text("id,label\n" + "".join(f"q{number},0\n" for number in range(4)))
    with pytest.raises(PipelineError, match=r"00\.tfrec, record 3: cannot read image .*--skip-unreadable"):
        load_competition(folder)
    competition = load_competition(folder, skip_unreadable=True)
    kept = [number for number in range(24) if number not in broken]
    assert len(competition.x_train) == len(kept) and len(competition.left_out) == 2
    for row, number in enumerate(kept):
        from PIL import Image

        np.testing.assert_array_equal(competition.x_train[row], np.asarray(Image.open(io.BytesIO(images[number]))))
        assert competition.classes[competition.y_train[row]] == str(number % 3)


def test_the_store_records_what_was_left_out_and_every_later_stage_reads_the_data_so(tmp_path, restore_signals):
    folder = tmp_path / "plants"
    write_class_folders(folder)
    damaged = sorted(folder.glob("train/*/*.png"))[5]
    damage(damaged, "truncated")
    search = ("search", "--data", folder, "--models-dir", tmp_path / "models", "--evals", "1", "--search-epochs", "1",
              "--subset", "0")
    result = run_in_process(*search, "--skip-unreadable", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"data: left out: {damaged}: cannot read image" in result.stderr
    manifest = json.loads((tmp_path / "models" / "plants" / "store.json").read_text())
    assert manifest["skip_unreadable"] is True and manifest["train_images"] == 35
    assert len(manifest["left_out"]) == 1 and manifest["left_out"][0].startswith(f"{damaged}: ")
    # A later stage without the option reads the data as the store was made (from the cache, saying so) ...
    workspace = open_workspace(folder, tmp_path / "models", read_only=True)
    assert workspace.competition.left_out == manifest["left_out"] and len(workspace.competition.x_train) == 35
    assert workspace.competition.fingerprint() == manifest["fingerprint"]
    status = run_in_process("status", "--data", folder, "--models-dir", tmp_path / "models", cwd=tmp_path)
    assert "data      1 unreadable training image(s) left out" in status.stdout, status.stdout
    # ... and so does one that parses the data again.
    for cache in (tmp_path / "models" / "plants" / "cache").iterdir():
        cache.unlink()
    again = open_workspace(folder, tmp_path / "models", read_only=True)
    assert again.competition.fingerprint() == manifest["fingerprint"]


def test_without_the_option_the_first_unreadable_image_is_one_line_naming_the_option(tmp_path, capsys, restore_signals):
    folder = tmp_path / "plants"
    write_class_folders(folder)
    damaged = sorted(folder.glob("train/*/*.png"))[7]
    damage(damaged, "empty")
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"], damaged,
                       r"cannot read image \(empty: 0 bytes\); SKIP_UNREADABLE=1 \(--skip-unreadable\) leaves "
                       r"unreadable training images out$")


def _damage_test_image(folder: Path) -> Path:
    path = sorted(folder.glob("test/*.png"))[2]
    damage(path, "truncated")
    return path


def _damage_too_many(folder: Path) -> Path:
    files = sorted(folder.glob("train/*/*.png"))
    chosen = files[:: max(1, int(1 / MAX_UNREADABLE_SHARE) - 1)]  # a little over the share
    for path in chosen:
        damage(path, "empty")
    return chosen[0]


def _damage_a_whole_class(folder: Path) -> Path:
    files = sorted(folder.glob("train/Small-flowered Cranesbill/*.png"))
    for path in files[1:]:
        path.unlink()
    damage(files[0], "not an image")
    return files[0]


@pytest.mark.parametrize("make_damage, problem", [
    (_damage_test_image, r"cannot read image .*\(a test image cannot be left out: the submission needs every one\)$"),
    (_damage_too_many, r"\d+ of 3\d training images cannot be read \(this one: cannot read image \(empty: 0 bytes\)\), more than the 10% "
                       r"--skip-unreadable leaves out"),
    (_damage_a_whole_class, r"no training image of class 'Small-flowered Cranesbill' can be read$"),
], ids=["a test image", "more than the share", "a whole class"])
def test_what_cannot_be_left_out_is_still_one_line_and_nothing_is_written(make_damage, problem, tmp_path, capsys,
                                                                          restore_signals):
    folder = tmp_path / "plants"
    write_class_folders(folder)
    named = make_damage(folder)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models",
                                          "--skip-unreadable"], named, problem)
    assert not (tmp_path / "models").exists()


def test_a_stage_refused_after_the_data_loaded_prints_its_one_line_without_the_left_out_images(tmp_path, capsys,
                                                                                               restore_signals):
    folder = tmp_path / "plants"
    write_class_folders(folder)
    damage(sorted(folder.glob("train/*/*.png"))[3], "empty")
    models = tmp_path / "models"
    refused_in_process(tmp_path, capsys, ["ensemble", "--data", folder, "--models-dir", models, "--skip-unreadable"],
                       models / "plants" / "best_params.json", r"not found; run 'make search'")
