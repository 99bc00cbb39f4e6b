"""Drawing helpers only the "Linear projection" and "Position embeddings" pages share: pictures sent as encoded
bytes, and the input cropped to the whole patches the model reads."""
from __future__ import annotations

import streamlit as st
from PIL import Image

from vitviz.viz.encode import fitted, image_format


def picture(where, data: bytes, **kwargs) -> None:
    """st.image of encoded bytes, sent as they are (no re-encoding by Streamlit)."""
    where.image(data, output_format=image_format(data), **kwargs)


@st.cache_data(max_entries=16, show_spinner=False)
def whole_patches(cache_key: str, _image: Image.Image, width: int, height: int) -> bytes:
    """The model's input image cropped to whole patches (what the conv reads), width × height px, as JPEG."""
    return fitted(_image.crop((0, 0, width, height)), photo=True)


@st.cache_data(max_entries=16, show_spinner=False)
def photo_jpeg(cache_key: str, _pixels) -> bytes:
    """A photo-like (H, W, 3) uint8 array as JPEG, encoded once per cache_key."""
    return fitted(Image.fromarray(_pixels), photo=True)
