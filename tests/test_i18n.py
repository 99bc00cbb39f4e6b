"""中文 / English: the catalog is complete and current, translations keep their placeholders and the glossary's
terms, each session has its own language, and switching language keeps the page, tab and every setting."""
from __future__ import annotations

import gettext
import io
import re
import string
import threading
from pathlib import Path

import pytest
import streamlit as st
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from PIL import ImageDraw

from vitviz import i18n
from ui.stages import STAGES
from vitviz.i18n import _

from .apptest import PAGES, assert_clean, page_app

ROOT = Path(__file__).resolve().parent.parent
PO = i18n.LOCALES / "zh" / "LC_MESSAGES" / "vitviz.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}


def extracted() -> set[str]:
    """Every msgid of the code, as `python3 tasks.py i18n` extracts it (babel.cfg's files)."""
    method_map = [("app.py", "python"), ("pages/**.py", "python"), ("ui/**.py", "python"), ("vitviz/**.py", "python")]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.fixture(scope="module")
def catalog():
    with PO.open("rb") as f:
        return read_po(f)


def fields(text: str) -> list[str]:
    """The format fields of a message with their specs, e.g. ['{n}', '{share:.1%}'] (sorted)."""
    return sorted("{" + name + (":" + spec if spec else "") + "}"
                  for _lit, name, spec, _conv in string.Formatter().parse(text) if name is not None)


def test_every_visible_string_has_a_chinese_translation_and_the_catalog_is_current(catalog):
    code = extracted()
    in_po = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    missing = sorted(code - in_po)
    assert not missing, f"{len(missing)} strings not in the catalog (python3 tasks.py i18n): {missing[:5]}"
    stale = sorted(in_po - code)
    assert not stale, f"{len(stale)} catalog entries no longer in the code (python3 tasks.py i18n): {stale[:5]}"
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy or
                                                      (isinstance(m.string, tuple) and not all(m.string)))]
    assert not untranslated, f"{len(untranslated)} strings without a Chinese translation: {untranslated[:5]}"


def test_translations_keep_every_placeholder(catalog):
    broken = []
    for m in catalog:
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        try:
            want = fields(ids[-1])
        except ValueError:  # not a format string (a literal brace that is never formatted)
            continue
        for text in strings:
            try:
                got = fields(text)
            except ValueError as err:
                broken.append((ids[0], f"{err}"))
                continue
            if got != want:
                broken.append((ids[0], f"{want} became {got}"))
    assert not broken, broken[:5]


def test_the_compiled_catalog_is_the_current_po(catalog):
    out = io.BytesIO()
    write_mo(out, catalog)
    fresh = gettext.GNUTranslations(io.BytesIO(out.getvalue()))
    with MO.open("rb") as f:
        shipped = gettext.GNUTranslations(f)
    assert shipped._catalog == fresh._catalog, "the .mo is out of date: python3 tasks.py i18n"


GLOSSARY = {  # English term in a msgid -> the Chinese term its translation must use (shared/GLOSSARY.md)
    "position embedding": "位置编码",
    "cyclic shift": "循环移位",
    "self-attention": "自注意力",
    "receptive field": "感受野",
    "relative position bias": "相对位置偏置",
    "patch merging": "合并",
    "flatten": "展平",
    "window partition": "窗口划分",
    "trained weights": "权重",
    "random weights": "随机权重",
}


@pytest.mark.parametrize("term", GLOSSARY)
def test_translations_use_the_glossary_terms(catalog, term):
    off = [m.id for m in catalog if m.id and isinstance(m.id, str) and term in m.id.lower()
           and GLOSSARY[term] not in m.string]
    assert not off, f"{term} → {GLOSSARY[term]} not used in: {off[:3]}"


def test_each_thread_has_its_own_language():
    """Sessions run in threads of their own: one session's language never leaks into another's."""
    seen: dict[str, list[str]] = {"en": [], "zh": []}
    barrier = threading.Barrier(2)

    def session(lang: str) -> None:
        i18n.set_language(lang)
        barrier.wait()  # both have set theirs before either reads
        for _i in range(200):
            seen[lang].append(_("Overview"))

    threads = [threading.Thread(target=session, args=(lang,)) for lang in ("en", "zh")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(seen["en"]) == {"Overview"}
    assert set(seen["zh"]) == {i18n.translation("zh").gettext("Overview")} != {"Overview"}
    assert i18n.language() == "en"  # this thread never chose


def test_an_unknown_language_is_english():
    with i18n.use_language("fr"):
        assert i18n.language() == "en" and _("Overview") == "Overview"


MODEL_NAMES = {"MobileViT"}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_in_chinese(page):
    at = page_app(page, lang="zh")
    assert_clean(at)
    assert at.sidebar.button_group(key="lang").value == "zh"
    # A page named after its model keeps the name; every other title is Chinese.
    titles = [t.value for t in at.main.get("title")]
    assert titles and all(t in MODEL_NAMES or any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in titles), titles


def test_switching_language_keeps_page_tab_and_settings():
    at = page_app("pages/swin.py", M=5, swsec="Cost", ps=20, res=160)
    before = {k: at.query_params.get(k) for k in ("M", "swsec", "ps", "res")}
    at.sidebar.button_group(key="lang").set_value("zh").run()
    assert_clean(at)
    assert at.query_params.get("lang") == ["zh"] or at.query_params.get("lang") == "zh"
    assert {k: at.query_params.get(k) for k in before} == before
    assert at.session_state["M"] == 5 and at.session_state["swsec"] == "Cost" and at.session_state["ps"] == 20
    heads = " ".join(h.value for h in at.main.get("subheader"))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in heads)
    # AppTest formats the next run's widget values in this thread (a browser sends them as they are), so this
    # thread speaks the session's language while the Chinese page is the one being sent back.
    with i18n.use_language("zh"):
        at.sidebar.button_group(key="lang").set_value("en").run()
    assert_clean(at)
    assert "lang" not in at.query_params and at.session_state["swsec"] == "Cost"


TAB_VISITS = [(s.file, s.tab_key, tab) for s in STAGES for tab in s.tabs]


def test_pictures_drawn_on_the_server_hold_no_words(monkeypatch):
    """Pillow's bundled font has Latin glyphs only, so a server-side picture carries numbers and coordinates, never
    words a translation would turn into Chinese: titles, legends and labels are HTML or plotly, which the browser
    draws in the page's font. Every page and tab, in Chinese, with the picture caches emptied first."""
    drawn = []
    original = ImageDraw.ImageDraw.text

    def record(self, xy, text, *args, **kwargs):
        drawn.append(text)
        return original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", record)
    st.cache_data.clear()
    for page in PAGES:
        page_app(page, lang="zh")
    for file, tab_key, tab in TAB_VISITS:
        page_app(file, lang="zh", **{tab_key: tab})
    assert drawn  # the numbered patch grid, the mask values, MobileViT's pixel order
    assert all(re.fullmatch(r"[0-9x,.\-−]*", text) for text in drawn), sorted(set(drawn))[:20]
