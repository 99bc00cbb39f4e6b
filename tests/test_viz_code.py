"""Code blocks without Streamlit's highlighter (vitviz.viz.code): the visible text is the source exactly, tokens are
classed as Python's own tokenizer reads them, and every colour is readable on the block (WCAG 1.4.3)."""
from __future__ import annotations

import html
import inspect
import re

import pytest

import vitviz.attention
import vitviz.embeddings
import vitviz.models.vit
from vitviz.viz.code import BACKGROUND, COLOURS, code_html

from .colour import DEFICIENCIES, contrast


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def visible(block: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", block))


def spans(block: str, css: str) -> list[str]:
    return [html.unescape(s) for s in re.findall(rf'<span class="{css}">(.*?)</span>', block, re.S)]


@pytest.mark.parametrize("module", [vitviz.attention, vitviz.embeddings, vitviz.models.vit])
def test_visible_text_is_the_source(module):
    source = inspect.getsource(module)
    assert visible(code_html(source, True, "Code")) == source


def test_tokens_are_classed_as_python_reads_them():
    source = 'def f(x: int) -> str:  # why\n    return "a<b" if x > 1.5 else f"{x}"\n'
    block = code_html(source, True, "Code")
    assert spans(block, "k") == ["def", "return", "if", "else"]
    assert spans(block, "f") == ["f"]
    assert spans(block, "s") == ['"a<b"', 'f"{x}"']
    assert spans(block, "n") == ["1.5"]
    assert spans(block, "c") == ["# why"]
    assert "&lt;b" in block and "<b" not in block.replace("<span", "")


def test_plain_text_and_broken_python_are_shown_plain():
    for text, python in (("B2 B3 B4 B1\nif x -> y <z> & w", False), ('def f(:\n    """unterminated', True)):
        block = code_html(text, python, "Code")
        assert visible(block) == text and 'class="k"' not in block


def test_block_is_a_named_focusable_region():
    block = code_html("x = 1", True, 'Code "quoted"')
    assert block.startswith('<pre><span class="vv-code" tabindex="0" role="region" aria-label="Code &quot;quoted&quot;">')
    assert "<code" not in block  # Streamlit hands <pre><code> to its 1.5 MB highlighter


@pytest.mark.parametrize("deficiency", sorted(DEFICIENCIES))
def test_every_colour_reads_on_the_block(deficiency):
    for css, colour in COLOURS.items():
        assert contrast(rgb(colour), rgb(BACKGROUND), deficiency) >= 4.5, (css, colour)
