"""Streamlit's icon font cut to the icons the app can show (ui/icon_font.py, served by ui/serving.py): every icon the
app names is in Streamlit's font and in the cut one, the cut font's ligatures are exactly the ones kept, a font that
cannot be cut means Streamlit's whole font; in Chromium every icon on the pages is drawn as one glyph, not spelled
out in letters, from the cut font."""
from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from playwright.sync_api import expect
from streamlit import file_util

from ui import icon_font, serving

from .browser import assert_healthy, goto, open_tab

STATIC = Path(file_util.get_static_dir())
FONT = icon_font.font_path(STATIC)


@pytest.fixture(scope="module")
def cut():
    data, kept = icon_font.subset(FONT.read_bytes(), icon_font.app_icons() | icon_font.streamlit_words(STATIC))
    return data, kept


def test_every_icon_the_app_names_is_in_streamlits_font_and_kept(cut):
    names = icon_font.app_icons()
    assert {"route", "code", "info", "check_circle", "school"} <= names  # the overview's, expanders', alerts' icons
    full = icon_font.ligatures(TTFont(FONT))
    assert names <= set(full), sorted(names - set(full))  # a misspelt icon would show as letters
    data, kept = cut
    assert names <= kept
    assert {"keyboard_double_arrow_left", "keyboard_double_arrow_right"} <= kept  # Streamlit's sidebar button
    assert len(kept) < len(full) / 4 and len(data) < FONT.stat().st_size / 4


def test_the_cut_font_draws_the_wanted_icons_and_no_other_glyph(cut):
    data, kept = cut
    font = TTFont(io.BytesIO(data))
    assert font.flavor == "woff2" and set(icon_font.ligatures(font)) == kept
    full = icon_font.ligatures(TTFont(FONT))
    wanted = icon_font.app_icons() | icon_font.streamlit_words(STATIC)
    assert {full[n] for n in kept} == {full[n] for n in wanted if n in full}  # other names only of those glyphs


def test_a_font_that_cannot_be_cut_means_streamlits_whole_font(tmp_path, capsys):
    media = tmp_path / "static" / "media"
    media.mkdir(parents=True)
    (tmp_path / "static" / "js").mkdir()
    assert serving.icon_font(tmp_path, tmp_path / "cache") == {}  # no icon font in this Streamlit
    (media / "MaterialSymbols-Rounded.abc.woff2").write_bytes(b"wOF2 not really a font")
    assert serving.icon_font(tmp_path, tmp_path / "cache") == {}
    assert "Streamlit's whole icon font is served" in capsys.readouterr().err


@pytest.mark.browser
def test_icons_are_drawn_as_glyphs_from_the_cut_font(page, app_url):
    """A ligature drawn in the icon font is about one em wide; an icon missing from the font would be its name in
    letters (keyboard_double_arrow_left: ~15 em). The overview (navigation icons), a page with expanders, alerts and
    the sidebar's button."""
    rel = FONT.relative_to(STATIC).as_posix()
    with urllib.request.urlopen(f"{app_url}/{rel}", timeout=30) as answer:
        served = answer.read()
    assert len(served) < FONT.stat().st_size / 4, len(served)  # the cut font, not Streamlit's whole one
    for key, tab in (("", None), ("swin", "Mask & attention"), ("explain", None)):
        goto(page, app_url, key)
        if tab:
            open_tab(page, tab)
        assert_healthy(page)
        icons = page.get_by_test_id("stIconMaterial")
        expect(icons.first).to_be_attached()
        page.evaluate("() => document.fonts.ready")
        sizes = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stIconMaterial"]')]
            .filter(e => e.offsetParent !== null)
            .map(e => [e.textContent, e.getBoundingClientRect().width / parseFloat(getComputedStyle(e).fontSize)])""")
        assert sizes and all(width < 1.6 for _name, width in sizes), sizes
