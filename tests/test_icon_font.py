"""Streamlit's fonts cut to what the app can show (ui/icon_font.py, served by ui/serving.py). The icon font: every
icon the app names is in Streamlit's font and in the cut one, the cut font's ligatures are exactly the ones kept, a
font that cannot be cut means Streamlit's whole font; in Chromium every icon on the pages is drawn as one glyph, not
spelled out in letters, from the cut font. Source Sans: every character the app writes that the font has is kept,
with its weights; in Chromium a page's text is as wide in the cut font as in Streamlit's."""
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
    data, kept = icon_font.subset(FONT.read_bytes(), icon_font.app_icons() | icon_font.streamlit_icons(STATIC))
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
    wanted = icon_font.app_icons() | icon_font.streamlit_icons(STATIC)
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
    letters (keyboard_double_arrow_left: ~15 em). The overview (navigation icons), pages with expanders, alerts,
    downloads, tabs and the sidebar's button and file uploader."""
    rel = FONT.relative_to(STATIC).as_posix()
    with urllib.request.urlopen(f"{app_url}/{rel}", timeout=30) as answer:
        served = answer.read()
    assert len(served) < FONT.stat().st_size / 4, len(served)  # the cut font, not Streamlit's whole one
    for key, tab in (("", None), ("patching", None), ("attention", "Rollout"), ("registers", None),
                     ("swin", "Mask & attention"), ("mobilevit", "Receptive field"), ("explain", None)):
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


@pytest.fixture(scope="module")
def text_cuts():
    characters = icon_font.app_characters()
    return {font: icon_font.subset_text(font.read_bytes(), characters, ranges)
            for font, ranges in icon_font.text_font_paths(STATIC)}


def test_text_fonts_keep_every_character_the_app_writes_and_their_weights(text_cuts):
    names = sorted(font.name.split(".")[0] for font in text_cuts)
    assert names == ["KaTeX_AMS-Regular", "SourceSansVF-Italic", "SourceSansVF-Upright"]
    written = icon_font.app_characters()
    assert {ord(c) for c in "Patch size P × ≤ → ⌊M/2⌋ – α"} <= written
    for font, data in text_cuts.items():
        full, cut = TTFont(font), TTFont(io.BytesIO(data))
        kept = set(cut.getBestCmap())
        assert written & set(full.getBestCmap()) <= kept  # nothing the app writes falls back to another font
        assert set(range(0x41, 0x5B)) <= kept  # \mathbb's capitals in KaTeX's AMS font
        if font.name.startswith("SourceSans"):
            assert set(range(0x20, 0x7F)) | set(range(0xA0, 0x100)) <= kept
            assert [a.axisTag for a in cut["fvar"].axes] == [a.axisTag for a in full["fvar"].axes]  # its weights
        assert cut.flavor == "woff2" and len(data) < font.stat().st_size / 2, (font.name, len(data))


def test_a_text_font_that_cannot_be_cut_is_served_whole(tmp_path, capsys):
    media = tmp_path / "static" / "media"
    media.mkdir(parents=True)
    assert serving.text_fonts(tmp_path, tmp_path / "cache") == {}  # no Source Sans in this Streamlit
    (media / "SourceSansVF-Upright.ttf.abc.woff2").write_bytes(b"wOF2 not really a font")
    assert serving.text_fonts(tmp_path, tmp_path / "cache") == {}
    assert "Streamlit's whole SourceSansVF-Upright is served" in capsys.readouterr().err


@pytest.mark.browser
def test_text_is_drawn_from_the_cut_source_sans_as_wide_as_from_streamlits(page, app_url):
    """The served fonts are the cut ones; a paragraph of the overview set in each of Streamlit's two fonts and in
    the two cut ones, as the browser lays it out: the same width (the same glyphs, advances and kerning)."""
    import base64

    goto(page, app_url)
    assert_healthy(page)
    sample = " ".join(page.get_by_test_id("stMain").inner_text().split())[:600]
    assert len(sample) == 600
    for font, _ranges in icon_font.text_font_paths(STATIC):
        rel = font.relative_to(STATIC).as_posix()
        with urllib.request.urlopen(f"{app_url}/{rel}", timeout=30) as answer:
            served = answer.read()
        assert len(served) < font.stat().st_size / 2, (rel, len(served))
        widths = page.evaluate("""async ([full, cut, text, italic]) => {
            const out = [];
            for (const [name, data] of [["vvfull", full], ["vvcut", cut]]) {
                const face = new FontFace(name, Uint8Array.from(atob(data), c => c.charCodeAt(0)));
                document.fonts.add(await face.load());
                const span = document.createElement("span");
                span.style.cssText = `font: ${italic ? "italic " : ""}600 17px ${name}; white-space: nowrap`;
                span.textContent = text;
                document.body.append(span);
                out.push(span.getBoundingClientRect().width);
                span.remove();
            }
            return out;
        }""", [base64.b64encode(font.read_bytes()).decode(), base64.b64encode(served).decode(), sample,
               "Italic" in font.name])
        assert widths[0] > 100 and abs(widths[0] - widths[1]) < 0.5, (rel, widths)
