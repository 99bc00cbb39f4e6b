"""Streamlit's icon font cut to the icons that can be shown: 66 kB instead of 375 kB for every student's first page.

Streamlit 1.67 draws every `:material/…:` icon, the app's (navigation, alerts, buttons) and its own (the sidebar's
collapse button, expanders, the file uploader), as a ligature of `MaterialSymbols-Rounded.<hash>.woff2`: the text
"route" drawn in that font is one glyph. The font holds 4,309 such icons; a page shows a few dozen. `subset` keeps
the glyphs of the icons that can appear: every name the app writes as `material/<name>` (app.py, ui/, pages/,
vitviz/, lessons/) and every name that Streamlit's own scripts hold as a word (a superset of the icons its screens
use: they name them literally), with the letters that spell them, and drops every other ligature (fontTools'
subsetter without layout closure; woff2 written with Brotli). An icon left out would show as its name in letters,
never as a broken page; `tests/test_icon_font.py` checks that no icon on the pages is drawn as letters.

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
WORD = re.compile(r"[a-z][a-z0-9_]*")


def font_path(static_dir: Path) -> Path | None:
    """Streamlit's icon font, or None where this Streamlit has none by that name."""
    return next((static_dir / "static" / "media").glob(FONT_GLOB), None)


def app_icons(root: Path = ROOT) -> set[str]:
    """Every icon name the app writes as `:material/<name>:`."""
    names = set()
    for top in APP_SOURCES:
        path = root / top
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.suffix in (".py", ".toml")]
        for file in files:
            names.update(NAME.findall(file.read_text(encoding="utf-8")))
    return names


def streamlit_words(static_dir: Path) -> set[str]:
    """Every lower-case word in Streamlit's scripts: the icon names its screens use among them."""
    words = set()
    for script in (static_dir / "static" / "js").glob("*.js"):
        words.update(WORD.findall(script.read_text(encoding="utf-8", errors="ignore")))
    return words


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
