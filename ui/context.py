"""The sidebar's decisions for the current run (`Context`) and the one accessor pages use to read them."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from PIL import Image

_KEY = "ctx"  # where the sidebar leaves this run's Context in the session


@dataclass(frozen=True)
class Context:
    """Everything the sidebar decides for the current run."""

    image: Image.Image  # the student's RGB image, longest side ≤ 1024 px
    image_key: str  # sha256 of the image's bytes: the cache key of everything derived from it
    image_label: str  # shown in captions
    model_name: str  # ViT preset name (see VIT_MODELS)
    patch_size: int  # P chosen with the sidebar slider (the checkpoint's own P unless moved)
    pretrained: bool  # whether trained weights were asked for (the default; off shows the random presets)
    resolution: int  # input side in pixels (shorter side when keep_aspect)
    keep_aspect: bool  # resize to the photo's aspect instead of a square
    device: str  # where the models run

    @property
    def model_key(self) -> str:
        """Cache key of the model actually used."""
        return f"{self.model_name}|{'hub' if self.pretrained else 'preset'}"


def remember(ctx: Context) -> None:
    """Keep this run's Context for the page (called by the sidebar)."""
    st.session_state[_KEY] = ctx


def has_context() -> bool:
    """Whether a run of app.py has drawn the sidebar in this session yet."""
    return _KEY in st.session_state


def context() -> Context:
    """The Context the sidebar built in this run (pages call this).

    On a fresh server, a deep link to a stage page can arrive before any run of app.py: Streamlit sees a folder
    named pages/ and runs the page alone (legacy multipage mode) until st.navigation has run once. Switch that
    mode off, as st.navigation would, and rerun, so the link opens through app.py with its sidebar and settings.
    """
    if not has_context():
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False
        st.rerun()
    return st.session_state[_KEY]
