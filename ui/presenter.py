"""How a page looks in a lesson: the presenter view for a 1280×720 projector, the hide flags (like TensorFlow
Playground's), the phone layout, and the keys that move between steps (PageDown / PageUp, arrows)."""
from __future__ import annotations

import streamlit as st

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
# Students often follow from a phone: nothing may push the page sideways at 414 px.
PHONE_CSS = """
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-left: 0.6rem; padding-right: 0.6rem; }
  [data-testid="stMain"] { overflow-x: hidden; }  /* KaTeX's hidden MathML copy still widens the scroll area */
  .katex-display, [data-testid="stLatex"], [data-testid="stMarkdownContainer"] { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
  [data-testid="stImageContainer"], [data-testid="stImageContainer"] img, [data-testid="stPlotlyChart"] {
    max-width: 100% !important; height: auto !important; }
  [data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
  [data-testid="stCode"] pre { white-space: pre-wrap; }
}
"""
# PageDown/PageUp (a presentation clicker) and the arrow keys move between steps unless a field or slider has focus.
KEYS_JS = """<script>
if (!window.vitvizLessonKeys) {
  window.vitvizLessonKeys = true;
  document.addEventListener("keydown", (e) => {
    const which = {PageDown: "next", ArrowRight: "next", PageUp: "prev", ArrowLeft: "prev"}[e.key];
    if (!which || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t && t.closest && t.closest('input, textarea, select, [role="slider"], [role="radio"], [role="tab"], [contenteditable="true"]')) return;
    const button = document.querySelector(".st-key-lesson-" + which + " button");
    if (button && !button.disabled) { e.preventDefault(); button.click(); }
  });
}
</script>"""


def style(present: bool, hide: tuple[str, ...], in_lesson: bool) -> None:
    """The page's CSS (presenter type, hide flags, the phone layout) and, in a lesson, the step keys."""
    css = PHONE_CSS + (PRESENTER_CSS if present else "") + "".join(HIDE_FLAGS[f] for f in hide)
    if present and in_lesson:  # the step's title and text stand for the page's introduction
        css += '.st-key-vv-intro { display: none; }'

    st.html(f"<style>{css}</style>")
    if in_lesson:
        st.html(KEYS_JS, unsafe_allow_javascript=True)
