"""Turn whatever a student uploads into a small, plain RGB picture.

A vision transformer only ever sees an RGB grid of numbers, but people upload
anything: phone photos shot sideways, 16-bit scans, transparent logos,
animated GIFs, PDFs, web pages saved with a ``.png`` name. This module is the
one gate every picture goes through, so the rest of the app can assume "RGB,
upright, at most ``MAX_SIDE`` pixels on its longest side" and never has to
handle a Pillow exception.

Why each guard exists:

* **Empty files, text, HTML, SVG, PDF, HEIC, ZIP, ...** -- Pillow's own
  message ("cannot identify image file <_io.BytesIO object at 0x...>") means
  nothing to a student. When Pillow gives up we sniff the first bytes
  ourselves, so the message can name what the file really is and say what to
  do instead (usually: export it as PNG or JPEG).
* **SVG** gets its own message because it is a *vector* format: there are no
  pixels to look at until something renders it, and rendering SVG safely is
  out of scope here.
* **Decompression bombs** -- a few kilobytes of PNG can claim to be
  100 000 x 100 000 pixels and inflate to tens of gigabytes. The header is
  read without decoding any pixels, so we compare the claimed size against
  ``MAX_PIXELS`` *before* ``load()``. We use our own limit instead of
  changing the process-wide ``Image.MAX_IMAGE_PIXELS`` because other code in
  the same process may rely on Pillow's default; Pillow's own
  ``DecompressionBombError`` (and its warning, escalated to an error while
  opening) is caught as a second line of defence.
* **Truncated or corrupt files** -- ``Image.open`` is lazy and only reads the
  header, so a half-downloaded file looks fine until the pixels are needed.
  We force a full decode with ``load()`` right here, where the error can be
  turned into a helpful sentence, rather than somewhere deep in the model code.
  Pillow's global ``LOAD_TRUNCATED_IMAGES`` is left alone (off by default) so
  a broken file is reported instead of silently padded with grey.
* **Oversized PNG text metadata** -- Pillow refuses a PNG whose text chunks
  (tEXt, zTXt, iTXt) inflate past ``PngImagePlugin.MAX_TEXT_CHUNK`` (1 MiB
  each) or ``MAX_TEXT_MEMORY`` (64 MiB together), with a ``ValueError`` that
  would reach the student as "damaged". Some tools store large metadata
  there (XMP packets, comments, prompts and workflows), and the pixels are
  fine, so after such a failure we drop the text chunks and decode once more
  instead of raising Pillow's process-wide limits. Only after a failure,
  because text chunks can carry the EXIF orientation of a PNG.
* **Tiny images** (a side under ``MIN_SIDE`` pixels) cannot be cut into even a
  single meaningful patch, and are almost always a favicon or a mistake.
* **Huge photos** -- a 24 MP phone photo is fine, but the model works at a few
  hundred pixels, so decoding everything at full size only wastes time and
  memory. For JPEG we ask libjpeg to decode at 1/2, 1/4 or 1/8 scale
  (``draft``), which is several times faster than decoding fully and then
  shrinking; every format is then reduced to ``MAX_SIDE``.
* **Odd pixel modes** (16-bit, 32-bit float, palette, CMYK, 1-bit, alpha) are
  normalised to 8-bit RGB. Transparent areas become *white*, because that is
  how the picture looked to the student in a browser or document; Pillow's
  default (dropping alpha) would reveal whatever colour hides under it,
  often black.
* **EXIF orientation** -- phones store pixels sideways and note the rotation
  in EXIF; without applying it, portraits show up lying on their side.
"""

from __future__ import annotations

import io
import pathlib
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps

from .i18n import N_, _

__all__ = [
    "ImageError",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "SAMPLES",
    "load_image",
    "load_sample",
    "sample_path",
]

#: Longest side, in pixels, of every image returned by :func:`load_image`.
MAX_SIDE = 1024

#: Images with a side shorter than this are rejected as "too small".
MIN_SIDE = 8

#: Largest accepted image, in pixels, checked from the header before decoding.
#: 50 MP keeps the worst case (16-bit or float data plus conversion buffers)
#: to a few hundred megabytes while accepting any current phone photo.
MAX_PIXELS = 50_000_000

#: Bundled sample photos: display name -> file name inside ``assets/``.
#: Sources and licences are in ``assets/ATTRIBUTION.md``.
SAMPLES: dict[str, str] = {
    "cat": "cat.jpg",
    "coffee": "coffee.jpg",
    "astronaut": "astronaut.jpg",
    "rocket": "rocket.jpg",
}

_ASSETS_DIR = pathlib.Path(__file__).resolve().parent.parent / "assets"

_WHITE = (255, 255, 255)

# Modes that carry an alpha channel; they are composited on white.
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}

# Modes whose values do not fit 0..255 and need explicit scaling.
_WIDE_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}

_PLEASE_CONVERT = N_("please export it as PNG or JPEG and upload that instead.")


class ImageError(ValueError):
    """A file that cannot be used as a picture.

    The message is a single plain sentence meant to be shown to a student
    as-is, in the language of the run that raised it (``vitviz.i18n``); the
    original low-level exception, if any, is kept as ``__cause__`` for logs.
    """


def load_image(data: bytes) -> Image.Image:
    """Decode uploaded bytes into an upright RGB image at most ``MAX_SIDE`` wide/high.

    Returns a fully loaded ``PIL.Image.Image`` in mode ``"RGB"``, with EXIF
    orientation applied, transparency composited on white, only the first
    frame of an animation, and both sides between ``MIN_SIDE`` and
    ``MAX_SIDE`` pixels. Raises :class:`ImageError` with a one-sentence,
    student-readable message for anything that is not a usable image.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"load_image expects bytes, got {type(data).__name__}")
    if not data.strip():
        # Also covers files of only whitespace, which Pillow would call
        # "unidentified" -- "empty" is the more useful thing to hear.
        raise ImageError(_(
            "The file is empty, so there is no picture to look at; "
            "please choose a different file."
        ))

    try:
        img = _read(data)
    except ImageError as err:
        # Pillow's text-chunk limits raise ValueError: only such failures of a
        # PNG that has text chunks get a second try, without them.
        bare = _without_png_text(data) if isinstance(err.__cause__, ValueError) else None
        if bare is None:
            raise
        img = _read(bare)
    img = _exif_upright(img)
    img = _to_rgb(img)
    if max(img.size) > MAX_SIDE:
        # reducing_gap lets Pillow first shrink by an integer factor (cheap
        # box filter) and only then resample with Lanczos, which keeps large
        # PNG/TIFF uploads fast without visible quality loss.
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img


def sample_path(name: str) -> pathlib.Path:
    """Return the path of the bundled sample picture called ``name``.

    Raises :class:`ImageError` for a name not in :data:`SAMPLES`.
    """
    try:
        filename = SAMPLES[name]
    except (KeyError, TypeError):
        choices = ", ".join(sorted(SAMPLES))
        raise ImageError(_(
            "There is no sample picture called {name}; the samples are: {choices}."
        ).format(name=repr(name), choices=choices)) from None
    return _ASSETS_DIR / filename


def load_sample(name: str) -> Image.Image:
    """Load a bundled sample picture through :func:`load_image`.

    Going through the same path as uploads means the samples get exactly
    the same treatment, and a broken asset is reported the same way.
    """
    path = sample_path(name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(_(
            "The sample picture {name} is missing from this installation "
            "(expected at {path})."
        ).format(name=repr(name), path=path)) from exc
    return load_image(data)


# --------------------------------------------------------------------------
# Steps of load_image


def _read(data: bytes) -> ImageFile.ImageFile:
    """Open, size-check and fully decode ``data``; every failure is an ImageError."""
    img = _open(data)
    _check_size(img.size)
    _decode(img)
    return img


def _open(data: bytes) -> ImageFile.ImageFile:
    """Read just the header with Pillow, mapping any failure to an ImageError."""
    try:
        # Escalating the warning (issued between 89 and 179 MP) stops Pillow
        # from printing a scary message for a file we are going to reject
        # anyway. catch_warnings is process-wide, but it only spans header
        # parsing, which is quick.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(_(
            "This image claims to be far larger than the "
            "{limit} megapixel limit, so it was rejected "
            "to protect the app; please upload a smaller picture."
        ).format(limit=_megapixels(MAX_PIXELS))) from exc
    except Exception as exc:
        # Pillow raises many types here (UnidentifiedImageError, SyntaxError,
        # struct.error, ...); none of them is meaningful to a student, so
        # the message comes from our own look at the bytes instead.
        raise ImageError(_describe_unreadable(data)) from exc
    return img


def _check_size(size: tuple[int, int]) -> None:
    """Reject zero-size, tiny and oversized images using header dimensions only."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(_(
            "This image has no pixels (it is {width} x {height}); "
            "please choose a different file."
        ).format(width=width, height=height))
    if width * height > MAX_PIXELS:
        raise ImageError(_(
            "This image is {width} x {height} pixels "
            "({megapixels} megapixels), more than the "
            "{limit} megapixel limit; please shrink it "
            "and upload it again."
        ).format(width=width, height=height, megapixels=_megapixels(width * height), limit=_megapixels(MAX_PIXELS)))
    if min(width, height) < MIN_SIDE:
        raise ImageError(_(
            "This image is too small ({width} x {height} pixels) for a vision "
            "model to see anything; please use a picture at least {min_side} "
            "pixels on each side."
        ).format(width=width, height=height, min_side=MIN_SIDE))


def _decode(img: ImageFile.ImageFile) -> None:
    """Fully decode the first frame, shrinking JPEGs during decode when possible."""
    # MPO (multi-picture JPEG from many cameras) is JPEG underneath.
    if img.format in ("JPEG", "MPO"):
        # draft() picks the largest DCT scale (1/2, 1/4, 1/8) whose result is
        # still at least this big, so the later Lanczos step has enough
        # detail and the expensive full-size decode is skipped. "RGB" lets
        # libjpeg do the YCbCr conversion; CMYK files keep their mode.
        scale = MAX_SIDE / max(img.size)
        if scale < 1:
            target = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            img.draft("RGB", target)
    try:
        # Animated GIF/APNG/WebP open on frame 0, which is what we want.
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(_(
            "This image is far too large to unpack safely, so it was rejected; "
            "please upload a smaller picture."
        )) from exc
    except MemoryError as exc:
        raise ImageError(_(
            "This image needs more memory to open than the app has; "
            "please upload a smaller picture."
        )) from exc
    except Exception as exc:
        # Truncated uploads end up here (OSError "image file is truncated"),
        # as do corrupt chunks and unsupported codecs inside known formats.
        if img.format:
            message = _(
                "This {format} file looks damaged or incomplete and could not be "
                "read to the end; please try re-saving or re-downloading it."
            ).format(format=img.format)
        else:  # Pillow named no format: "image file", one sentence of its own for the translation
            message = _(
                "This image file looks damaged or incomplete and could not be "
                "read to the end; please try re-saving or re-downloading it."
            )
        raise ImageError(message) from exc


def _exif_upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag so the picture is the right way up."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        # A mangled EXIF block is metadata trouble, not pixel trouble: the
        # picture is still worth showing, just possibly sideways.
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency on white."""
    mode = img.mode
    if mode in _WIDE_MODES:
        return _wide_to_l(img).convert("RGB")
    if "transparency" in img.info and mode in {"P", "L", "RGB"}:
        # A palette or colour-key transparency (GIF, PNG tRNS) is not an
        # alpha channel yet; make it one so it gets composited like RGBA.
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode == "RGB":
        return img
    try:
        return img.convert("RGB")
    except Exception as exc:
        raise ImageError(_(
            "This image uses a colour format ({mode}) that the app cannot "
            "display; {convert}"
        ).format(mode=mode, convert=_(_PLEASE_CONVERT))) from exc


def _wide_to_l(img: Image.Image) -> Image.Image:
    """Map 16-bit, 32-bit integer or float pixels to 8-bit greyscale ("L").

    16-bit data uses its full 0..65535 range (so a dark scan stays dark).
    32-bit integers that already fit 0..255 or 0..65535 are treated as 8- or
    16-bit values stored in a wider container (common for PNG/TIFF readers);
    anything else, and all float data, is stretched from its minimum to its
    maximum, because float images have no agreed white point.
    """
    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        out = (arr.astype(np.uint32) + 128) // 257
        return Image.fromarray(out.astype(np.uint8), "L")

    # float32 is plenty for an 8-bit result and halves peak memory vs float64.
    values = arr.astype(np.float32, copy=False)
    finite = np.isfinite(values)
    if not finite.any():
        return Image.new("L", img.size, 0)
    lo = float(values[finite].min())
    hi = float(values[finite].max())
    if img.mode == "I" and lo >= 0 and hi <= 255:
        out = values
    elif img.mode == "I" and lo >= 0 and hi <= 65535:
        out = values / 257.0
    elif hi > lo:
        out = (values - lo) * (255.0 / (hi - lo))
    else:
        # A flat image has no range to stretch; keep its level if it is a
        # plausible 0..255 value, otherwise show mid-grey.
        out = np.full_like(values, lo if 0 <= lo <= 255 else 128.0)
    # NaN/inf pixels become black rather than breaking the conversion.
    out = np.where(finite, out, 0.0)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "L")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}


def _without_png_text(data: bytes) -> bytes | None:
    """``data`` with its PNG text chunks removed, or None if it is no PNG or has none.

    Only chunk headers are read (nothing is decompressed); a cut-off last
    chunk is kept as it is, so a truncated file still fails as truncated.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return None
    kept, pos, dropped = [_PNG_SIGNATURE], len(_PNG_SIGNATURE), False
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        end = pos + 12 + length  # length, type, payload, CRC
        if data[pos + 4 : pos + 8] in _PNG_TEXT_CHUNKS:
            dropped = True
        else:
            kept.append(data[pos:end])
        pos = end
    return b"".join(kept) if dropped else None


# --------------------------------------------------------------------------
# Explaining files Pillow could not open


def _describe_unreadable(data: bytes) -> str:
    """Return a one-sentence explanation of why ``data`` is not a usable image."""
    head = data[:4096]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")  # UTF-8 BOM and whitespace
    lowered = stripped[:4096].lower()

    if _looks_like_svg(lowered):
        return _(
            "This is an SVG vector drawing, which has no pixels for the model "
            "to look at; please export it as PNG or JPEG and upload that instead."
        )
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:1024]:
        return _(
            "This is a web page (HTML) saved with an image name, not a picture; "
            "open it in a browser, right-click the picture and choose "
            "'Save image as' instead."
        )

    zero = _zero_size_from_header(data)
    if zero is not None:
        return _(
            "This image has no pixels (its header says {width} x {height}); "
            "please choose a different file."
        ).format(width=zero[0], height=zero[1])

    named = _sniff_format(data)
    if named is not None:
        return named

    if _looks_like_text(head):
        return _(
            "This is a text file, not a picture, even if its name ends in an "
            "image extension; please choose a real PNG or JPEG photo."
        )
    return _(
        "This file is not an image format the app can read, or it is damaged; "
        "{convert}"
    ).format(convert=_(_PLEASE_CONVERT))


def _looks_like_svg(lowered: bytes) -> bool:
    """Whether the (lower-cased, left-stripped) start of a file is SVG markup."""
    if lowered.startswith(b"<svg"):
        return True
    # SVG exported by editors usually starts with an XML declaration, a
    # comment or a DOCTYPE before the <svg> element.
    if not lowered.startswith((b"<?xml", b"<!--", b"<!doctype svg")):
        return False
    svg_at = lowered.find(b"<svg")
    html_at = lowered.find(b"<html")
    # XHTML pages often embed inline <svg> icons; those are web pages.
    return svg_at >= 0 and not 0 <= html_at < svg_at


def _looks_like_text(head: bytes) -> bool:
    """Whether the first bytes look like human-readable text rather than binary."""
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 4:
            return False
        text = head[: exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return bool(text) and printable / len(text) > 0.95


def _zero_size_from_header(data: bytes) -> tuple[int, int] | None:
    """Dimensions from a PNG or GIF header when one of them is zero, else None.

    Pillow refuses to identify such files at all, which would otherwise be
    reported as "damaged" -- less helpful than saying they are empty.
    """
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        size = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    elif data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
        size = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    else:
        return None
    return size if 0 in size else None


# ISO-BMFF (the ftyp box) brands: HEIF/HEIC is what iPhones save by default.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_VIDEO_BRANDS = {b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"3gp4", b"3gp5", b"dash"}


def _sniff_format(data: bytes) -> str | None:
    """Name a known non-image or unsupported format from its magic bytes.

    Returns a one-sentence message (in the run's language), or None when the
    bytes are not recognised.
    """
    convert = _(_PLEASE_CONVERT)
    fmt_msg = None
    if data[4:8] == b"ftyp":
        major = data[8:12]
        # Compatible brands follow the major brand and minor version.
        box_len = int.from_bytes(data[0:4], "big")
        brands = {major} | {data[i : i + 4] for i in range(16, min(box_len, 64), 4)}
        generic_heif = major in {b"mif1", b"msf1"} and not brands & _AVIF_BRANDS
        if brands & _HEIF_BRANDS or generic_heif:
            fmt_msg = _(
                "This is a HEIC/HEIF photo (the iPhone's default format), which "
                "the app cannot read; on the phone, set Camera > Formats to "
                "'Most Compatible', or export it as JPEG or PNG and upload that."
            )
        elif brands & _AVIF_BRANDS:
            fmt_msg = _("This AVIF image could not be decoded; {convert}").format(convert=convert)
        elif major == b"crx ":
            fmt_msg = _("This is a camera RAW file (Canon CR3), which the app cannot read; {convert}").format(
                convert=convert)
        elif brands & _VIDEO_BRANDS:
            fmt_msg = _(
                "This is a video file, not a picture; please take a screenshot "
                "of the frame you want and upload it as PNG or JPEG."
            )
    if fmt_msg is not None:
        return fmt_msg

    for magic, name in _MAGIC:
        if data.startswith(magic):
            return _(name).format(convert=convert)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _("This WebP image looks damaged or uses a feature the app cannot read; {convert}").format(
            convert=convert)
    if data[:4] == b"RIFF" and data[8:12] in {b"WAVE", b"AVI "}:
        return _("This is an audio or video file, not a picture; please upload a PNG or JPEG image.")
    return None


# Magic bytes -> the message (English, translated where it is returned; "{convert}" is _PLEASE_CONVERT).
_MAGIC: list[tuple[bytes, str]] = [
    (b"%PDF", N_("This is a PDF document, not a picture; "
                 "please export the page or figure you want as PNG or JPEG and upload that.")),
    (b"PK\x03\x04", N_("This is a ZIP archive (or an Office document, which is a ZIP inside), "
                        "not a picture; please unzip it and upload one PNG or JPEG image from it.")),
    (b"8BPS", N_("This Photoshop (PSD) file could not be read; {convert}")),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", N_("This is a JPEG XL image, which the app cannot read; {convert}")),
    (b"\xff\x0a", N_("This is a JPEG XL image, which the app cannot read; {convert}")),
    (b"\x89PNG\r\n\x1a\n", N_("This PNG file looks damaged or incomplete; "
                                "please try re-saving or re-downloading it.")),
    (b"\xff\xd8\xff", N_("This JPEG file looks damaged or incomplete; "
                          "please try re-saving or re-downloading it.")),
    (b"GIF8", N_("This GIF file looks damaged or incomplete; "
                 "please try re-saving or re-downloading it.")),
    (b"II*\x00", N_("This TIFF (or camera RAW) file uses a variant the app cannot read; {convert}")),
    (b"MM\x00*", N_("This TIFF (or camera RAW) file uses a variant the app cannot read; {convert}")),
    (b"Rar!\x1a\x07", N_("This is a RAR archive, not a picture; please extract it and upload one PNG or JPEG "
                         "image.")),
    (b"7z\xbc\xaf\x27\x1c", N_("This is a 7-Zip archive, not a picture; please extract it and upload one PNG or "
                                "JPEG image.")),
    (b"\x1f\x8b", N_("This is a gzip-compressed file, not a picture; please decompress it, "
                     "and if it is a drawing (.svgz) export it as PNG or JPEG.")),
    (b"ID3", N_("This is an audio file, not a picture; please upload a PNG or JPEG image.")),
    (b"OggS", N_("This is an audio or video file, not a picture; please upload a PNG or JPEG image.")),
    (b"\x1a\x45\xdf\xa3", N_("This is a video file, not a picture; please take a screenshot "
                               "of the frame you want and upload it as PNG or JPEG.")),
    (b"\x7fELF", N_("This is a program file, not a picture; please upload a PNG or JPEG image.")),
]


def _megapixels(pixels: int) -> str:
    """Pixel count as a short megapixel figure, e.g. '50' or '24.5'."""
    mp = pixels / 1_000_000
    return f"{mp:.0f}" if mp >= 100 or mp == int(mp) else f"{mp:.1f}"
