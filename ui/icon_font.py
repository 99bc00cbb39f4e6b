"""Streamlit's fonts cut to what can be shown: its icon font to the icons (12 kB instead of 375 kB), Source Sans to the
characters the app writes (upright and italic: ~60 kB instead of 308 kB), for every student's first page.

Streamlit 1.67 draws every `:material/…:` icon, the app's (navigation, alerts, buttons) and its own (the sidebar's
collapse button, expanders, the file uploader), as a ligature of `MaterialSymbols-Rounded.<hash>.woff2`: the text
"route" drawn in that font is one glyph. The font holds 4,309 such icons; a page shows a few dozen. `subset` keeps
the glyphs of the icons that can appear: every name the app writes as `material/<name>` (app.py, ui/, pages/,
vitviz/, lessons/) and every icon Streamlit's own scripts name as `:material/<name>:` (how its screens name theirs:
78 in 1.67; every lower-case word of its scripts, 640 icon names, made a 66 kB font), with the letters that spell
them, and drops every other ligature (fontTools' subsetter without layout closure; woff2 written with Brotli). An
icon left out would show as its name in letters, never as a broken page; `tests/test_icon_font.py` checks that no
icon on the pages is drawn as letters.

`ui/serving.py` makes the cut once per Streamlit version and set of names (in its cache folder, ~3 s of CPU) and serves
it under the font's own URL. Where fontTools or Brotli is missing or the font is not where it was, Streamlit's whole
font is served.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FONT_GLOB = "MaterialSymbols-Rounded.*.woff2"  # under Streamlit's static/media/
APP_SOURCES = ("app.py", "ui", "pages", "vitviz", "lessons")  # where the app names its icons
NAME = re.compile(r"material/([a-z0-9_]+)")
STREAMLIT_ICON = re.compile(r":material/([a-z0-9_]+):")


def font_path(static_dir: Path) -> Path | None:
    """Streamlit's icon font, or None where this Streamlit has none by that name."""
    return next((static_dir / "static" / "media").glob(FONT_GLOB), None)


def app_texts(root: Path = ROOT, suffixes: tuple[str, ...] = (".py", ".toml")):
    """The text of each of the app's source files (`APP_SOURCES`) with one of `suffixes`."""
    for top in APP_SOURCES:
        path = root / top
        for file in [path] if path.is_file() else [f for f in path.rglob("*") if f.suffix in suffixes]:
            yield file.read_text(encoding="utf-8")


def app_icons(root: Path = ROOT) -> set[str]:
    """Every icon name the app writes as `:material/<name>:`."""
    return {name for text in app_texts(root) for name in NAME.findall(text)}


def streamlit_icons(static_dir: Path) -> set[str]:
    """Every icon Streamlit's scripts name: its screens write their icons as `:material/<name>:` strings, which
    its icon component parses (78 names in 1.67: the sidebar's button, expanders, the file uploader, menus)."""
    names = set()
    for script in (static_dir / "static" / "js").glob("*.js"):
        names.update(STREAMLIT_ICON.findall(script.read_text(encoding="utf-8", errors="ignore")))
    return names


def ligatures(font) -> dict[str, str]:
    """Icon name -> glyph name, from the font's ligature substitutions."""
    letter = {glyph: chr(code) for code, glyph in font.getBestCmap().items()}
    found = {}
    for lookup in font["GSUB"].table.LookupList.Lookup:
        for table in lookup.SubTable:
            table = getattr(table, "ExtSubTable", table)  # extension lookups wrap the real one
            for first, ligs in (getattr(table, "ligatures", None) or {}).items():
                for lig in ligs:
                    found[letter.get(first, "") + "".join(letter.get(c, "") for c in lig.Component)] = lig.LigGlyph
    return found


def subset(font_bytes: bytes, wanted: set[str]) -> tuple[bytes, set[str]]:
    """The woff2 font with only the icons named in `wanted` (names the font lacks are ignored) and the ASCII
    letters that spell them; returns it and the icon names it draws (the wanted ones, and other names of the same
    glyphs: check_circle_outline is check_circle's glyph)."""
    from fontTools import subset as fonttools_subset
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(font_bytes))
    names = ligatures(font)
    keep = sorted(wanted & set(names))
    options = fonttools_subset.Options()
    options.layout_closure = False  # the letters alone would bring back every icon they spell
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.flavor = "woff2"
    cutter = fonttools_subset.Subsetter(options)
    cutter.populate(glyphs=sorted({names[n] for n in keep}),
                    unicodes=[code for code in font.getBestCmap() if code < 128])
    cutter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue(), set(ligatures(font))


# Streamlit's text fonts, cut the same way to the characters the app writes: Source Sans upright and italic, 170 + 138
# kB as shipped (Latin, Greek, Cyrillic and Vietnamese, every OpenType feature), are fetched by every student's first
# page; cut, 29 + 29 kB. Chinese text never used them (Source Sans has no CJK glyphs: the system's font draws it).
TEXT_FONT_GLOB = "SourceSansVF-*.woff2"
# KaTeX's AMS font (28 kB) is fetched for one thing in the app's equations, \mathbb's capitals (ℝ, 𝔼), which KaTeX
# draws as plain letters in it: cut to Basic Latin (and the app's characters), 9 kB. Other AMS symbols, should an
# equation use one, would come from the system's fonts.
AMS_FONT_GLOB, AMS_RANGES = "KaTeX_AMS-Regular.*.woff2", ((0x0020, 0x007E),)
TEXT_RANGES = (  # Unicode blocks kept whole, besides every character of the app's sources and lessons
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x00FF),  # Latin-1 Supplement
    (0x2000, 0x206F),  # general punctuation (– — … ′ ‰)
)  # the app speaks English and Chinese: a letter outside these (a name in a photo's file name) takes the system's font


def text_font_paths(static_dir: Path) -> list[tuple[Path, tuple[tuple[int, int], ...]]]:
    """Streamlit's Source Sans fonts (upright and italic) and KaTeX's AMS font, each with the blocks it keeps whole."""
    media = static_dir / "static" / "media"
    return ([(font, TEXT_RANGES) for font in sorted(media.glob(TEXT_FONT_GLOB))]
            + [(font, AMS_RANGES) for font in sorted(media.glob(AMS_FONT_GLOB))])


def app_characters(root: Path = ROOT) -> set[int]:
    """Every character the app's sources and lessons write (its English text, symbols, names)."""
    return {ord(c) for text in app_texts(root, (".py", ".toml", ".json")) for c in text}


def subset_text(font_bytes: bytes, characters: set[int], ranges=TEXT_RANGES) -> bytes:
    """The woff2 text font with only `ranges` and `characters` (those the font has), every variation axis, and
    the OpenType features a browser applies by itself (kerning, ligatures, marks; fontTools' default list), not the
    stylistic sets and alternates nothing in the app turns on."""
    from fontTools import subset as fonttools_subset
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(font_bytes))
    codes = [code for code in font.getBestCmap()
             if code in characters or any(low <= code <= high for low, high in ranges)]
    options = fonttools_subset.Options()
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.flavor = "woff2"
    cutter = fonttools_subset.Subsetter(options)
    cutter.populate(unicodes=codes)
    cutter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()
