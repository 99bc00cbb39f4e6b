"""How a page looks and answers the keyboard: the presenter view for a 1280×720 projector, the hide flags (like
TensorFlow Playground's), the phone layout, what every page needs for WCAG 2.1 AA that Streamlit does not give
(visible focus, wrapping text, scroll regions a keyboard can reach, the navigation's list markup, Plotly's mode bar
off the chart, no single-key shortcut) and the keys that move between lesson steps (PageDown / PageUp, arrows)."""
from __future__ import annotations

import json

import streamlit as st
from streamlit import runtime

from ui.common import media_url
from vitviz.i18n import _

HIDE_FLAGS = {
    "sidebar": '[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], '
               '[data-testid="stExpandSidebarButton"] { display: none !important; }',
    "code": '[class*="st-key-vv-source-"] { display: none !important; }',
    "downloads": '[data-testid="stDownloadButton"] { display: none !important; }',
    "equations": '[data-testid="stLatex"], .katex-display { display: none !important; }',
    "footer": '[class*="st-key-vv-footer"] { display: none !important; }',
}
PRESENTER_CSS = """
html { font-size: 19px; }
[data-testid="stMainBlockContainer"] { padding-top: 1.2rem; max-width: 100%; }
/* the header holds only the sidebar's >> button, left of the content: its white band would cut the title in half */
[data-testid="stHeader"] { background: transparent; }
.st-key-lesson-text p { font-size: 1.25rem; line-height: 1.4; }
.st-key-lesson-bar h3 { font-size: 1.7rem; }
"""
# Every width. A word, a formula in text or an identifier longer than the line wraps instead of widening its box
# (WCAG 1.4.10), and so do labels Streamlit would cut with an ellipsis (a download button's, a metric's); a table's
# numbers stay whole and the table scrolls. Equations and code blocks cannot wrap: they scroll in their own box, which
# A11Y_JS makes focusable. Captions are grey text, not faded boxes: Streamlit's opacity 0.6 took the code in them to
# 3:1 (now 8:1 and 7.9:1). A slider's end labels appear at once on hover or focus (a fade is a moment of 1:1 text).
# The tab row's scroll buttons are 24 px wide (2.5.8). The focus ring is drawn on everything a keyboard reaches
# (2.4.7), in the theme's blue (7:1 on white). A chart's PNG behind its axes is a map of cells, one pixel a cell
# (ui.common.cacheable_pictures): drawn with sharp cells, as plotly draws an image trace, not blurred between them
# (photos behind axes are JPEG or WebP and stay smooth).
BASE_CSS = """
[data-testid="stMarkdownContainer"] :is(p, li, code) { overflow-wrap: anywhere; }
[data-testid="stCaptionContainer"] { opacity: 1; color: #4f4f4f; }
[data-testid="stMain"] .stMarkdownEllipsis :is(p, span) { white-space: normal; text-overflow: clip; }
[data-testid="stMain"] .stMarkdownEllipsis { overflow: visible; }
[data-testid="stSliderTickBar"] { transition: none !important; }
[data-testid="stTabsScrollLeft"], [data-testid="stTabsScrollRight"] { min-width: 24px; }
.katex-display, [data-testid="stLatex"] { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
[data-testid="stMarkdownContainer"]:has(> table) { overflow-x: auto; max-width: 100%; }
__FOCUSABLE__:focus-visible { outline: 3px solid #0a4fd6 !important; outline-offset: 2px; }
.js-plotly-plot image[*|href$=".png"] { image-rendering: pixelated; }
"""
BASE_CSS = BASE_CSS.replace("__FOCUSABLE__", ':is(a, button, summary, input, [role="tab"], [role="slider"], '
                            '[role="radio"], [role="switch"], [data-vv-scroll])')
# Phones (320–430 px): tighter margins, pictures no wider than the screen, rows of columns wrap, code wraps.
PHONE_CSS = """
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-left: 0.6rem; padding-right: 0.6rem; }
  [data-testid="stImageContainer"], [data-testid="stImageContainer"] img, [data-testid="stPlotlyChart"] {
    max-width: 100% !important; height: auto !important; }
  [data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
  [data-testid="stCode"] pre, [data-testid="stCode"] code { white-space: pre-wrap !important; overflow-wrap: anywhere; }
  :not(.katex-display) > .katex { display: inline-block; max-width: 100%; overflow-x: auto; overflow-y: hidden;
    vertical-align: middle; }
}
"""
# In every page, kept up to date as the page changes (a MutationObserver, and on resize):
# - a box that scrolls (an equation, a code block, a wide table) and holds nothing focusable gets tabindex 0, a role
#   and a name, so that a keyboard can scroll it (WCAG 2.1.1; axe's scrollable-region-focusable); it loses them
#   when it fits again;
# - the sidebar's navigation: Streamlit puts each section (a heading and its links) as a <div> directly in the <ul>
#   (axe: list, listitem). The <ul> becomes presentational and each section a list named by its heading;
# - a Material icon's ligature text inside a button that has its own name is hidden from screen readers;
# - Streamlit reruns the script on a bare "r" pressed anywhere (a WCAG 2.1.4 character-key shortcut that cannot be
#   switched off; "c" is off with client.toolbarMode = "minimal"): it is stopped before it reaches Streamlit,
#   except where the key types a letter;
# - a control that stops taking the focus while it has it (Streamlit disables a tab bar while the run that a tab
#   started lasts longer than a moment: the open tab loses its tabindex, and the browser moves the focus to the
#   page, so the next Tab starts again from the top) gets it back once it can take it again, unless the focus went
#   elsewhere meanwhile (WCAG 2.4.3).
A11Y_JS = """(() => {
if (window.vitvizA11y) { window.vitvizA11y(); return; }
const FOCUSABLE = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';
const BOXES = '.katex-display, [data-testid="stLatex"], :not(.katex-display) > .katex, pre, '
  + '[data-testid="stMarkdownContainer"]';
const name = (box) => {
  const names = window.vitvizScrollNames;
  if (box.matches('.katex-display, [data-testid="stLatex"], .katex') || box.querySelector('.katex')) {
    return names.equation;
  }
  if (box.matches('pre')) return names.code;
  return box.querySelector('table') ? names.table : names.other;
};
const scrolls = (box) => {
  const style = getComputedStyle(box);
  const x = /auto|scroll/.test(style.overflowX) && box.scrollWidth > box.clientWidth + 1;
  const y = /auto|scroll/.test(style.overflowY) && box.scrollHeight > box.clientHeight + 1;
  return x || y;
};
const mark = (box) => {
  const mine = box.hasAttribute('data-vv-scroll');
  if (scrolls(box) && (mine || !box.querySelector(FOCUSABLE))) {
    if (!mine) {
      box.setAttribute('data-vv-scroll', '');
      box.setAttribute('tabindex', '0');
      box.setAttribute('role', 'region');
    }
    if (box.getAttribute('aria-label') !== name(box)) box.setAttribute('aria-label', name(box));
  } else if (mine) {
    for (const a of ['data-vv-scroll', 'tabindex', 'role', 'aria-label']) box.removeAttribute(a);
  }
};
const navigation = () => {
  const list = document.querySelector('[data-testid="stSidebarNavItems"]');
  if (!list || ![...list.children].some(c => c.tagName !== 'LI')) return;
  list.setAttribute('role', 'none');
  for (const section of list.children) {
    if (section.tagName === 'LI' || section.getAttribute('role') === 'list') continue;
    section.setAttribute('role', 'list');
    const heading = section.querySelector('header');
    if (heading) section.setAttribute('aria-label', heading.innerText.trim());
  }
};
let pending = null;
const watched = new WeakSet();
const resized = new ResizeObserver(() => later());  // Streamlit lays columns out again after the window's resize
// A Material icon is a ligature: its text ("keyboard_double_arrow_right") is no word to read aloud where the button
// has its own name (Streamlit's sidebar buttons: aria-label "Expand sidebar"); axe's label-content-name-mismatch.
const icons = () => {
  for (const icon of document.querySelectorAll('button[aria-label] [data-testid="stIconMaterial"]:not([aria-hidden])')) {
    icon.setAttribute('aria-hidden', 'true');
  }
};
const update = () => {
  pending = null;
  navigation();
  icons();
  for (const box of document.querySelectorAll(BOXES)) {
    mark(box);
    if (!watched.has(box)) { watched.add(box); resized.observe(box); }
  }
};
const later = () => { if (pending === null) pending = setTimeout(update, 150); };
window.vitvizA11y = later;
new MutationObserver(later).observe(document.body, {childList: true, subtree: true, characterData: true});
let dropped = null;  // the control that lost the focus by no longer taking it
document.addEventListener('focusout', (e) => {
  const t = e.target;
  dropped = !e.relatedTarget && t instanceof HTMLElement && t.isConnected && !t.matches(FOCUSABLE) ? t : null;
}, true);
document.addEventListener('focusin', () => { dropped = null; }, true);
new MutationObserver(() => {
  const lost = !document.activeElement || document.activeElement === document.body;
  if (dropped && lost && dropped.isConnected && dropped.matches(FOCUSABLE)) {
    const control = dropped;
    dropped = null;
    control.focus({preventScroll: true});
  }
}).observe(document.body, {attributes: true, subtree: true, attributeFilter: ['tabindex', 'aria-disabled', 'disabled']});
const types = (e) => e.composedPath().some(n => /^(INPUT|TEXTAREA|SELECT)$/.test(n.tagName) || n.isContentEditable);
window.addEventListener('keydown', (e) => {
  if (e.key.toLowerCase() === 'r' && !e.altKey && !e.ctrlKey && !e.metaKey && !types(e)) e.stopPropagation();
}, true);
later();
})();
"""
# Each run sends only a loader (~300 bytes, not the script's 3.5 kB): it sets the names in the run's language and
# updates the page, or, on the session's first page, loads the script from a media file (`ui.common.media_url`),
# which the browser keeps; a load that fails is tried again on the next run.
A11Y_LOADER = """<script>
window.vitvizScrollNames = __SCROLL_NAMES__;
if (window.vitvizA11y) { window.vitvizA11y(); }
else if (!document.querySelector('script[data-vitviz-a11y]')) {
  const script = document.createElement('script');
  script.src = __URL__;
  script.dataset.vitvizA11y = '';
  script.onerror = () => script.remove();
  document.head.append(script);
}
</script>"""
# PageDown/PageUp (a presentation clicker) and the arrow keys move between steps unless a field or slider has focus.
KEYS_JS = """<script>
if (!window.vitvizLessonKeys) {
  window.vitvizLessonKeys = true;
  document.addEventListener("keydown", (e) => {
    const which = {PageDown: "next", ArrowRight: "next", PageUp: "prev", ArrowLeft: "prev"}[e.key];
    if (!which || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    const keeps = 'input, textarea, select, [role="slider"], [role="radio"], [role="tab"], [contenteditable="true"], '
      + '[data-vv-scroll]';  // a scrolling box's arrows scroll it
    if (t && t.closest && t.closest(keeps)) return;
    const button = document.querySelector(".st-key-lesson-" + which + " button");
    if (button && !button.disabled) { e.preventDefault(); button.click(); }
  });
}
</script>"""


def scroll_names() -> dict[str, str]:
    """What a screen reader calls each kind of box that scrolls, in the session's language."""
    return {"equation": _("Equation (scrolls sideways)"), "code": _("Code (scrolls)"),
            "table": _("Table (scrolls sideways)"), "other": _("Scrolling text")}


def style(present: bool, hide: tuple[str, ...], in_lesson: bool) -> None:
    """The page's CSS (focus, wrapping, the phone layout, presenter type, hide flags), the accessibility script and,
    in a lesson, the step keys."""
    css = BASE_CSS + PHONE_CSS + (PRESENTER_CSS if present else "") + "".join(HIDE_FLAGS[f] for f in hide)
    if present and in_lesson:  # the step's title and text stand for the page's introduction
        css += '.st-key-vv-intro { display: none; }'

    st.html(f"<style>{css}</style>")
    if runtime.exists():  # the script as a media file: a browser fetches it once (`A11Y_LOADER`)
        url = media_url(A11Y_JS.encode(), "text/javascript", "vitviz.a11y")
        names = json.dumps(scroll_names(), ensure_ascii=False)
        st.html(A11Y_LOADER.replace("__SCROLL_NAMES__", names, 1).replace("__URL__", json.dumps(url), 1),
                unsafe_allow_javascript=True)
    if in_lesson:
        st.html(KEYS_JS, unsafe_allow_javascript=True)
