"""Image formats Kaggle ships: PNG, JPEG, TIFF, BMP, WebP, GIF, JPEG 2000, AVIF read correctly (16-bit by the competition's
significant bits, float by a fixed range,
EXIF orientation applied, CMYK/palette/alpha made RGB) or refused in one line, never silently damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, write_image_competition
from test_hostile_data import refused_by_a_fresh_process, refused_in_process, submit_arguments, workspace_around

from kaggle_pipeline.data import load_competition
from kaggle_pipeline.errors import PipelineError

SMALL = {"count": 24, "test_count": 6, "side": 4}


def image_folder(folder: Path) -> Path:
    return write_image_competition(folder, **SMALL)


def replace(folder: Path, relative: str, image, suffix: str, **save) -> Path:
    """Put ``image`` (a PIL image) in place of ``relative`` (a .png), saved under ``suffix``."""
    old = folder / relative
    old.unlink()
    new = old.with_suffix(suffix)
    image.save(new, **save)
    return new


def pixels_of(competition, relative: str) -> np.ndarray:
    subfolder, name = relative.split("/")
    image_id = Path(name).stem
    if subfolder == "train":
        return competition.x_train[int(image_id) - 1]
    return competition.x_test[competition.test_ids.index(image_id)]


GRADIENT16 = np.linspace(0, 65535, 16).round().astype(np.uint16).reshape(4, 4)


def test_a_tiff_competition_loads_like_the_png_one(tmp_path):
    from PIL import Image

    clean = load_competition(image_folder(tmp_path / "png"))
    folder = image_folder(tmp_path / "tiff")
    for path in sorted((folder / "train").glob("*.png")) + sorted((folder / "test").glob("*.png")):
        with Image.open(path) as image:
            image.load()
            image.save(path.with_suffix(".tiff" if int(path.stem) % 2 else ".tif"), format="TIFF")
        path.unlink()
    tiff = load_competition(folder)
    np.testing.assert_array_equal(tiff.x_train, clean.x_train)
    np.testing.assert_array_equal(tiff.x_test, clean.x_test)
    assert tiff.test_ids == clean.test_ids


@pytest.mark.parametrize("suffix", [".pgm", ".ppm", ".pnm"])
def test_netpbm_loads_exactly(suffix, tmp_path):
    """The AT&T/ORL and Yale face sets ship .pgm: read as the same pixels as the PNGs they were made from."""
    from PIL import Image

    clean = load_competition(image_folder(tmp_path / "png"))
    folder = image_folder(tmp_path / "netpbm")
    for path in sorted((folder / "train").glob("*.png")) + sorted((folder / "test").glob("*.png")):
        with Image.open(path) as image:
            image.load()
            (image.convert("L") if suffix == ".pgm" else image).save(path.with_suffix(suffix), format="PPM")
        path.unlink()
    netpbm = load_competition(folder)
    if suffix == ".pgm":  # grey copies: Pillow's own convert("L") of each PNG
        first = min((tmp_path / "png" / "train").glob("*.png"), key=lambda path: int(path.stem))
        with Image.open(first) as image:
            np.testing.assert_array_equal(netpbm.x_train[0, ..., 0], np.asarray(image.convert("L")))
        assert netpbm.x_train.shape[-1] == 1
    else:
        np.testing.assert_array_equal(netpbm.x_train, clean.x_train)
        np.testing.assert_array_equal(netpbm.x_test, clean.x_test)


def test_bmp_and_webp_lossless_load_exactly(tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "mixed")
    clean = load_competition(image_folder(tmp_path / "png"))
    for relative, suffix, save in (("train/3.png", ".bmp", {}), ("test/26.png", ".webp", {"lossless": True})):
        with Image.open(folder / relative) as image:
            image.load()
            replace(folder, relative, image, suffix, **save)
    mixed = load_competition(folder)
    np.testing.assert_array_equal(mixed.x_train, clean.x_train)
    np.testing.assert_array_equal(mixed.x_test, clean.x_test)


def test_jpeg_2000_and_avif_load_as_pillow_decodes_them(tmp_path):
    """Satellite tiles and slide scans ship JPEG 2000 (lossless here: exactly the PNG's pixels); phones and
    browsers save AVIF (lossy: Pillow's own decoding of the file). A file of one named as the other is refused."""
    from PIL import Image

    folder = image_folder(tmp_path / "mixed")
    clean = load_competition(image_folder(tmp_path / "png"))
    for relative, suffix in (("train/3.png", ".jp2"), ("train/4.png", ".j2k"), ("test/26.png", ".jp2")):
        with Image.open(folder / relative) as image:
            image.load()
            replace(folder, relative, image, suffix, irreversible=False, no_jp2=suffix == ".j2k")
    with Image.open(folder / "train/5.png") as image:
        image.load()
        avif = replace(folder, "train/5.png", image, ".avif")
    mixed = load_competition(folder)
    with Image.open(avif) as image:
        np.testing.assert_array_equal(mixed.x_train[4], np.asarray(image.convert("RGB")))
    np.testing.assert_array_equal(np.delete(mixed.x_train, 4, axis=0), np.delete(clean.x_train, 4, axis=0))
    np.testing.assert_array_equal(mixed.x_test, clean.x_test)
    avif.rename(avif.with_suffix(".jp2"))
    with pytest.raises(PipelineError, match=r"5\.jp2: cannot read image \(not a JPEG2000 file; a \.jp2 file is read only "
                                            r"as JPEG2000\)"):
        load_competition(folder)


def test_16_bit_jpeg_2000_takes_the_competitions_significant_bits(tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "scans")
    twelve_bits = (GRADIENT16 >> 4).astype(np.uint16)  # 0..4095
    replace(folder, "train/2.png", Image.fromarray(twelve_bits), ".jp2", irreversible=False)
    scans = load_competition(folder)
    expected = np.rint(twelve_bits.astype(np.float32) * np.float32(255 / 4095)).astype(np.uint8)
    np.testing.assert_array_equal(scans.x_train[1, ..., 0], expected)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grey_is_rescaled_by_its_range_not_clipped(suffix, tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "wide")
    replace(folder, "train/2.png", Image.fromarray(GRADIENT16), suffix)
    pixels = pixels_of(load_competition(folder), "train/2.png")[..., 0].ravel()
    assert pixels.min() == 0 and pixels.max() == 255
    assert (np.diff(pixels.astype(int)) > 0).all()  # monotonic and spread, not 97% white
    np.testing.assert_array_equal(pixels, np.rint(GRADIENT16.ravel() * (255 / 65535)).astype(np.uint8))


def twelve_bit(folder: Path, highest: dict[str, int]) -> Path:
    """Each of ``highest``'s images (relative .png paths) replaced by a 16-bit gradient from 0 to its value."""
    from PIL import Image

    for relative, top in highest.items():
        gradient = np.linspace(0, top, 16).round().astype(np.uint16).reshape(4, 4)
        replace(folder, relative, Image.fromarray(gradient), ".png")
    return folder


def test_a_12_bit_scan_in_16_bit_files_uses_all_256_levels(tmp_path):
    # 0..4095 read as 0..65535 would be 16 grey levels; by its 12 significant bits it spans 0..255.
    folder = twelve_bit(image_folder(tmp_path / "scan"), {"train/2.png": 4095, "test/26.png": 4095})
    competition = load_competition(folder)
    for relative in ("train/2.png", "test/26.png"):
        pixels = pixels_of(competition, relative)[..., 0].ravel()
        expected = np.rint(np.linspace(0, 4095, 16).round() * (255 / 4095)).astype(np.uint8)
        np.testing.assert_array_equal(pixels, expected)


def test_16_bit_range_is_one_for_the_whole_competition_train_and_test(tmp_path):
    # The brightest image (a test image) sets 12 bits; a dark training image (0..1000) stays dark, not stretched.
    folder = twelve_bit(image_folder(tmp_path / "scan"), {"train/2.png": 1000, "test/26.png": 3000})
    competition = load_competition(folder)
    assert pixels_of(competition, "train/2.png").max() == round(1000 * 255 / 4095)
    assert pixels_of(competition, "test/26.png").max() == round(3000 * 255 / 4095)


@pytest.mark.parametrize(("top", "bits"), [(200, 8), (1023, 10), (16383, 14), (40000, 16)])
def test_significant_bits_of_16_bit_files(top, bits, tmp_path):
    folder = twelve_bit(image_folder(tmp_path / "scan"), {"train/2.png": top})
    clean = load_competition(image_folder(tmp_path / "clean"))
    competition = load_competition(folder)
    pixels = pixels_of(competition, "train/2.png")[..., 0].ravel()
    expected = np.rint(np.linspace(0, top, 16).round() * (255 / (2 ** bits - 1))).astype(np.uint8)
    np.testing.assert_array_equal(pixels, expected)
    # The 8-bit images beside it are read as they were.
    np.testing.assert_array_equal(np.delete(competition.x_train, 1, axis=0), np.delete(clean.x_train, 1, axis=0))
    np.testing.assert_array_equal(competition.x_test, clean.x_test)


def test_32_bit_integer_tiff_of_10_bits(tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "wide")
    values = np.linspace(0, 1023, 16).round().astype(np.int32).reshape(4, 4)
    replace(folder, "train/3.png", Image.fromarray(values), ".tif")
    pixels = pixels_of(load_competition(folder), "train/3.png")[..., 0].ravel()
    np.testing.assert_array_equal(pixels, np.rint(values.ravel() * (255 / 1023)).astype(np.uint8))


def test_a_48_megapixel_phone_photo_is_read(tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "phone")
    replace(folder, "train/5.png", Image.new("RGB", (8064, 6048), (200, 100, 50)), ".jpg", quality=90)
    competition = load_competition(folder)
    assert competition.x_train.shape[1:] == (16, 16, 3)  # mixed sizes: the median side, at least 16
    assert np.abs(pixels_of(competition, "train/5.jpg").astype(int) - [200, 100, 50]).max() <= 3


def test_16_bit_big_endian_tiff(tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "wide")
    replace(folder, "test/27.png", Image.fromarray(GRADIENT16.astype(">u2")), ".tiff")
    pixels = pixels_of(load_competition(folder), "test/27.png")[..., 0].ravel()
    np.testing.assert_array_equal(pixels, np.rint(GRADIENT16.ravel() * (255 / 65535)).astype(np.uint8))


def _png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG of ``pixels`` (H, W, C: C = 2 grey with alpha, 3 RGB, 4 RGBA), rows filtered in turn with each
    of PNG's five filters, so that the reader's unfiltering is checked at every byte distance it uses."""
    import struct
    import zlib

    height, width, channels = pixels.shape
    rows = pixels.astype(">u2").reshape(height, -1).view(np.uint8).astype(np.int64)
    step = 2 * channels  # bytes per pixel
    raw, previous = b"", np.zeros(rows.shape[1], np.int64)
    for number, row in enumerate(rows):
        kind = number % 5
        left = np.concatenate([np.zeros(step, np.int64), row[:-step]])
        upper_left = np.concatenate([np.zeros(step, np.int64), previous[:-step]])
        if kind == 4:  # Paeth: the neighbour nearest to left + up - upper left
            estimate = left + previous - upper_left
            distances = np.abs(estimate[None] - np.stack([left, previous, upper_left]))
            predicted = np.choose(np.argmin(distances, axis=0), [left, previous, upper_left])
        else:
            predicted = [0 * row, left, previous, (left + previous) // 2][kind]
        raw += bytes([kind]) + ((row - predicted) % 256).astype(np.uint8).tobytes()
        previous = row

    def chunk(name: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + name + data + struct.pack(">I", zlib.crc32(name + data))

    colour_type = {2: 4, 3: 2, 4: 6}[channels]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _tiff16(pixels: np.ndarray, byte_order: str, deflate: bool, extra_sample: int = 2) -> bytes:
    """A 16-bit RGB(A) TIFF of ``pixels`` (H, W, 3 or 4) in one strip: uncompressed, or deflated with the
    horizontal predictor (then Pillow hands it to libtiff). A fourth sample is alpha (``extra_sample`` 2), or
    unspecified (0: Planet's near-infrared band beside RGB)."""
    import struct
    import zlib

    height, width, channels = pixels.shape
    order = "<" if byte_order == "II" else ">"
    samples = pixels.astype(np.int64)
    if deflate:  # the predictor stores each sample as its difference from the pixel to its left
        samples[:, 1:] -= pixels[:, :-1].astype(np.int64)
    data = (samples % 65536).astype(order + "u2").tobytes()
    data = zlib.compress(data) if deflate else data
    bits = struct.pack(order + "H" * channels, *[16] * channels)
    entries = [(256, width), (257, height), (258, ("offset", channels)), (259, 8 if deflate else 1), (262, 2),
               (273, ("data", 1)), (277, channels), (278, height), (279, len(data)), (284, 1)]
    entries += [(317, 2)] if deflate else []
    entries += [(338, extra_sample)] if channels == 4 else []
    data_offset = 8 + len(bits)
    directory = struct.pack(order + "H", len(entries))
    for tag, value in entries:
        if isinstance(value, tuple):
            directory += struct.pack(order + "HHII", tag, 3 if value[0] == "offset" else 4, value[1],
                                     8 if value[0] == "offset" else data_offset)
        elif tag in (273, 279):
            directory += struct.pack(order + "HHII", tag, 4, 1, value)
        else:
            directory += struct.pack(order + "HHIHH", tag, 3, 1, value, 0)
    directory += struct.pack(order + "I", 0)
    return byte_order.encode() + struct.pack(order + "HI", 42, data_offset + len(data)) + bits + data + directory


@pytest.mark.parametrize("suffix, write", [
    (".png", lambda pixels: _png16(pixels)),
    (".png", lambda pixels: _png16(np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 65535)], axis=2))),
    (".tif", lambda pixels: _tiff16(pixels, "II", deflate=False)),
    (".tiff", lambda pixels: _tiff16(pixels, "MM", deflate=False)),
    (".tif", lambda pixels: _tiff16(np.concatenate([pixels, pixels[..., :1]], axis=2), "II", deflate=True)),
    (".tif", lambda pixels: _tiff16(pixels, "MM", deflate=True)),
    (".tif", lambda pixels: _tiff16(np.concatenate([pixels, pixels[..., :1]], axis=2), "II", False, extra_sample=0)),
], ids=["png-rgb", "png-rgba", "tiff-le", "tiff-be", "tiff-rgba-deflate-predictor", "tiff-be-deflate-predictor",
        "tiff-rgb-and-a-fourth-band"])
def test_16_bit_colour_keeps_both_bytes_of_every_sample(suffix, write, tmp_path):
    """A 12-bit colour scan in 16-bit RGB files: Pillow alone keeps each sample's high byte (0..4095 would come
    out as 0..15 in every channel); read as 16 bits, it spans 0..255 by its 12 significant bits, like grey."""
    folder = image_folder(tmp_path / "colour")
    values = np.random.default_rng(7).integers(0, 4096, (4, 4, 3)).astype(np.uint16)
    values[0, 0] = 4095  # the competition's highest pixel: 12 significant bits
    (folder / "train" / "4.png").unlink()
    (folder / "train" / "4.png").with_suffix(suffix).write_bytes(write(values))
    pixels = pixels_of(load_competition(folder), "train/4.png")
    np.testing.assert_array_equal(pixels, np.rint(values * (255 / 4095)).astype(np.uint8))


def test_16_bit_grey_with_alpha_is_grey_and_keeps_both_bytes(tmp_path):
    folder = image_folder(tmp_path / "grey")
    grey = GRADIENT16 // 16  # 12 bits
    for path in sorted((folder / "train").glob("*.png")) + sorted((folder / "test").glob("*.png")):
        path.write_bytes(_png16(np.stack([grey, np.full((4, 4), 40000, np.uint16)], axis=2)))
    competition = load_competition(folder)
    assert competition.x_train.shape[-1] == 1  # grey: the alpha is not a colour
    np.testing.assert_array_equal(competition.x_train[..., 0],
                                  np.broadcast_to(np.rint(grey * (255 / 4095)).astype(np.uint8), (24, 4, 4)))


def test_16_bit_colour_of_another_size_is_resized_at_16_bits(tmp_path):
    folder = image_folder(tmp_path / "colour")
    values = np.full((8, 8, 3), [4095, 2048, 0], np.uint16)
    (folder / "train" / "4.png").write_bytes(_png16(values))  # 8x8 among 4x4 images: resized to the median side
    competition = load_competition(folder, image_size=4)
    np.testing.assert_array_equal(pixels_of(competition, "train/4.png"),
                                  np.broadcast_to(np.array([255, 128, 0], np.uint8), (4, 4, 3)))


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_tiff_0_1_and_0_255(scale, tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "float")
    values = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    replace(folder, "train/4.png", Image.fromarray(values * np.float32(scale)), ".tif")
    pixels = pixels_of(load_competition(folder), "train/4.png")[..., 0]
    np.testing.assert_array_equal(pixels, np.rint(values * 255).astype(np.uint8))


def test_jpeg_exif_orientation_is_applied(tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "exif")
    stored = np.zeros((4, 4, 3), np.uint8)
    stored[0, :] = 255  # top row white as stored; orientation 6 shows it as the right column
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    replace(folder, "train/5.png", image, ".jpg", quality=100, exif=exif)
    pixels = pixels_of(load_competition(folder), "train/5.png").astype(int)
    assert (pixels[:, -1] > 200).all() and (pixels[:, 0] < 60).all()


def test_cmyk_jpeg_palette_gif_and_rgba_load_as_rgb(tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "colour")
    replace(folder, "train/6.png", Image.new("CMYK", (4, 4), (0, 255, 255, 0)), ".jpeg", quality=100)  # red
    replace(folder, "train/7.png", Image.new("RGB", (4, 4), (0, 0, 255)).convert("P"), ".gif")  # blue
    replace(folder, "test/28.png", Image.new("RGBA", (4, 4), (0, 255, 0, 0)), ".webp", lossless=True, exact=True)
    competition = load_competition(folder)
    assert competition.image_shape == (4, 4, 3)
    red, blue = pixels_of(competition, "train/6.png").astype(int), pixels_of(competition, "train/7.png")
    assert (red[..., 0] > 230).all() and (red[..., 1:] < 30).all()
    assert (blue == (0, 0, 255)).all()
    green = pixels_of(competition, "test/28.png")
    assert (green == (0, 255, 0)).all()  # alpha dropped, the colour under it kept


def test_animated_gif_uses_its_first_frame(tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "animated")
    frames = [Image.new("L", (4, 4), value) for value in (40, 200, 120)]
    (folder / "train" / "9.png").unlink()
    frames[0].save(folder / "train" / "9.gif", save_all=True, append_images=frames[1:], duration=50)
    pixels = pixels_of(load_competition(folder), "train/9.png")
    assert (pixels == 40).all()


@pytest.mark.parametrize(("suffix", "written_as", "problem"), [
    (".tif", "GIF", r"not a TIFF file; a \.tif file is read only as TIFF"),
    (".dcm", "PNG", r"not a DICOM file; a \.dcm file is read only as DICOM"),  # never handed to Pillow
])
def test_an_image_in_another_format_than_its_suffix_is_one_line(suffix, written_as, problem, tmp_path, capsys):
    from PIL import Image

    folder = image_folder(tmp_path / "bad")
    replace(folder, "test/29.png", Image.new("RGB", (4, 4)), suffix, format=written_as)
    models, submissions = workspace_around(tmp_path)
    refused_in_process(tmp_path, capsys, submit_arguments(folder, models, submissions),
                       folder / "test" / f"29{suffix}", problem)


def test_eps_named_tiff_never_reaches_ghostscript(tmp_path):
    folder = image_folder(tmp_path / "eps")
    (folder / "train" / "2.png").unlink()
    (folder / "train" / "2.tiff").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\nshowpage\n")
    with pytest.raises(Exception, match="not a TIFF file"):
        load_competition(folder)


@pytest.mark.parametrize("bad,problem", [(np.nan, "NaN or infinity"), (np.inf, "NaN or infinity"),
                                         (-3.0, "neither 0..1 nor 0..255"), (4.0, "neither 0..1 nor 0..255")])
def test_a_float_image_with_nan_or_out_of_range_is_one_line(bad, problem, tmp_path, capsys):
    from PIL import Image

    folder = image_folder(tmp_path / "bad")
    values = np.full((4, 4), 0.5, np.float32)
    values[1, 2] = bad
    replace(folder, "train/3.png", Image.fromarray(values), ".tiff")
    models, submissions = workspace_around(tmp_path)
    refused_in_process(tmp_path, capsys, submit_arguments(folder, models, submissions), folder / "train" / "3.tiff",
                       problem)


def test_unsupported_suffix_is_not_an_image(tmp_path):
    folder = image_folder(tmp_path / "eps")
    (folder / "train" / "2.eps").write_bytes(b"%!PS")
    load_competition(folder)  # an .eps beside the images is not read


def test_lines_logged_while_loading_are_dropped_when_the_stage_then_refuses(tmp_path, capsys):
    """A 16-bit competition logs its significant bits and a folder with a stray file its left-out line; a stage
    refused after the data loaded (submit before ensemble) still prints its one error line and nothing else.
    When the stage goes on, those lines come first, in order."""
    from PIL import Image

    folder = image_folder(tmp_path / "scans")
    replace(folder, "train/2.png", Image.fromarray(GRADIENT16 // 16), ".png")
    (folder / "train" / "notes.txt").write_text("scanned on Monday\n")
    models, submissions = workspace_around(tmp_path)
    refused_in_process(tmp_path, capsys, submit_arguments(folder, models, submissions),
                       models / "scans" / "ensemble.json", "not found; run 'make ensemble' first")
    searched = run_cli("search", "--data", folder, "--models-dir", models, "--space", "tiny", "--evals", "1",
                       "--search-epochs", "1", cwd=tmp_path)
    assert searched.returncode == 0, searched.stderr
    lines = searched.stderr.splitlines()
    left_out = next(index for index, line in enumerate(lines) if "left out 1 file(s)" in line)
    bits = next(index for index, line in enumerate(lines) if "12 significant bits" in line)
    assert left_out < bits < next(index for index, line in enumerate(lines) if line.startswith("search: "))


def test_held_data_lines_pass_on_in_order_when_the_stage_goes_on_or_the_load_runs_long():
    import logging

    from kaggle_pipeline.cli import HOLD_SECONDS, HeldDataLines

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    def record(name, message, created, level=logging.INFO):
        made = logging.LogRecord(name, level, __file__, 1, message, None, None)
        made.created = created
        return made

    target = Collect()
    held = HeldDataLines(target)
    held.handle(record("kaggle_pipeline.data.folders", "left out", 100.0))
    held.handle(record("kaggle_pipeline.data.images", "decoding 1/3", 101.0))
    assert target.lines == []  # held: the stage may still refuse
    held.handle(record("kaggle_pipeline.search", "search: trial 1", 101.5))
    assert target.lines == ["left out", "decoding 1/3", "search: trial 1"]
    held.handle(record("kaggle_pipeline.data.images", "decoding 2/3", 200.0))
    held.handle(record("kaggle_pipeline.data.images", "decoding 3/3", 200.0 + HOLD_SECONDS))  # a long load shows
    assert target.lines[-2:] == ["decoding 2/3", "decoding 3/3"]
    held.handle(record("kaggle_pipeline.data.images", "16 bits", 300.0))
    held.handle(record("kaggle_pipeline.data.competition", "left out: 3.jpg", 300.1, logging.WARNING))  # held too
    assert target.lines[-1] == "decoding 3/3"
    held.handle(record("kaggle_pipeline.ensemble", "ensemble: run 1", 300.2))
    assert target.lines[-3:] == ["16 bits", "left out: 3.jpg", "ensemble: run 1"]
    held.handle(record("kaggle_pipeline.data.competition", "an error", 300.3, logging.ERROR))  # never held
    assert target.lines[-1] == "an error"
    held.handle(record("kaggle_pipeline.data.images", "dropped", 400.0))
    held.drop()
    held.pass_on()
    assert "dropped" not in target.lines


def test_a_damaged_compressed_tiff_is_one_line_without_libtiffs_own_messages(tmp_path):
    """libtiff prints its decoding errors straight to the process's stderr ("ZIPDecode: Decoding error at
    scanline 0"), beside the pipeline's one line; its handlers are now set to none (images._quiet_libtiff).
    Checked in a fresh process, where those prints reach the stderr the user sees."""
    import io

    from PIL import Image

    folder = image_folder(tmp_path / "scans")
    encoded = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), 90, dtype=np.uint8)).save(encoded, "TIFF", compression="tiff_deflate")
    data = bytearray(encoded.getvalue())
    strip = Image.open(io.BytesIO(bytes(data))).tag_v2[273][0]
    data[strip + 2:strip + 12] = bytes(byte ^ 0xFF for byte in data[strip + 2:strip + 12])
    (folder / "train" / "3.png").unlink()
    (folder / "train" / "3.tif").write_bytes(bytes(data))
    refused_by_a_fresh_process(tmp_path, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                               folder / "train" / "3.tif", r"cannot read image \(.*\)(; SKIP_UNREADABLE|$)")


def test_a_tiff_declaring_too_many_samples_is_one_line_without_pillows_logged_error(tmp_path):
    """Pillow logs "More samples per pixel than can be decoded" through logging and then raises; with no handler
    of its own, Python's last resort printed it beside the file's one line (cli.main quiets Pillow's logger)."""
    import io

    from PIL import Image

    folder = image_folder(tmp_path / "scans")
    encoded = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), 90, dtype=np.uint8)).save(encoded, "TIFF")
    data = bytearray(encoded.getvalue())
    directory = int.from_bytes(data[4:8], "little")
    for entry in range(int.from_bytes(data[directory:directory + 2], "little")):
        at = directory + 2 + 12 * entry
        if int.from_bytes(data[at:at + 2], "little") == 277:  # SamplesPerPixel
            data[at + 8:at + 10] = (60000).to_bytes(2, "little")
    (folder / "test" / "26.png").unlink()
    (folder / "test" / "26.tif").write_bytes(bytes(data))
    refused_by_a_fresh_process(tmp_path, ["search", "--data", folder, "--models-dir", tmp_path / "models"],
                               folder / "test" / "26.tif", r"cannot read image \(not a TIFF file")
