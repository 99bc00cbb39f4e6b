"""The bad-input corpus: files students really produce, built in memory, byte-for-byte the same on every run.

One shared list for both test layers: tests/test_bad_inputs.py runs every case through ``load_image`` and then
through the real sidebar uploader in Chromium. Each case says how it is uploaded (file name, the MIME type the
browser claims) and what must happen: :class:`Loads` (an RGB picture of a known size) or :class:`Rejects` (an
``ImageError`` whose one-sentence message contains the given words).

Everything is generated here with Pillow, numpy, zlib and struct: no network, no files on disk, no new
dependencies. Random content uses fixed seeds; formats Pillow cannot write (HEIC, PSD, APNG chunks aside) are
assembled by hand from their published layouts.
"""
from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, PngImagePlugin

from .apptest import photo_image

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)


@dataclass(frozen=True)
class Loads:
    """``load_image`` returns an RGB image of ``size`` (width, height); ``probe`` optionally pins one pixel."""

    size: tuple[int, int]
    probe: tuple[tuple[int, int], tuple[int, int, int]] | None = None  # ((x, y), rgb), compared within ±24


@dataclass(frozen=True)
class Rejects:
    """``load_image`` raises ImageError; every one of ``words`` appears in its message."""

    words: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    name: str  # test id
    filename: str  # the name the student's file has (its extension may lie)
    data: bytes
    mime: str  # the MIME type the browser sends (may differ from the content)
    expect: Loads | Rejects
    source: str = "upload"  # "upload" or "camera" (a camera capture cannot be faked empty in a browser)

    def __repr__(self) -> str:  # keep pytest output readable: no kilobytes of bytes
        return f"Case({self.name!r}, {self.filename!r}, {len(self.data)} bytes, {self.mime!r}, {self.expect})"


# ------------------------------------------------------------------ encoders


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def quadrants(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """Red top-left quarter on blue: makes rotations and frame choices visible in one pixel."""
    img = Image.new("RGB", size, BLUE)
    img.paste(RED, (0, 0, size[0] // 2, size[1] // 2))
    return img


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_with_chunks(img: Image.Image, before_idat: Sequence[bytes] = (), after_idat: Sequence[bytes] = ()) -> bytes:
    """Encode ``img`` as PNG and splice extra (already framed) chunks in before the first IDAT and before IEND."""
    data = encode(img, "PNG")
    first_idat = data.index(b"IDAT") - 4
    iend = data.index(b"IEND") - 4
    return data[:first_idat] + b"".join(before_idat) + data[first_idat:iend] + b"".join(after_idat) + data[iend:]


def ztxt(keyword: bytes, compressed: bytes) -> bytes:
    return png_chunk(b"zTXt", keyword + b"\x00\x00" + compressed)


def itxt_compressed(keyword: bytes, compressed: bytes) -> bytes:
    # keyword \0, compression flag 1, method 0, language tag \0, translated keyword \0, text
    return png_chunk(b"iTXt", keyword + b"\x00\x01\x00" + b"en\x00" + b"\x00" + compressed)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height but holds almost no pixel data (a decompression-bomb header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b"")


def png_blank_1bit(width: int, height: int) -> bytes:
    """A complete, valid, all-black 1-bit PNG: huge dimensions, a few kilobytes on disk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def ftyp_heic() -> bytes:
    """The start of an iPhone HEIC: an ISO-BMFF ftyp box (brand heic, compatible mif1/heic) and a meta box."""
    payload = b"heic" + b"\x00\x00\x00\x00" + b"mif1" + b"heic"
    return struct.pack(">I", 8 + len(payload)) + b"ftyp" + payload + struct.pack(">I", 16) + b"meta" + b"\x00" * 8 + b"\x00" * 400


def psd_rgb(img: Image.Image) -> bytes:
    """A minimal valid Photoshop file: 8-bit RGB, no colour table, resources or layers, raw planar image data."""
    w, h = img.size
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, h, w, 8, 3)  # version 1, 3 channels, depth 8, mode RGB
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, image resources, layer and mask info: empty
    planes = b"".join(band.tobytes() for band in img.split())  # R plane, G plane, B plane
    return header + sections + struct.pack(">H", 0) + planes  # compression 0: raw


def jpeg_with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", quality=95, exif=exif.tobytes())


def animation(fmt: str) -> bytes:
    frames = [Image.new("RGB", (40, 30), colour) for colour in (RED, GREEN, BLUE)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


# -------------------------------------------------------------------- cases


def good_photo() -> tuple[str, bytes]:
    """The ordinary photo a session starts with (name, JPEG bytes)."""
    return "holiday.jpg", encode(photo_image(480, 320, seed=7), "JPEG", quality=90)


@functools.cache
def cases() -> tuple[Case, ...]:
    """Every case, in the order the browser test uploads them."""
    photo = photo_image(seed=1)
    photo_jpeg = encode(photo, "JPEG", quality=90)
    shot_png = encode(quadrants((120, 80)), "PNG")
    noisy = Image.fromarray(np.random.default_rng(2).integers(0, 255, (200, 200, 3), np.uint8))
    big_text = zlib.compress(b"A" * (PngImagePlugin.MAX_TEXT_CHUNK * 2), 9)  # decompresses past MAX_TEXT_CHUNK
    # Just under MAX_TEXT_CHUNK each (one chunk alone is fine) but together past MAX_TEXT_MEMORY.
    chunk_text = zlib.compress(b"B" * (PngImagePlugin.MAX_TEXT_CHUNK - 1024), 9)
    n_chunks = PngImagePlugin.MAX_TEXT_MEMORY // (PngImagePlugin.MAX_TEXT_CHUNK - 1024) + 2
    many_text = [ztxt(b"comment%d" % i, chunk_text) for i in range(n_chunks)]
    with_text = quadrants((64, 48))
    docx = (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + b"[Content_Types].xml" + b"\x00" * 200)
    pdf = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
           b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
    html = (b"<!DOCTYPE html>\n<html><head><title>Cute cat - Google Search</title></head>\n"
            b"<body><img src=\"https://example.org/cat.png\"></body></html>\n")
    svg = (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
           b'<circle cx="50" cy="50" r="40" fill="red"/></svg>\n')
    empty = Rejects(("empty",))
    damaged = ("damaged", "incomplete")
    cmyk = Image.new("CMYK", (48, 32), (0, 255, 255, 0))  # pure red in CMYK
    wide16 = np.zeros((40, 64), np.uint16)
    wide16[:, 32:] = 65535  # white right half: 16-bit values must be scaled down, not clipped or wrapped

    return (
        # Formats phones and editors save that the app may not read.
        Case("heic_iphone", "IMG_4032.HEIC", ftyp_heic(), "image/heic", Rejects(("HEIC", "JPEG", "PNG"))),
        Case("psd_rgb", "poster.psd", psd_rgb(quadrants((60, 40))), "image/vnd.adobe.photoshop",
             Loads((60, 40), ((5, 5), RED))),
        Case("ico_16_only", "favicon.ico", encode(Image.new("RGB", (16, 16), GREEN), "ICO"), "image/x-icon",
             Loads((16, 16), ((8, 8), GREEN))),
        Case("ico_4_only", "tiny.ico", encode(Image.new("RGB", (4, 4), GREEN), "ICO", sizes=[(4, 4)]), "image/x-icon",
             Rejects(("too small", "4 x 4"))),
        Case("ico_64", "app-icon.ico", encode(quadrants((64, 64)), "ICO"), "image/vnd.microsoft.icon",
             Loads((64, 64), ((5, 5), RED))),
        # PNG metadata past Pillow's text limits: the pixels are fine and must still load.
        Case("png_ztxt_over_chunk_limit", "comfy.png", png_with_chunks(with_text, [ztxt(b"workflow", big_text)]),
             "image/png", Loads((64, 48), ((5, 5), RED))),
        Case("png_itxt_over_chunk_limit", "xmp.png", png_with_chunks(with_text, [itxt_compressed(b"prompt", big_text)]),
             "image/png", Loads((64, 48), ((5, 5), RED))),
        Case("png_ztxt_after_idat", "late-text.png", png_with_chunks(with_text, after_idat=[ztxt(b"notes", big_text)]),
             "image/png", Loads((64, 48), ((5, 5), RED))),
        Case("png_many_text_chunks", "chatty.png", png_with_chunks(with_text, many_text), "image/png",
             Loads((64, 48), ((5, 5), RED))),
        # The extension lies.
        Case("jpeg_named_png", "photo.png", photo_jpeg, "image/png", Loads((320, 200))),
        Case("png_named_jpg", "screenshot.jpg", shot_png, "image/jpeg", Loads((120, 80), ((5, 5), RED))),
        Case("pdf_named_jpg", "scan.jpg", pdf, "image/jpeg", Rejects(("PDF",))),
        Case("html_named_png", "cat.png", html, "image/png", Rejects(("web page", "HTML"))),
        # The MIME type the browser sends lies (or says nothing useful).
        Case("png_as_octet_stream", "export.png", shot_png, "application/octet-stream", Loads((120, 80))),
        Case("jpeg_as_text_plain", "img.jpg", photo_jpeg, "text/plain", Loads((320, 200))),
        Case("docx_as_image_jpeg", "homework.jpg", docx, "image/jpeg", Rejects(("ZIP", "Office"))),
        # Nothing there.
        Case("empty_upload", "IMG_0001.jpg", b"", "image/jpeg", empty),
        Case("empty_camera", "image.jpg", b"", "image/jpeg", empty, source="camera"),
        # Cut short by a flaky upload or download.
        Case("truncated_jpeg", "half.jpg", encode(noisy, "JPEG")[: len(encode(noisy, "JPEG")) // 2], "image/jpeg",
             Rejects(("JPEG", *damaged))),
        Case("truncated_png", "half.png", encode(noisy, "PNG")[: len(encode(noisy, "PNG")) // 2], "image/png",
             Rejects(("PNG", *damaged))),
        # Claims to be gigantic.
        Case("bomb_header", "bomb.png", png_header_only(100_000, 100_000), "image/png", Rejects(("megapixel",))),
        Case("huge_dims_small_file", "blank.png", png_blank_1bit(8000, 7000), "image/png",
             Rejects(("8000 x 7000", "megapixel"))),
        Case("large_dims_within_limit", "poster-scan.png", png_blank_1bit(6000, 4000), "image/png",
             Loads((1024, 683), ((500, 300), (0, 0, 0)))),
        # Not pictures at all.
        Case("svg_drawing", "logo.svg", svg, "image/svg+xml", Rejects(("SVG",))),
        Case("plain_text", "notes.jpg", b"Lecture 3: attention is all you need\n" * 30, "image/jpeg",
             Rejects(("text file",))),
        # Real pictures with awkward insides.
        Case("gif_animation", "dance.gif", animation("GIF"), "image/gif", Loads((40, 30), ((20, 15), RED))),
        Case("apng_animation", "spinner.png", animation("PNG"), "image/apng", Loads((40, 30), ((20, 15), RED))),
        Case("cmyk_jpeg", "print.jpg", encode(cmyk, "JPEG", quality=95), "image/jpeg", Loads((48, 32), ((24, 16), RED))),
        Case("png_16bit", "scan16.png", encode(Image.fromarray(wide16), "PNG"), "image/png",
             Loads((64, 40), ((50, 20), (255, 255, 255)))),
        Case("strip_1x1000", "line.png", encode(Image.new("RGB", (1, 1000), RED), "PNG"), "image/png",
             Rejects(("too small", "1 x 1000"))),
        Case("exif_rotated_jpeg", "portrait.jpg", jpeg_with_orientation(quadrants((64, 48)), 6), "image/jpeg",
             Loads((48, 64), ((40, 8), RED))),
    )


def by_name(name: str) -> Case:
    return next(c for c in cases() if c.name == name)
