"""metadata: true extracts JSON-safe EXIF (GPS in decimal degrees, ISO 8601 dates, no raw
bytes), the ICC description and format facts. Outputs carry no EXIF/XMP/GPS unless
keep_metadata, which resets the orientation to 1."""

from __future__ import annotations

import io
import json

import pytest
from PIL import ExifTags, Image, ImageCms
from PIL.TiffImagePlugin import IFDRational

from pixtools.imaging import CorruptImage, extract_metadata, render_output
from pixtools.jobspec.ops import Convert, KeepMetadata, OutputFormat, Resize
from tests.support.images import MAX_PIXELS, encode, photo

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/" tiff:Orientation="6" dc:rights="(c) Ada">'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def camera_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS R5\x00"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.DateTime] = "2024:05:01 12:34:56"
    exif[ExifTags.Base.XResolution] = IFDRational(300, 1)
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = "2024:05:01 10:00:00"
    sub[ExifTags.Base.OffsetTimeOriginal] = "+02:00"
    sub[ExifTags.Base.SubsecTimeOriginal] = "25"
    sub[ExifTags.Base.ExposureTime] = IFDRational(1, 250)
    sub[ExifTags.Base.FNumber] = IFDRational(28, 10)
    sub[ExifTags.Base.ISOSpeedRatings] = 400
    sub[ExifTags.Base.ExifVersion] = b"0232"
    sub[ExifTags.Base.MakerNote] = b"\x00\x01secret-binary" * 50
    sub[ExifTags.Base.UserComment] = b"ASCII\x00\x00\x00holiday"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (IFDRational(33, 1), IFDRational(51, 1), IFDRational(3564, 100))
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (IFDRational(151, 1), IFDRational(12, 1), IFDRational(3, 1))
    gps[ExifTags.GPS.GPSAltitudeRef] = b"\x00"
    gps[ExifTags.GPS.GPSAltitude] = IFDRational(585, 10)
    gps[ExifTags.GPS.GPSDateStamp] = "2024:05:01"
    gps[ExifTags.GPS.GPSTimeStamp] = (IFDRational(8, 1), IFDRational(0, 1), IFDRational(30, 1))
    return exif


@pytest.fixture(scope="module")
def camera_jpeg() -> bytes:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(photo((96, 64)), "JPEG", exif=camera_exif(), icc_profile=srgb, xmp=XMP)


def test_extract_metadata_is_json_safe_and_readable(camera_jpeg: bytes) -> None:
    meta = extract_metadata(camera_jpeg)
    assert json.loads(json.dumps(meta)) == meta  # JSON-safe all the way down
    assert meta["format"] == "jpeg" and meta["content_type"] == "image/jpeg"
    assert (meta["width"], meta["height"], meta["orientation"]) == (64, 96, 6)
    assert meta["frames"] == 1 and meta["animated"] is False and meta["mode"] == "RGB"
    assert meta["icc_profile"] == "sRGB built-in"
    assert meta["has_xmp"] is True
    exif = meta["exif"]
    assert exif["Make"] == "Canon" and exif["Model"] == "EOS R5"
    assert exif["DateTime"] == "2024-05-01T12:34:56"
    assert exif["DateTimeOriginal"] == "2024-05-01T10:00:00.25+02:00"
    assert exif["ExposureTime"] == pytest.approx(0.004)
    assert exif["FNumber"] == pytest.approx(2.8)
    assert exif["ISOSpeedRatings"] == 400
    assert exif["ExifVersion"] == "0232"
    assert exif["UserComment"] == "holiday"
    assert "MakerNote" not in exif  # binary: not dumped
    gps = exif["GPS"]
    assert gps["latitude"] == pytest.approx(-(33 + 51 / 60 + 35.64 / 3600), abs=1e-6)
    assert gps["longitude"] == pytest.approx(151 + 12 / 60 + 3 / 3600, abs=1e-6)
    assert gps["altitude"] == pytest.approx(58.5)
    assert gps["timestamp"] == "2024-05-01T08:00:30Z"
    assert not any(isinstance(v, bytes) for v in exif.values())


def test_metadata_of_an_image_without_any() -> None:
    meta = extract_metadata(encode(Image.new("RGBA", (5, 7)), "PNG"))
    assert meta["exif"] == {} and meta["icc_profile"] is None and meta["has_alpha"] is True
    assert (meta["width"], meta["height"]) == (5, 7)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_malformed_exif_is_left_out_not_an_error() -> None:
    data = encode(
        photo((32, 32)), "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + b"\x00" * 20
    )
    meta = extract_metadata(data)
    assert isinstance(meta["exif"], dict)
    out = render_output(data, [KeepMetadata(), Convert(format="jpeg")], max_pixels=MAX_PIXELS)
    assert out.data is not None


def _reopened(data: bytes | None) -> Image.Image:
    assert data is not None
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "tiff"])
def test_outputs_carry_no_exif_xmp_or_gps_by_default(camera_jpeg: bytes, fmt: OutputFormat) -> None:
    out = render_output(
        camera_jpeg,
        [Resize(width=48), Convert(format=fmt)],
        max_pixels=MAX_PIXELS,
    )
    im = _reopened(out.data)
    tags = set(im.getexif())  # a TIFF's own structural tags are its "EXIF" too
    assert not tags & {ExifTags.Base.Make, ExifTags.Base.Model, ExifTags.Base.DateTime}
    assert not tags & {ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.Base.Orientation}
    assert not im.info.get("xmp") and not im.info.get("XML:com.adobe.xmp")
    assert b"Canon" not in out.data  # type: ignore[operator]
    assert b"secret-binary" not in out.data  # type: ignore[operator]
    assert (out.width, out.height) == (48, 72)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "tiff"])
def test_keep_metadata_copies_exif_with_orientation_reset(
    camera_jpeg: bytes, fmt: OutputFormat
) -> None:
    out = render_output(
        camera_jpeg,
        [KeepMetadata(), Resize(width=48), Convert(format=fmt)],
        max_pixels=MAX_PIXELS,
    )
    im = _reopened(out.data)
    exif = im.getexif()
    assert exif.get(ExifTags.Base.Make) == "Canon"
    assert exif.get(ExifTags.Base.Orientation, 1) == 1
    assert exif.get_ifd(ExifTags.IFD.GPSInfo).get(ExifTags.GPS.GPSLatitudeRef) == "S"
    assert im.size == (48, 72)  # upright, and no viewer will rotate it again
    if fmt in ("jpeg", "webp", "png"):
        xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        assert xmp and b"(c) Ada" in (xmp if isinstance(xmp, bytes) else xmp.encode())
        assert b"tiff:Orientation" not in (xmp if isinstance(xmp, bytes) else xmp.encode())


def test_a_probed_gifs_frames_are_not_walked_again_for_its_metadata() -> None:
    """#14.8: with ``metadata: true`` the submission walked a GIF's blocks a second time;
    given the probe's count, only the first frame is checked (bytes after it are not read)."""
    frames = [Image.new("P", (8, 8), i) for i in range(40)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], optimize=False)
    counted = extract_metadata(gif)
    assert counted["frames"] == 40 and counted["animated"] is True
    assert extract_metadata(gif, frames=40) == counted
    cut = gif[: len(gif) * 3 // 4]  # frame 0 whole, a later one cut: walking to the end fails
    with pytest.raises(CorruptImage):
        extract_metadata(cut)
    assert extract_metadata(cut, frames=40) == counted
