"""DICOM scans (.dcm) read with pydicom: stored values of the first frame, 16-bit ones by the competition's
significant bits, MONOCHROME1 inverted, signed values shifted, colour as RGB, RLE compression decoded; anything
else one line naming the file, with nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_hostile_data import refused_in_process, submit_arguments, workspace_around
from test_images import image_folder, pixels_of

from kaggle_pipeline.data import load_competition

GRADIENT12 = np.linspace(0, 4095, 16).round().astype(np.uint16).reshape(4, 4)


def dicom_dataset(pixels: np.ndarray, bits_stored: int | None = None, photometric: str | None = None,
                  signed: bool = False, frames: int = 1):
    """An uncompressed DICOM dataset holding ``pixels`` ((frames,) rows, columns(, 3)) as stored values."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    colour = pixels.shape[-1] == 3 and pixels.ndim == (4 if frames > 1 else 3)
    shape = pixels.shape[1:] if frames > 1 else pixels.shape
    dataset.Rows, dataset.Columns = shape[:2]
    if frames > 1:
        dataset.NumberOfFrames = frames
    dataset.SamplesPerPixel = 3 if colour else 1
    if colour:
        dataset.PlanarConfiguration = 0
    dataset.PhotometricInterpretation = photometric or ("RGB" if colour else "MONOCHROME2")
    dataset.BitsAllocated = pixels.dtype.itemsize * 8
    dataset.BitsStored = bits_stored or dataset.BitsAllocated
    dataset.HighBit = dataset.BitsStored - 1
    dataset.PixelRepresentation = int(signed)
    dataset.PixelData = pixels.tobytes()
    return dataset


def put_dicom(folder: Path, relative: str, dataset) -> Path:
    """``dataset`` saved in place of ``relative`` (a .png), as .dcm."""
    old = folder / relative
    old.unlink()
    path = old.with_suffix(".dcm")
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_a_12_bit_scan_in_dicom_reads_by_its_significant_bits(tmp_path):
    folder = image_folder(tmp_path / "scans")
    put_dicom(folder, "train/2.png", dicom_dataset(GRADIENT12, bits_stored=12))
    put_dicom(folder, "test/26.png", dicom_dataset(GRADIENT12 // 2, bits_stored=12))
    competition = load_competition(folder)
    expected = np.rint(GRADIENT12 * (255 / 4095)).astype(np.uint8)
    np.testing.assert_array_equal(pixels_of(competition, "train/2.png")[..., 0], expected)
    # One range for the competition: the darker test scan stays darker.
    np.testing.assert_array_equal(pixels_of(competition, "test/26.png")[..., 0],
                                  np.rint((GRADIENT12 // 2) * (255 / 4095)).astype(np.uint8))


def test_monochrome1_is_inverted_and_signed_values_are_shifted(tmp_path):
    inverted = image_folder(tmp_path / "inverted")
    put_dicom(inverted, "train/2.png", dicom_dataset(4095 - GRADIENT12, bits_stored=12, photometric="MONOCHROME1"))
    signed = image_folder(tmp_path / "signed")  # a CT's stored values, -2048..2047
    put_dicom(signed, "train/2.png", dicom_dataset((GRADIENT12.astype(np.int16) - 2048), bits_stored=12, signed=True))
    expected = np.rint(GRADIENT12 * (255 / 4095)).astype(np.uint8)
    for folder in (inverted, signed):
        np.testing.assert_array_equal(pixels_of(load_competition(folder), "train/2.png")[..., 0], expected)


def test_colour_rle_and_multi_frame_dicom_load_like_the_png(tmp_path):
    from PIL import Image
    from pydicom.uid import RLELossless

    clean = load_competition(image_folder(tmp_path / "png"))
    folder = image_folder(tmp_path / "dicom")
    with Image.open(folder / "train/3.png") as image:
        colour = np.asarray(image.convert("RGB"))
    with Image.open(folder / "test/27.png") as image:
        second = np.asarray(image.convert("RGB"))
    put_dicom(folder, "train/3.png", dicom_dataset(colour))
    compressed = dicom_dataset(second)
    compressed.compress(RLELossless)
    put_dicom(folder, "test/27.png", compressed)
    with Image.open(folder / "test/28.png") as image:
        third = np.asarray(image.convert("RGB"))
    put_dicom(folder, "test/28.png", dicom_dataset(np.stack([third, 255 - third]), frames=2))
    competition = load_competition(folder)
    np.testing.assert_array_equal(competition.x_train, clean.x_train)
    np.testing.assert_array_equal(competition.x_test, clean.x_test)


def test_jpeg_and_jpeg_2000_compressed_dicom_decode_through_pillow(tmp_path):
    """The compressed syntaxes SIIM-ISIC and many scanners write: JPEG baseline colour (YBR) and lossless
    JPEG 2000 of a 12-bit scan, decoded by pydicom's Pillow plugin (no extra decoder)."""
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit

    folder = image_folder(tmp_path / "compressed")
    colour = (np.random.default_rng(0).random((4, 4, 3)) * 255).astype(np.uint8)
    photo = io.BytesIO()
    Image.fromarray(colour).save(photo, format="JPEG", quality=95)
    dataset = dicom_dataset(colour)
    dataset.file_meta.TransferSyntaxUID, dataset.PhotometricInterpretation = JPEGBaseline8Bit, "YBR_FULL_422"
    dataset.PixelData = encapsulate([photo.getvalue()])
    put_dicom(folder, "train/3.png", dataset)
    scan = io.BytesIO()
    Image.fromarray(GRADIENT12).save(scan, format="JPEG2000", irreversible=False, no_jp2=True)
    dataset = dicom_dataset(GRADIENT12, bits_stored=12)
    dataset.file_meta.TransferSyntaxUID = JPEG2000Lossless
    dataset.PixelData = encapsulate([scan.getvalue()])
    put_dicom(folder, "test/26.png", dataset)
    competition = load_competition(folder)
    decoded = np.asarray(Image.open(io.BytesIO(photo.getvalue())).convert("RGB")).astype(int)
    assert np.abs(pixels_of(competition, "train/3.png").astype(int) - decoded).max() <= 2
    np.testing.assert_array_equal(pixels_of(competition, "test/26.png")[..., 0].astype(int),
                                  np.rint(GRADIENT12 * (255 / 4095)))


def dataset_without(element: str):
    def damage(dataset):
        delattr(dataset, element)
        return dataset
    return damage


def with_values(**values):
    def change(dataset):
        for name, value in values.items():
            setattr(dataset, name, value)
        return dataset
    return change


def jpeg_ls(dataset):
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless

    dataset.file_meta.TransferSyntaxUID = JPEGLSLossless
    dataset.PixelData = encapsulate([b"\xff\xd8not a scan\xff\xd9"])
    return dataset


REFUSED = {
    "no-pixel-data": (dataset_without("PixelData"), "no pixel data|Pixel Data"),
    "no-rows": (dataset_without("Rows"), "a DICOM file without an image"),
    "declares-a-bomb": (with_values(Rows=60000, Columns=60000), "declares 3,600,000,000 pixels"),
    "pixel-data-cut-short": (with_values(PixelData=b"\0" * 10), "DICOM: The number of bytes of pixel data is less"),
    "palette-colour": (with_values(PhotometricInterpretation="PALETTE COLOR"), "PALETTE COLOR photometric"),
    "32-bit": (with_values(BitsAllocated=32, BitsStored=32, HighBit=31), "32 bits allocated"),
    "more-bits-stored-than-allocated": (with_values(BitsStored=20), "'Bits Stored' value of '20' is invalid"),
    "jpeg-ls-without-a-decoder": (jpeg_ls, "DICOM compressed as JPEG-LS Lossless.*pip install pylibjpeg"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_dicom_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    damage, problem = REFUSED[case]
    folder = image_folder(tmp_path / "bad")
    path = put_dicom(folder, "train/4.png", damage(dicom_dataset(GRADIENT12, bits_stored=12)))
    models, submissions = workspace_around(tmp_path)
    refused_in_process(tmp_path, capsys, submit_arguments(folder, models, submissions), path, problem)


@pytest.mark.parametrize("content", [b"hello", b"", b"\x89PNG\r\n\x1a\n", b"\0" * 128 + b"DICM" + b"\xff" * 40])
def test_a_file_named_dcm_that_is_not_dicom_is_one_line(content, tmp_path, capsys):
    folder = image_folder(tmp_path / "bad")
    (folder / "test" / "29.png").unlink()
    (folder / "test" / "29.dcm").write_bytes(content)
    models, submissions = workspace_around(tmp_path)
    refused_in_process(tmp_path, capsys, submit_arguments(folder, models, submissions), folder / "test" / "29.dcm",
                       "cannot read image")
