"""The ``json`` layout (Statoil/C-CORE Iceberg Classifier): records with an id, radar bands in dB and the label,
read band by band over one range for the competition, or refused in one line naming the file and the record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_hostile_data import refused_in_process

from kaggle_pipeline.data import detect_layout, load_competition

SIDE = 5


def records(count: int, bands: int, seed: int, labelled: bool, first_id: int = 0) -> list[dict]:
    """Iceberg-shaped records: band_1..band_k of SIDE² dB values (negative, as radar backscatter is), an
    inc_angle that is sometimes "na", and is_iceberg 0/1 in training records."""
    rng = np.random.default_rng(seed)
    made = []
    for number in range(count):
        record = {"id": f"{first_id + number:08x}", "inc_angle": "na" if number % 4 == 0 else 39.25}
        for band in range(1, bands + 1):
            record[f"band_{band}"] = rng.normal(-20 - 3 * band, 5, SIDE * SIDE).round(4).tolist()
        if labelled:
            record["is_iceberg"] = number % 2
        made.append(record)
    return made


def write_iceberg(folder: Path, bands: int = 2, train_count: int = 24, test_count: int = 6) -> Path:
    folder.mkdir(parents=True)
    (folder / "train.json").write_text(json.dumps(records(train_count, bands, seed=1, labelled=True)))
    test = records(test_count, bands, seed=2, labelled=False, first_id=1000)
    (folder / "test.json").write_text(json.dumps(test))
    # The sample lists the test ids in another order than test.json: the submission follows the sample.
    rows = [f"{record['id']},0.5" for record in reversed(test)]
    (folder / "sample_submission.csv").write_text("id,is_iceberg\n" + "\n".join(rows) + "\n")
    return folder


def test_bands_map_to_0_255_by_one_range_and_two_bands_make_rgb_with_their_mean(tmp_path):
    folder = write_iceberg(tmp_path / "iceberg")
    assert detect_layout(folder) == "json"
    competition = load_competition(folder)
    train, test = (json.loads((folder / name).read_text()) for name in ("train.json", "test.json"))
    assert competition.x_train.shape == (24, SIDE, SIDE, 3) and competition.x_test.shape == (6, SIDE, SIDE, 3)
    assert competition.classes == ["0", "1"]
    assert [competition.classes[label] for label in competition.y_train] == [str(r["is_iceberg"]) for r in train]
    for band, channel in (("band_1", 0), ("band_2", 1)):
        values = np.array([record[band] for record in train + test], dtype=np.float32)
        low, high = values.min(), values.max()
        expected = np.rint((values - low) / np.float32(high - low) * 255).astype(np.uint8).reshape(-1, SIDE, SIDE)
        np.testing.assert_array_equal(competition.x_train[..., channel], expected[:24])
        # The test images in the sample's order (reversed test.json).
        np.testing.assert_array_equal(competition.x_test[..., channel], expected[24:][::-1])
    mean = np.rint((competition.x_train[..., 0].astype(np.uint16) + competition.x_train[..., 1]) / 2)
    np.testing.assert_array_equal(competition.x_train[..., 2], mean.astype(np.uint8))
    # One range for the competition, not per image: each band reaches 0 and 255 once over train and test.
    assert competition.x_train[..., :2].min() == 0 or competition.x_test[..., :2].min() == 0


@pytest.mark.parametrize("bands, channels", [(1, 1), (3, 3)])
def test_one_band_is_grey_and_three_are_rgb(bands, channels, tmp_path):
    competition = load_competition(write_iceberg(tmp_path / "iceberg", bands=bands))
    assert competition.x_train.shape == (24, SIDE, SIDE, channels)


def test_band_10_follows_band_2(tmp_path):
    folder = write_iceberg(tmp_path / "iceberg", bands=1)
    for name in ("train.json", "test.json"):
        made = json.loads((folder / name).read_text())
        for record in made:
            record["band_10"] = [1000.0] * (SIDE * SIDE)  # a constant band: its range is one value, read as 0
            record["band_2"] = record.pop("band_1")
        (folder / name).write_text(json.dumps(made))
    competition = load_competition(folder)
    assert competition.x_train.shape[-1] == 3 and (competition.x_train[..., 1] == 0).all()
    assert competition.x_train[..., 0].max() > 0  # band_2 first, then band_10


def _edit(name: str, change):
    def corrupt(folder: Path) -> None:
        made = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps(change(made)))

    return corrupt


def _set(name: str, number: int, key: str, value):
    def change(made):
        made[number][key] = value
        return made

    return _edit(name, change)


def _drop(name: str, number: int, key: str):
    def change(made):
        del made[number][key]
        return made

    return _edit(name, change)


@pytest.mark.parametrize("corrupt, named, problem", [
    (lambda f: (f / "train.json").write_text("[{\"id\": 1,"), "train.json", "cannot parse JSON"),
    (lambda f: (f / "test.json").write_bytes(b"\xff\xfe not json"), "test.json", "not UTF-8 text"),
    (lambda f: (f / "train.json").write_bytes((f / "train.json").read_bytes().replace(b'"', "\u00e9".encode("cp1252") + b'"', 1)),
     "train.json", r"not UTF-8 text \(line 1: '\[\{\\xe9\"id\": .*\.\.\.'\); convert it to UTF-8"),
    (_edit("train.json", lambda made: {"records": made}), "train.json", "expected a list of records.*found a JSON dict"),
    (_edit("train.json", lambda made: []), "train.json", "no records"),
    (_edit("test.json", lambda made: made + [[1, 2]]), "test.json", "record 6 is a JSON list, not an object"),
    (_drop("train.json", 3, "band_2"), "train.json", "record 3 has no band 'band_2'"),
    (_set("train.json", 4, "band_1", [1.0] * 7), "train.json", "record 4, band 'band_1': 7 values, but record 0's bands have 25"),
    (_edit("train.json", lambda made: [dict(r, band_1=r["band_1"][:24], band_2=r["band_2"][:24]) for r in made]),
     "train.json", "record 0, band 'band_1': 24 values is not a square image"),
    (_set("train.json", 2, "band_2", [float("nan")] * 25), "train.json", "record 2, band 'band_2': pixel value nan is not a finite"),
    (_set("test.json", 1, "band_1", ["x"] * 25), "test.json", "record 1, band 'band_1': non-numeric pixel value 'x'"),
    (_set("test.json", 1, "band_1", [[1.0] * 5] * 5), "test.json", "record 1, band 'band_1': expected a flat list"),
    (_drop("train.json", 0, "is_iceberg"), "train.json", "record 0 has no label field"),
    (_set("train.json", 5, "is_iceberg", None), "train.json", "record 5: the label in 'is_iceberg' is None, not an integer or text"),
    (_set("train.json", 5, "is_iceberg", 0.5), "train.json", "record 5: the label in 'is_iceberg' is 0.5, not a whole number"),
    (_edit("train.json", lambda made: [dict(r, band_3=r["band_1"], band_4=r["band_2"]) for r in made]), "train.json",
     "4 bands .* at most 3 are read"),
    (_drop("test.json", 0, "id"), "test.json", "record 0 has no id field"),
    (_set("test.json", 2, "id", ""), "test.json", "record 2: the id in 'id' is empty"),
    (_edit("test.json", lambda made: [dict(r, band_1=r["band_1"] * 4, band_2=r["band_2"] * 4) for r in made]),
     "test.json", "bands of 100 values, but train.json's have 25"),
    (_set("test.json", 3, "id", "not-in-the-sample"), "sample_submission.csv",
     "id '000003eb' has no test image in test.json"),
    (lambda f: (f / "test.json").unlink(), "test.json", "file not found"),
])
def test_a_broken_iceberg_folder_is_one_line(corrupt, named, problem, tmp_path, capsys, restore_signals):
    folder = write_iceberg(tmp_path / "iceberg")
    corrupt(folder)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                       folder / named, problem)


def test_a_band_larger_than_an_image_may_be_is_refused_before_it_is_converted():
    from kaggle_pipeline.data.layouts.json_records import _band_values
    from kaggle_pipeline.errors import PipelineError

    with pytest.raises(PipelineError, match=r"record 0, band 'band_1': 90,250,000 values, more than the "
                                            r"89,478,485 pixels one image may have"):
        _band_values([{"band_1": [0] * 9500**2}], ["band_1"], Path("test.json"))
