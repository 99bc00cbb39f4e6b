"""Drawing helpers only the "Linear projection" and "Position embeddings" pages share: the input cropped to the
whole patches the model reads, photos encoded once, and equations that reflow on a phone."""
from __future__ import annotations

import streamlit as st
from PIL import Image

from vitviz.viz.encode import fitted


@st.cache_data(max_entries=16, show_spinner=False)
def whole_patches(cache_key: str, _image: Image.Image, width: int, height: int) -> bytes:
    """The model's input image cropped to whole patches (what the conv reads), width × height px, as JPEG."""
    return fitted(_image.crop((0, 0, width, height)), photo=True)


@st.cache_data(max_entries=16, show_spinner=False)
def photo_jpeg(cache_key: str, _pixels) -> bytes:
    """A photo-like (H, W, 3) uint8 array as JPEG, encoded once per cache_key."""
    return fitted(Image.fromarray(_pixels), photo=True)


def equation_pieces(*pieces: str) -> None:
    """One displayed equation in pieces that sit side by side and wrap onto the next line when the page is narrower
    than the whole (a phone at 320 px): KaTeX never breaks a display line, so a long one would be cut off. Each
    piece should start at an operator ("= …", "+ …") so that a wrapped line still reads as maths."""
    row = st.container(horizontal=True, wrap=True, horizontal_alignment="center", vertical_alignment="center",
                       gap="xsmall")
    for piece in pieces:
        row.latex(piece, width="content")
