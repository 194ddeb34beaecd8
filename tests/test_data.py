"""Loaders for the three layouts, the cache, the split, the Fashion-MNIST preparation, and bad input."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from conftest import (
    STRING_CLASSES,
    run_cli,
    synthetic_images,
    write_csv_competition,
    write_image_competition,
    write_npy_competition,
)

from kaggle_pipeline.data import load_competition, make_split, prepare_fashion_mnist, read_idx
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.store import RunStore


def test_csv_layout_without_test_ids_keeps_sample_order(csv_competition):
    competition = load_competition(csv_competition)
    images, labels = synthetic_images(300)
    assert competition.layout == "csv"
    assert competition.image_shape == (16, 16, 1)
    assert competition.classes == ["0", "1", "2"]
    np.testing.assert_array_equal(competition.x_train, images[:240])
    np.testing.assert_array_equal(competition.y_train, labels[:240])
    np.testing.assert_array_equal(competition.x_test, images[240:])
    assert competition.test_ids == [str(i) for i in range(1, 61)]
    assert (competition.id_column, competition.label_column) == ("ImageId", "Label")


def test_csv_layout_with_shuffled_test_ids_is_reordered_to_the_sample(tmp_path):
    folder = write_csv_competition(tmp_path / "ids", with_test_ids=True)
    competition = load_competition(folder)
    images, _ = synthetic_images(300)
    np.testing.assert_array_equal(competition.x_test, images[240:])


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_layout_with_string_labels(tmp_path, channels):
    folder = write_image_competition(tmp_path / "cifar", channels=channels)
    competition = load_competition(folder)
    images, labels = synthetic_images(300, channels=channels)
    assert competition.layout == "images"
    assert competition.classes == STRING_CLASSES
    assert competition.image_shape == (16, 16, channels)
    np.testing.assert_array_equal(competition.x_train, images[:240])
    np.testing.assert_array_equal(competition.y_train, labels[:240])
    # The sample lists test ids 241..300; ids sort as strings on disk, so this checks the reordering too.
    np.testing.assert_array_equal(competition.x_test, images[240:])
    assert competition.solution is not None


def test_image_folder_with_mixed_grey_and_colour_becomes_colour(tmp_path):
    from PIL import Image

    folder = write_image_competition(tmp_path / "mixed", channels=3)
    grey = np.full((16, 16), 77, dtype=np.uint8)
    Image.fromarray(grey).save(folder / "train" / "1.png")
    competition = load_competition(folder)
    assert competition.image_shape == (16, 16, 3)
    assert (competition.x_train[0] == 77).all()


@pytest.mark.parametrize("as_npz", [False, True])
def test_npy_layout(tmp_path, as_npz):
    folder = write_npy_competition(tmp_path / "arrays", as_npz=as_npz)
    competition = load_competition(folder)
    images, labels = synthetic_images(300)
    assert competition.layout == "npy"
    assert competition.classes == STRING_CLASSES
    np.testing.assert_array_equal(competition.x_train, images[:240])
    np.testing.assert_array_equal(competition.y_train, labels[:240])
    assert competition.test_ids[:2] == ["t0", "t1"]
    assert (competition.id_column, competition.label_column) == ("Id", "Category")


def test_npy_floats_in_unit_range_are_scaled(tmp_path):
    competition = load_competition(write_npy_competition(tmp_path / "floats", float_pixels=True))
    images, _ = synthetic_images(300)
    assert competition.x_train.dtype == np.uint8
    np.testing.assert_array_equal(competition.x_train, images[:240])


def test_parsed_arrays_are_cached_by_source_files(csv_competition, tmp_path):
    cache = tmp_path / "cache"
    first = load_competition(csv_competition, cache_dir=cache)
    cached = list(cache.glob("arrays-*.npz"))
    assert len(cached) == 1
    # Break the CSV without changing its size or mtime: a cache hit must not parse it again.
    train = csv_competition / "train.csv"
    stat = train.stat()
    text = train.read_text()
    train.write_text(text.replace("label,", "xxxxx,", 1))
    import os

    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = load_competition(csv_competition, cache_dir=cache)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    # A changed file is a new key: parsed again (and here it fails, as it should).
    os.utime(train, None)
    with pytest.raises(PipelineError, match="no label column"):
        load_competition(csv_competition, cache_dir=cache)


def test_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(4), 50)
    train_a, validation_a = make_split(labels, 0.1, seed=3)
    train_b, validation_b = make_split(labels, 0.1, seed=3)
    np.testing.assert_array_equal(validation_a, validation_b)
    assert len(validation_a) == 20 and not set(train_a) & set(validation_a)
    assert np.bincount(labels[validation_a]).tolist() == [5, 5, 5, 5]
    _, other = make_split(labels, 0.1, seed=4)
    assert not np.array_equal(validation_a, other)


def test_store_refuses_runs_from_other_data(tmp_path, csv_competition):
    store = RunStore(tmp_path / "models" / "pixels")
    store.bind("aaaa", {})
    store.bind("aaaa", {})
    with pytest.raises(PipelineError, match="made from other data"):
        store.bind("bbbb", {})


def _write_idx(path, array):
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_prepare_fashion_mnist_from_idx_files(tmp_path):
    source = tmp_path / "debian"
    source.mkdir()
    images, labels = synthetic_images(50, side=28)
    _write_idx(source / "train-images-idx3-ubyte.gz", images[:40, ..., 0])
    _write_idx(source / "train-labels-idx1-ubyte.gz", labels[:40])
    _write_idx(source / "t10k-images-idx3-ubyte.gz", images[40:, ..., 0])
    _write_idx(source / "t10k-labels-idx1-ubyte.gz", labels[40:])
    np.testing.assert_array_equal(read_idx(source / "train-labels-idx1-ubyte.gz"), labels[:40])

    folder = tmp_path / "data" / "fashion-mnist"
    assert prepare_fashion_mnist(folder, source) is True
    assert prepare_fashion_mnist(folder, source) is False  # already there
    competition = load_competition(folder)
    np.testing.assert_array_equal(competition.x_train, images[:40])
    np.testing.assert_array_equal(competition.x_test, images[40:])
    solution = (folder / "solution.csv").read_text().splitlines()
    assert solution[0] == "ImageId,Label" and solution[1] == f"1,{labels[40]}"


# Bad input: one line naming the file and the problem ------------------------------------------------
def _edit(path, old, new, count=1):
    path.write_text(path.read_text().replace(old, new, count))


def _relabel_all(path, label):
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header] + [label + row[row.index(","):] for row in rows]) + "\n")


BAD_INPUTS = {
    "missing sample submission": (lambda f: (f / "sample_submission.csv").unlink(), "no sample submission"),
    "missing test file": (lambda f: (f / "test.csv").unlink(), "test.csv: file not found"),
    "wrong pixel count": (lambda f: (f / "train.csv").write_text(
        "label," + ",".join(f"pixel{i}" for i in range(250)) + "\n" + ("1," + ",".join(["0"] * 250) + "\n") * 3),
        "250 pixel columns is not a square"),
    "non-numeric pixel": (lambda f: _edit(f / "train.csv", "\n1,", "\n1,x", 1), "non-numeric pixel value"),
    "pixel out of range": (lambda f: _edit(f / "train.csv", "\n1,", "\n1,999", 1), "outside 0..255"),
    "ragged row": (lambda f: _edit(f / "train.csv", "\n1,", "\n1,5,", 1), "cannot parse CSV"),
    "test rows do not match sample": (lambda f: (f / "sample_submission.csv").write_text("ImageId,Label\n1,0\n"),
                                      "60 test images"),
    "duplicate sample ids": (lambda f: _edit(f / "sample_submission.csv", "\n2,", "\n1,"), "duplicate id"),
    "single class": (lambda f: _relabel_all(f / "train.csv", "1"), "single class"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_csv_input_is_one_clear_error(tmp_path, case):
    folder = write_csv_competition(tmp_path / "bad")
    corrupt, message = BAD_INPUTS[case]
    corrupt(folder)
    with pytest.raises(PipelineError, match=message) as error:
        load_competition(folder)
    assert "\n" not in str(error.value)
    assert str(folder) in str(error.value)


def test_bad_image_inputs(tmp_path):
    folder = write_image_competition(tmp_path / "broken")
    (folder / "train" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(PipelineError, match=r"3\.png: cannot read image"):
        load_competition(folder)

    folder = write_image_competition(tmp_path / "missing")
    (folder / "train" / "5.png").unlink()
    with pytest.raises(PipelineError, match=r"'5' \(column 'id'\) has no image"):
        load_competition(folder)

    from PIL import Image

    folder = write_image_competition(tmp_path / "extra")
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(folder / "test" / "999.png")
    with pytest.raises(PipelineError, match=r"999\.png: test image is not in sampleSubmission.csv"):
        load_competition(folder)


def test_bad_npy_inputs(tmp_path):
    folder = write_npy_competition(tmp_path / "rank")
    np.save(folder / "test_x.npy", np.zeros((60, 16), dtype=np.uint8))
    with pytest.raises(PipelineError, match="test_x.npy"):
        load_competition(folder)

    folder = write_npy_competition(tmp_path / "objects")
    np.save(folder / "train_y.npy", np.array([{"a": 1}] * 240, dtype=object), allow_pickle=True)
    with pytest.raises(PipelineError, match="train_y.npy: cannot load array"):
        load_competition(folder)

    folder = write_npy_competition(tmp_path / "count")
    np.save(folder / "train_y.npy", np.array(["cat"] * 10))
    with pytest.raises(PipelineError, match="expected 240 labels"):
        load_competition(folder)


def test_cli_reports_bad_input_in_one_line_without_traceback(tmp_path):
    folder = write_csv_competition(tmp_path / "cli")
    _edit(folder / "train.csv", "\n1,", "\n1,x", 1)
    models = tmp_path / "models"
    result = run_cli("search", "--data", folder, "--models-dir", models, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "train.csv" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (models / "cli" / "store.json").exists()

    missing = run_cli("submit", "--data", tmp_path / "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and "competition folder not found" in missing.stderr
