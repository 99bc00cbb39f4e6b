"""Tests for vitviz.images: every odd upload becomes RGB or a readable ImageError."""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, PngImagePlugin, features

from vitviz.images import (
    MAX_PIXELS,
    MAX_SIDE,
    MIN_SIDE,
    SAMPLES,
    ImageError,
    load_image,
    load_sample,
    sample_path,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


# ---------------------------------------------------------------- helpers


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    """Save ``img`` to bytes in ``fmt``."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def close(pixel, expected, tol=0) -> bool:
    """Whether two RGB tuples match within ``tol`` per channel."""
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with a correct CRC."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A valid-looking PNG that claims ``width`` x ``height`` but holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def assert_student_sentence(message: str) -> None:
    """A message fit for a student: one sentence, no traceback or class names."""
    assert message, "empty message"
    assert "\n" not in message
    assert message[0].isupper()
    assert message.endswith((".", "!", "?")), message
    # No sentence break inside: a full stop followed by a new capitalised word.
    assert not re.search(r"[.!?]\s+[A-Z]", message[:-1]), message
    for jargon in ("Traceback", "Error", "Exception", "PIL", "BytesIO", "errno", "0x"):
        assert jargon not in message, (jargon, message)


def reject(data: bytes) -> str:
    """Assert ``load_image`` raises a proper ImageError and return its message."""
    with pytest.raises(ImageError) as info:
        load_image(data)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert_student_sentence(message)
    return message


def quadrants(size=(64, 48)) -> Image.Image:
    """An RGB image: red top-left quarter, blue elsewhere."""
    img = Image.new("RGB", size, BLUE)
    img.paste(RED, (0, 0, size[0] // 2, size[1] // 2))
    return img


# ------------------------------------------------------------ good inputs


def test_plain_rgb_png_round_trips_exactly():
    src = quadrants()
    out = load_image(encode(src, "PNG"))
    assert out.mode == "RGB"
    assert out.size == src.size
    assert np.array_equal(np.asarray(out), np.asarray(src))


def test_accepts_bytearray_and_memoryview():
    data = encode(quadrants(), "PNG")
    assert load_image(bytearray(data)).size == (64, 48)
    assert load_image(memoryview(data)).size == (64, 48)


def test_16_bit_greyscale_png_scales_full_range():
    arr = np.zeros((16, 32), np.uint16)
    arr[:, 8:16] = 32896  # 128 * 257
    arr[:, 16:] = 65535
    src = Image.fromarray(arr)
    assert src.mode == "I;16"
    data = encode(src, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")

    out = np.asarray(load_image(data))
    assert out.shape == (16, 32, 3)
    assert (out[:, :8] == 0).all()
    assert (out[:, 8:16] == 128).all()
    assert (out[:, 16:] == 255).all()


def test_32_bit_integer_tiff_outside_16_bit_range_is_stretched():
    arr = np.zeros((16, 32), np.int32)
    arr[:, 16:] = 1_000_000
    arr[:, :8] = -1_000_000
    data = encode(Image.fromarray(arr), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "I"
    out = np.asarray(load_image(data))
    assert (out[:, :8] == 0).all()
    assert np.isin(out[:, 8:16], (127, 128)).all()
    assert (out[:, 16:] == 255).all()


def test_32_bit_integer_with_8_bit_values_is_not_darkened():
    arr = np.full((16, 16), 200, np.int32)
    data = encode(Image.fromarray(arr), "TIFF")
    assert (np.asarray(load_image(data)) == 200).all()


def test_float_tiff_is_stretched_min_to_max():
    ramp = np.linspace(-1.0, 3.0, 64, dtype=np.float32)
    arr = np.tile(ramp, (16, 1))
    src = Image.fromarray(arr, "F")
    data = encode(src, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "F"

    out = np.asarray(load_image(data))
    assert out.shape == (16, 64, 3)
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, -1].tolist() == [255, 255, 255]
    # Monotonic ramp, midpoint near mid-grey: a linear stretch, not a clip.
    row = out[0, :, 0].astype(int)
    assert (np.diff(row) >= 0).all()
    assert abs(row[32] - 129) <= 3


def test_float_tiff_with_nan_does_not_break():
    arr = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (16, 1))
    arr[0, 0] = np.nan
    out = np.asarray(load_image(encode(Image.fromarray(arr, "F"), "TIFF")))
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[5, -1].tolist() == [255, 255, 255]


def test_palette_with_transparency_becomes_white():
    src = Image.new("P", (32, 16), 0)
    src.putpalette([255, 0, 0, 0, 255, 0] + [0] * (254 * 3))
    src.paste(1, (16, 0, 32, 16))
    data = encode(src, "PNG", transparency=0)
    out = load_image(data)
    assert out.mode == "RGB"
    # Index 0 is red in the palette but transparent, so must show as white.
    assert out.getpixel((2, 2)) == WHITE
    assert out.getpixel((20, 2)) == GREEN


def test_rgba_is_composited_on_white():
    src = Image.new("RGBA", (24, 8), (0, 0, 0, 0))
    src.paste((255, 0, 0, 255), (8, 0, 16, 8))
    src.paste((0, 0, 0, 128), (16, 0, 24, 8))
    out = load_image(encode(src, "PNG"))
    assert out.mode == "RGB"
    # Fully transparent black must look white, not black.
    assert out.getpixel((1, 1)) == WHITE
    assert out.getpixel((10, 1)) == RED
    assert close(out.getpixel((20, 1)), (127, 127, 127), tol=2)


def test_la_is_composited_on_white():
    src = Image.new("LA", (16, 8), (0, 0))
    src.paste((0, 255), (8, 0, 16, 8))
    out = load_image(encode(src, "PNG"))
    assert out.getpixel((1, 1)) == WHITE
    assert out.getpixel((12, 1)) == (0, 0, 0)


def test_rgb_png_with_colour_key_transparency():
    src = Image.new("RGB", (16, 8), (10, 20, 30))
    src.paste(GREEN, (8, 0, 16, 8))
    out = load_image(encode(src, "PNG", transparency=(10, 20, 30)))
    assert out.getpixel((1, 1)) == WHITE
    assert out.getpixel((12, 1)) == GREEN


def test_cmyk_jpeg_becomes_rgb():
    src = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red ink mix
    data = encode(src, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = load_image(data)
    assert out.mode == "RGB"
    assert close(out.getpixel((16, 16)), RED, tol=8)


def test_one_bit_image():
    src = Image.new("1", (16, 16), 0)
    src.paste(1, (8, 0, 16, 16))
    out = load_image(encode(src, "PNG"))
    assert out.mode == "RGB"
    assert out.getpixel((2, 2)) == (0, 0, 0)
    assert out.getpixel((12, 2)) == WHITE


def _frames():
    return [Image.new("RGB", (16, 16), colour) for colour in (RED, GREEN, BLUE)]


def test_animated_gif_first_frame():
    frames = _frames()
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    out = load_image(data)
    assert out.mode == "RGB"
    assert out.getpixel((8, 8)) == RED


def test_animated_png_first_frame():
    frames = _frames()
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert load_image(data).getpixel((8, 8)) == RED


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_animated_webp_first_frame():
    frames = _frames()
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=True)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    out = load_image(data)
    assert out.mode == "RGB"
    assert close(out.getpixel((8, 8)), RED, tol=2)


def test_exif_orientation_6_is_applied():
    src = quadrants((64, 48))  # red block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(src, "JPEG", quality=95, exif=exif)

    out = load_image(data)
    assert out.size == (48, 64)
    # After a clockwise turn the stored top-left corner is at the top-right.
    assert close(out.getpixel((40, 8)), RED, tol=40)
    assert close(out.getpixel((8, 8)), BLUE, tol=40)
    assert close(out.getpixel((40, 56)), BLUE, tol=40)


def test_moderately_large_png_is_downscaled_keeping_aspect():
    src = Image.new("RGB", (3000, 1500), GREEN)
    out = load_image(encode(src, "PNG"))
    assert out.size == (MAX_SIDE, MAX_SIDE // 2)
    assert out.getpixel((500, 250)) == GREEN


@pytest.fixture(scope="module")
def jpeg_24mp() -> bytes:
    """A 6000 x 4000 JPEG with a gradient plus noise, like a busy photo."""
    rng = np.random.default_rng(0)
    h, w = 4000, 6000
    y = np.linspace(0, 200, h, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 55, w, dtype=np.float32)[None, :, None]
    arr = y + x + rng.normal(0, 12, (h, w, 3)).astype(np.float32)
    arr[: h // 2, : w // 2] = (230, 30, 30)  # a red top-left quarter, for orientation
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    return encode(img, "JPEG", quality=90)


def test_24_megapixel_jpeg_is_accepted_and_decoded_at_a_reduced_scale(jpeg_24mp, monkeypatch):
    """The expensive full-size decode is skipped: libjpeg decodes at 1/4 scale (draft), then Lanczos shrinks to
    MAX_SIDE. What this costs in time is in bench/bench_images.py, not asserted here (it depends on the machine)."""
    decoded_sizes = []
    real_load = ImageFile.ImageFile.load

    def recording_load(self, *args, **kwargs):
        decoded_sizes.append(self.size)
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    out = load_image(jpeg_24mp)
    assert set(decoded_sizes) == {(1500, 1000)}  # 6000 × 4000 at the largest DCT scale still ≥ 1024 px
    assert out.mode == "RGB"
    assert out.size == (MAX_SIDE, 683)
    # Gradient survives: top darker than bottom.
    arr = np.asarray(out).astype(int)
    assert arr[-10:, -10:].mean() > arr[:10, -10:].mean() + 100


def test_24_megapixel_jpeg_uses_reduced_dct_decode(jpeg_24mp, monkeypatch):
    # Decoding at 1/2..1/8 scale inside libjpeg is what keeps big photos fast;
    # check the decoder was asked for it and that the result stays >= MAX_SIDE.
    from PIL import JpegImagePlugin

    decoded_sizes = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        decoded_sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    assert load_image(jpeg_24mp).size == (MAX_SIDE, 683)
    assert len(decoded_sizes) == 1
    width, height = decoded_sizes[0]
    assert MAX_SIDE <= width <= 6000 // 2 and height < 4000


def test_24_megapixel_jpeg_with_exif_rotation(jpeg_24mp):
    img = Image.open(io.BytesIO(jpeg_24mp))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(img, "JPEG", quality=80, exif=exif)
    out = load_image(data)
    assert out.size == (683, MAX_SIDE)
    # The red stored top-left quarter ends up top-right.
    assert close(out.getpixel((600, 100)), (230, 30, 30), tol=25)
    r, g, b = out.getpixel((100, 100))
    assert abs(r - g) < 40


def test_small_but_valid_image_is_kept_at_native_size():
    out = load_image(encode(Image.new("RGB", (MIN_SIDE, MIN_SIDE), GREEN), "PNG"))
    assert out.size == (MIN_SIDE, MIN_SIDE)


def _with_text(img: Image.Image, before_idat: bytes = b"", after_idat: bytes = b"") -> bytes:
    """``img`` as PNG with extra chunks spliced in before the first IDAT and before IEND."""
    data = encode(img, "PNG")
    idat, iend = data.index(b"IDAT") - 4, data.index(b"IEND") - 4
    return data[:idat] + before_idat + data[idat:iend] + after_idat + data[iend:]


def _ztxt(keyword: bytes, text_size: int) -> bytes:
    return png_chunk(b"zTXt", keyword + b"\x00\x00" + zlib.compress(b"x" * text_size, 9))


_HUGE_TEXT = PngImagePlugin.MAX_TEXT_CHUNK + 1


@pytest.mark.parametrize(
    "before, after",
    [
        (_ztxt(b"workflow", _HUGE_TEXT), b""),
        (b"", _ztxt(b"notes", _HUGE_TEXT)),  # text after the pixels fails inside load(), not open()
        (png_chunk(b"iTXt", b"prompt\x00\x01\x00en\x00\x00" + zlib.compress(b"y" * _HUGE_TEXT)), b""),
        # Each chunk is within MAX_TEXT_CHUNK, together they pass MAX_TEXT_MEMORY.
        (b"".join(_ztxt(b"c%d" % i, PngImagePlugin.MAX_TEXT_CHUNK - 1)
                  for i in range(PngImagePlugin.MAX_TEXT_MEMORY // PngImagePlugin.MAX_TEXT_CHUNK + 2)), b""),
    ],
    ids=["ztxt-over-chunk-limit", "ztxt-after-idat", "itxt-over-chunk-limit", "over-text-memory"],
)
def test_png_with_oversized_text_metadata_still_loads(before, after):
    data = _with_text(quadrants(), before, after)
    with pytest.raises(ValueError):  # Pillow alone refuses it, so the case is real
        Image.open(io.BytesIO(data)).load()
    out = load_image(data)
    assert out.mode == "RGB" and out.size == (64, 48)
    assert out.getpixel((5, 5)) == RED and out.getpixel((60, 40)) == BLUE
    assert PngImagePlugin.MAX_TEXT_CHUNK == ImageFile.SAFEBLOCK  # Pillow's limit was not raised


def test_png_with_oversized_text_and_cut_pixels_is_still_called_damaged():
    data = _with_text(Image.fromarray(np.random.default_rng(4).integers(0, 255, (64, 64, 3), np.uint8)),
                      _ztxt(b"workflow", _HUGE_TEXT))
    msg = reject(data[: len(data) - 3000])
    assert "PNG" in msg and ("damaged" in msg or "incomplete" in msg)


def test_png_small_text_metadata_is_kept():
    # Text chunks are only dropped after a failure: normally they (and any orientation in them) survive.
    out = load_image(_with_text(quadrants(), png_chunk(b"tEXt", b"Comment\x00hello")))
    assert out.info.get("Comment") == "hello"


# ------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("data", [b"", b"   \n\t "], ids=["empty", "whitespace"])
def test_empty_file(data):
    assert "empty" in reject(data)


def test_plain_text_renamed():
    msg = reject(b"hello, this is my homework\nline two\n" * 20)
    assert "text file" in msg


def test_html_renamed_to_png():
    html = b"<!DOCTYPE html>\n<html><head><title>cat</title></head><body><img src='cat.png'></body></html>"
    assert "HTML" in reject(html)
    assert "HTML" in reject(b"\n\n  <html lang='en'><body>hi</body></html>")


@pytest.mark.parametrize(
    "svg",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
        b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- editor -->\n'
        b'<svg xmlns="http://www.w3.org/2000/svg"></svg>',
    ],
    ids=["bare", "xml-declaration"],
)
def test_svg(svg):
    msg = reject(svg)
    assert "SVG" in msg and "PNG" in msg


def test_xhtml_with_inline_svg_is_called_a_web_page():
    page = (
        b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body>'
        b'<svg width="4" height="4"></svg></body></html>'
    )
    msg = reject(page)
    assert "HTML" in msg and "SVG" not in msg


def test_truncated_png():
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)), "PNG")
    msg = reject(data[: len(data) // 2])
    assert "PNG" in msg and ("damaged" in msg or "incomplete" in msg)


def test_truncated_jpeg():
    rng = np.random.default_rng(2)
    data = encode(Image.fromarray(rng.integers(0, 255, (256, 256, 3), np.uint8)), "JPEG")
    msg = reject(data[: len(data) // 2])
    assert "JPEG" in msg and ("damaged" in msg or "incomplete" in msg)


def test_png_cut_inside_header():
    data = encode(quadrants(), "PNG")
    msg = reject(data[:20])
    assert "PNG" in msg


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any pixel data is decoded (ImageFile.load is the entry)."""
    calls = []

    def forbidden(self, *args, **kwargs):
        calls.append(self.size)
        raise AssertionError(f"pixels were decoded for a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
    return calls


@pytest.mark.parametrize(
    "size",
    [
        (8000, 7500),  # 60 MP: below Pillow's own warning, only our limit catches it
        (10_000, 10_000),  # 100 MP: Pillow would merely warn
        (100_000, 100_000),  # 10 GP: Pillow's DecompressionBombError
    ],
    ids=["60MP", "100MP", "10GP"],
)
def test_decompression_bomb_rejected_before_decoding(size, no_decoding):
    data = png_header_only(*size)
    assert len(data) < 200
    assert size[0] * size[1] > MAX_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        msg = reject(data)
    assert no_decoding == []  # refused from the header alone, so it costs no decoding time
    # Pillow's own bomb warning is handled, not printed at the student.
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert "megapixel" in msg


def test_bomb_check_does_not_touch_global_pillow_limit():
    before = Image.MAX_IMAGE_PIXELS
    reject(png_header_only(8000, 7500))
    assert Image.MAX_IMAGE_PIXELS == before


def test_just_under_pixel_limit_header_is_not_called_a_bomb():
    # Same tiny file but within budget: it fails later, as truncated data,
    # which proves the size guard is a threshold and not "anything big".
    msg = reject(png_header_only(6000, 4000))
    assert "megapixel" not in msg
    assert "damaged" in msg or "incomplete" in msg


@pytest.mark.parametrize("size", [(0, 10), (10, 0)])
def test_zero_size_png(size):
    assert "no pixels" in reject(png_header_only(*size))


@pytest.mark.parametrize("size", [(4, 100), (100, 7), (1, 1)])
def test_too_small(size):
    msg = reject(encode(Image.new("RGB", size, RED), "PNG"))
    assert "too small" in msg and str(MIN_SIDE) in msg


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    payload = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    box = struct.pack(">I", 8 + len(payload)) + b"ftyp" + payload
    return box + struct.pack(">I", 16) + b"meta" + b"\x00" * 8 + b"\x00" * 200


@pytest.mark.parametrize(
    "data, expected",
    [
        (_ftyp(b"heic", b"mif1", b"heic"), "HEIC"),
        (_ftyp(b"mif1", b"mif1", b"heic"), "HEIC"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 100, "ZIP"),
        (_ftyp(b"isom", b"isom", b"mp41"), "video"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + b"\x00" * 64, "JPEG XL"),
        (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 64, "RAR"),
    ],
    ids=["heic", "heif-mif1", "pdf", "zip", "mp4", "jxl", "rar"],
)
def test_unsupported_formats_are_named(data, expected):
    msg = reject(data)
    assert expected in msg
    if expected in {"HEIC", "JPEG XL"}:
        assert "JPEG or PNG" in msg or "PNG or JPEG" in msg


def test_random_binary_garbage():
    data = bytes(np.random.default_rng(3).integers(0, 256, 500, dtype=np.uint8))
    msg = reject(data)
    assert "PNG or JPEG" in msg


def test_non_bytes_is_a_programming_error():
    with pytest.raises(TypeError):
        load_image("cat.png")  # type: ignore[arg-type]


# ---------------------------------------------------------------- samples


def test_samples_defined():
    assert len(SAMPLES) == 4
    assert len(set(SAMPLES.values())) == 4


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_loads_as_rgb(name):
    path = sample_path(name)
    assert path.is_file()
    assert path.stat().st_size < 300_000
    img = load_sample(name)
    assert img.mode == "RGB"
    assert min(img.size) >= MIN_SIDE and max(img.size) <= MAX_SIDE


def test_samples_include_landscape_and_portrait():
    shapes = [load_sample(n).size for n in SAMPLES]
    assert any(w > h for w, h in shapes)
    assert any(h > w for w, h in shapes)


def test_attribution_mentions_each_sample():
    attribution = (sample_path(next(iter(SAMPLES))).parent / "ATTRIBUTION.md").read_text("utf-8")
    for filename in SAMPLES.values():
        assert f"`{filename}`" in attribution
    for licence in ("CC0", "ublic domain"):
        assert licence in attribution


def test_unknown_sample_name():
    with pytest.raises(ImageError) as info:
        sample_path("unicorn")
    assert_student_sentence(str(info.value))
    with pytest.raises(ImageError):
        load_sample("unicorn")
