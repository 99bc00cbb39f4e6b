"""Helpers to drive the real app with Streamlit's AppTest."""
from __future__ import annotations

import html
import io
import re

import numpy as np
from PIL import Image
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from pathlib import Path

from ui.stages import STAGES

_pages_manager_init = PagesManager.__init__


def _init_as_navigation_app(self, *args, **kwargs):
    """AppTest resets `uses_pages_directory` before every run and a folder named pages/ turns it on, so its
    reruns take the legacy multipage path and execute the page without app.py (no sidebar, stale context).
    app.py calls st.navigation, which turns the flag off in the real server; do the same here."""
    _pages_manager_init(self, *args, **kwargs)
    PagesManager.uses_pages_directory = False


PagesManager.__init__ = _init_as_navigation_app

APP = str(Path(__file__).resolve().parent.parent / "app.py")

PAGES = ["pages/overview.py", *(s.file for s in STAGES)]


def app(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def page_app(page: str, timeout: float = 120, **query) -> AppTest:
    """The app's first run straight on `page` (one run, as a deep link opens it), with `query` in the address as
    strings; no exception."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in query.items():
        at.query_params[key] = str(value)
    at.switch_page(page).run()
    assert_clean(at)
    return at


def image_captions(at: AppTest) -> list[str]:
    """Every image caption in the main area, in order."""
    return [img.caption for element in at.main.get("image") for img in element.proto.imgs]


def photo_image(w: int = 320, h: int = 200, seed: int = 0) -> Image.Image:
    """A small synthetic photo: colour gradients plus noise (so JPEG has something to compress), distinct per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, seed * 40 % 256)], -1) + rng.integers(0, 30, (h, w, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def photo(w: int = 320, h: int = 200, fmt: str = "JPEG", seed: int = 0) -> bytes:
    """`photo_image` encoded as `fmt`."""
    buf = io.BytesIO()
    photo_image(w, h, seed).save(buf, fmt)
    return buf.getvalue()


def upload(at: AppTest, name: str, data: bytes, mime: str = "image/jpeg") -> AppTest:
    if at.radio(key="src").value != "upload":
        at.radio(key="src").set_value("upload").run()
    at.file_uploader(key="upload").upload(name, data, mime)
    return at.run()


def code_texts(at: AppTest) -> list[str]:
    """The visible text of every code block on the page (ui.common.code_block: a markdown element holding its <style>
    and a <pre> of highlighting spans)."""
    return [html.unescape(re.sub(r"<[^>]+>", "", m.value.split("\n\n", 1)[1]))
            for m in at.markdown if 'class="vv-code"' in m.value]


def tables(at: AppTest, header: str) -> list[dict[str, list[str]]]:
    """Every markdown table (ui.common.markdown_table) whose first column is headed `header`, as column -> cells."""
    found = []
    for m in at.markdown:
        lines = [line for line in m.value.splitlines() if line.startswith("| ")]
        rows = [[cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
        if rows and rows[0][0] == header:
            found.append({name: [row[i] for row in rows[1:]] for i, name in enumerate(rows[0])})
    return found


def probability(cell: str) -> float:
    """A table's "12.34 %" as 0.1234."""
    return float(cell.removesuffix(" %")) / 100


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def open_tab(at: AppTest, key: str, label: str) -> AppTest:
    """Open the tab `label` of a page's lazy tabs (st.tabs with `key`, bound to the URL), as a click does: the tab
    changes in the session and in the address, and the page reruns drawing only that tab."""
    at.session_state[key] = label
    at.query_params[key] = label
    at.run()
    assert_clean(at)
    return at
