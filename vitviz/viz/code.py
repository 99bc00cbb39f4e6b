"""Code as light HTML: Python source highlighted by the standard library's tokenizer (keywords, names being defined,
strings, numbers, comments) into a `<pre>` of small spans with CSS classes, so that a page shows code without
Streamlit's 1.5 MB syntax highlighter (issue 31). No `<code>` inside: Streamlit's markdown hands a `<pre><code>` to
that highlighter."""
from __future__ import annotations

import functools
import html
import io
import keyword
import tokenize

# Dark text on a light box of its own, in every theme; each colour >= 4.5:1 on the box (WCAG 1.4.3), also under the
# four colour-vision deficiencies tests/colour.py models. Keywords are bold and comments italic as well: the colour
# is never the only cue. On a phone the lines wrap instead of scrolling sideways.
BACKGROUND = "#f6f8fa"
COLOURS = {"": "#1f2328", "k": "#a40e26", "f": "#6639ba", "s": "#0a3069", "n": "#0550ae", "c": "#57606a"}  # class: colour
STYLES = {"k": "font-weight: 600; ", "c": "font-style: italic; "}
CODE_CSS = (
    f".vv-code {{ display: block; background: {BACKGROUND}; color: {COLOURS['']}; border: 1px solid #d0d7de; "
    "border-radius: 0.4rem; padding: 0.6rem 0.8rem; margin: 0 0 0.8rem 0; font-size: 0.85rem; line-height: 1.45; white-space: pre; "
    "overflow: auto; max-height: 32rem; max-width: 100%; "
    # the system's monospace, as .streamlit/config.toml's codeFont: Streamlit's Source Code Pro costs every student
    # 166 kB of fonts (upright and, for the italic comments, italic)
    'font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace; }\n'
    + "".join(f".vv-code .{css} {{ {STYLES.get(css, '')}color: {colour}; }}\n" for css, colour in COLOURS.items() if css)
    + ".vv-code:focus-visible { outline: 3px solid #0a4fd6; outline-offset: 2px; }\n"
    # A closed expander's content keeps the layout of the width it was last drawn at (Chromium skips laying it out
    # again): narrowed from a projector to a phone, its code would stand out of the page, though nobody sees it
    + 'details:not([open]) [data-testid="stExpanderDetails"]:has(.vv-code) { display: none; }\n'
    + "@media (max-width: 640px) { .vv-code { white-space: pre-wrap; overflow-wrap: anywhere; } }\n"
)


def _classes(source: str) -> list[tuple[int, int, str]]:
    """(start offset, end offset, CSS class) of every highlighted token of `source`, in order; [] when the text does
    not tokenize as Python (it is then shown plain)."""
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans, defining = [], False
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            kind, text = tok.type, tok.string
            if kind == tokenize.NAME and keyword.iskeyword(text):
                css = "k"
            elif kind == tokenize.NAME and defining:
                css = "f"
            else:
                css = {tokenize.STRING: "s", tokenize.NUMBER: "n", tokenize.COMMENT: "c"}.get(kind)
            defining = kind == tokenize.NAME and text in ("def", "class")
            if css and text:
                (row, col), (end_row, end_col) = tok.start, tok.end
                spans.append((starts[row - 1] + col, starts[end_row - 1] + end_col, css))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    return spans


@functools.lru_cache(maxsize=512)  # the same source panels on every run of a page: tokenizing one took ~3 ms
def code_html(text: str, python: bool, label: str) -> str:
    """`text` as one `<pre>` block: escaped, and with highlighting spans when `python` (tokens as `tokenize` reads
    them; anything that does not tokenize is shown plain). Its visible text is `text` exactly. The box is a span of
    its own, focusable and named `label` (a keyboard scrolls it: WCAG 2.1.1), since Streamlit draws the `<pre>` as a
    `<div>` without attributes."""
    out, at = [], 0
    for start, end, css in _classes(text) if python else []:
        out.append(html.escape(text[at:start], quote=False))
        out.append(f'<span class="{css}">{html.escape(text[start:end], quote=False)}</span>')
        at = end
    out.append(html.escape(text[at:], quote=False))
    label = html.escape(label, quote=True)
    return f'<pre><span class="vv-code" tabindex="0" role="region" aria-label="{label}">{"".join(out)}</span></pre>'
