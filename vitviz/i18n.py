"""The language of what a student reads: English, and Simplified Chinese from a gettext catalog.

Every visible string is written in English inside `_()` (or `N_()` where it is defined before any language is
known, e.g. a module-level table, and translated with `_()` where it is shown). Placeholders are named
(`_("{n} patches").format(n=n)`) so that a translation may put them in another order. The catalog lives in
`vitviz/locales/zh/LC_MESSAGES/vitviz.po`, extracted, updated and compiled with Babel (`python3 tasks.py i18n`);
the app reads the compiled `.mo` with the standard library's gettext, one translation object per language.

The language is per script run, not per process: each Streamlit session runs in threads of its own, and the UI
sets the session's language with `set_language` at the start of every run and fragment run. Code that renders
text in another thread (a prefetch) passes the language explicitly with `use_language`. Terms follow
shared/GLOSSARY.md (patch and token stay English in Chinese sentences, as the Chinese tutorials write them).
"""
from __future__ import annotations

import contextlib
import functools
import gettext
from contextvars import ContextVar
from pathlib import Path

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "vitviz"
LANGUAGES = {"en": "English", "zh": "中文"}  # code (the URL's `lang`) -> the language's own name
DEFAULT = "en"
_current: ContextVar[str] = ContextVar("vitviz_language", default=DEFAULT)


@functools.cache
def translation(lang: str) -> gettext.NullTranslations:
    """The translation object of one language (English: the strings as written). Read once per process."""
    if lang == DEFAULT:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALES, languages=[lang])


def language() -> str:
    """The language of the current run ("en" or "zh")."""
    return _current.get()


def set_language(lang: str) -> None:
    """Make `lang` the language of this thread's run; an unknown code falls back to English."""
    _current.set(lang if lang in LANGUAGES else DEFAULT)


@contextlib.contextmanager
def use_language(lang: str):
    """`lang` inside the block, the previous language after it."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """`message` in the current language."""
    return translation(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in the current language."""
    return translation(_current.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark `message` for the catalog without translating it now (it is translated with `_()` where shown)."""
    return message


def sentences(*parts: str) -> str:
    """Sentences, each translated on its own, as one paragraph (the empty ones left out): a space between them in
    English, none in Chinese, whose full stop carries no space after it."""
    return ("" if _current.get() == "zh" else " ").join(part for part in parts if part)
