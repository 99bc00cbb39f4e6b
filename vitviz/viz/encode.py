"""Pictures as the bytes a page sends: the one place where images are encoded (PNG, JPEG, data URIs).

Pages hand st.image bytes, never a PIL image or an array: Streamlit would re-encode those on every run (JPEG
quality 90, any size). Plotly figures take their background pictures as data URIs.
"""
from __future__ import annotations

import base64
import io

from PIL import Image

MAX_PANEL_BYTES = 390_000  # what one picture may send (the budget is 400 KB per panel)
MAX_IMAGE_WIDTH = 1460  # st.image re-encodes anything wider (streamlit image_utils.MAXIMUM_CONTENT_WIDTH)


JPEG_QUALITY = 75  # the pages' pictures: a third lighter than at 88 (a 460 px attention overlay: 30 kB instead of
# 43 kB), no visible difference at the size shown (bench/bench_network.py; issue 31)


def jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of a picture (what st.image gets, so it is not re-encoded on every rerun)."""
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# Palettes by Pillow's fast octree: on the app's pictures (the patch gallery, the flattened matrix, Swin's maps and
# diagrams) 10-20 % fewer bytes than median cut, a smaller largest error (14 levels against 86 on the gallery) and
# ~10 × faster (9 ms against 90 for the gallery)
QUANTIZE = Image.Quantize.FASTOCTREE


def png(picture: Image.Image, colors: int | None = None, level: int = 3) -> bytes:
    """PNG bytes of a picture; with `colors`, palette-quantised first (`QUANTIZE`) to keep big pictures light.

    level is zlib's: 3 is nearly as small as the default 6 in half the time; flat-colour diagrams take 1.
    """
    if colors is not None and picture.mode != "P":
        picture = picture.quantize(colors, method=QUANTIZE)
    buf = io.BytesIO()
    picture.save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def lighter(picture: Image.Image) -> bytes:
    """The lighter of a picture's JPEG (at `JPEG_QUALITY`) and its 64-colour PNG: a photo stays JPEG; a
    photo hatched with thin stripes (what a JPEG encodes worst) is a third of its JPEG's bytes as PNG, with no
    visible change (MobileViT's receptive field: 16 kB instead of 49 kB)."""
    photo = jpeg(picture.convert("RGB"))
    flat = png(picture, colors=64, level=9)
    return flat if len(flat) < len(photo) else photo


def jpeg_uri(picture: Image.Image | bytes, quality: int = JPEG_QUALITY) -> str:
    """A picture (or JPEG bytes) as a `data:image/jpeg;base64,…` URI, for a Plotly figure's background image."""
    data = picture if isinstance(picture, bytes) else jpeg(picture, quality)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def webp_uri(picture: Image.Image, quality: int = 65) -> str:
    """A detailed picture as a `data:image/webp;base64,…` URI, for a Plotly figure's background: about half a JPEG's
    bytes where a photo carries drawn lines and numbers (every browser since 2020 shows it: Safari 14). Quality 65:
    MobileViT's 504 px offset map 54 kB (80: 64 kB), its lines and cells as sharp."""
    buf = io.BytesIO()
    picture.save(buf, "WEBP", quality=quality)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode()


def png_uri(picture: Image.Image, level: int = 9) -> str:
    """A picture as a `data:image/png;base64,…` URI (exact pixels), for a Plotly figure's image trace."""
    return "data:image/png;base64," + base64.b64encode(png(picture, level=level)).decode()


def fitted(image: Image.Image, max_bytes: int = MAX_PANEL_BYTES, photo: bool = False,
           max_width: int = MAX_IMAGE_WIDTH, colors: int | None = None) -> bytes:
    """The image as PNG (exact pixels) when that fits max_bytes, else as JPEG at the best quality that fits,
    else (pure noise, e.g. thousands of shuffled 4-px patches) as a smaller JPEG.

    photo=True goes straight to JPEG (a photograph as PNG can weigh megabytes). Images wider than max_width are
    shrunk first. With `colors`, the PNG is palette-quantised to that many colours first (`QUANTIZE`).
    """
    if image.width > max_width:
        resample = Image.Resampling.LANCZOS if photo else Image.Resampling.NEAREST
        image = image.resize((max_width, max(1, round(image.height * max_width / image.width))), resample)
    if not photo:
        data = png(image, colors, level=6)  # Pillow's default zlib level, as this always saved
        if len(data) <= max_bytes:
            return data
    rgb = image.convert("RGB")
    while True:
        for quality in (JPEG_QUALITY, 60, 45):
            buf = io.BytesIO()
            rgb.save(buf, "JPEG", quality=quality)
            if buf.tell() <= max_bytes:
                return buf.getvalue()
        if min(rgb.size) <= 16:
            return buf.getvalue()
        rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)), Image.Resampling.LANCZOS)


def image_format(data: bytes) -> str:
    """"PNG" or "JPEG", from the bytes' signature: pass it as st.image's output_format, or Streamlit re-encodes
    every RGB image as JPEG (quality 90) on every run."""
    return "PNG" if data[:8] == b"\x89PNG\r\n\x1a\n" else "JPEG"
