"""Every picture and chart carries a text alternative computed from what it shows (WCAG 1.1.1), checked in the source
(no browser: axe accepts any alt text, so axe alone proves nothing). Pages and ui/ draw pictures and charts only
through `ui.common.picture` / `ui.common.chart`, never `st.image` / `st.plotly_chart` (or `.image(` /
`.plotly_chart(` on a column or container) directly; and the `alt=` they pass is computed (a `vitviz.describe`
sentence, or a translated sentence formatted with the data), never a literal string, an f-string or a bare `_("…")`,
empty included, except at the decorative call sites named below, each with why it is decorative."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("pages", "ui")
COMMON = "ui/common.py"  # where the two calls live
DRAWING = {"image", "plotly_chart"}
WRAPPERS = {"picture", "chart"}
TRANSLATE = {"_", "N_"}
# Call sites of picture/chart whose alt may be "" (a screen reader skips the picture), as (file, function): why the
# picture adds nothing a student would miss. Empty today: every picture of the app says something.
DECORATIVE: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Call:
    file: str  # path from the repository root
    function: str  # the enclosing function ("<module>" at the top level)
    line: int
    name: str  # the called attribute or name
    alt: ast.expr | None  # the alt= argument (None: absent)
    has_kwargs: bool  # a **mapping is passed (alt may be in it)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line} ({self.function})"


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return node.func.id if isinstance(node.func, ast.Name) else None


def calls(path: Path) -> list[Call]:
    """Every call of a drawing name (image, plotly_chart, picture, chart) in one file, with its enclosing function."""
    tree, found = ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Call) and _called(child) in DRAWING | WRAPPERS:
                alt = next((k.value for k in child.keywords if k.arg == "alt"), None)
                found.append(Call(str(path.relative_to(ROOT)), function, child.lineno, _called(child), alt,
                                  any(k.arg is None for k in child.keywords)))
            visit(child, inner)

    visit(tree, "<module>")
    return found


def every_call() -> list[Call]:
    return [c for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.py")) for c in calls(path)]


def literal(alt: ast.expr) -> bool:
    """A string written in place: "…", f"…", or a bare _("…") / N_("…") (a translated constant, not computed)."""
    if isinstance(alt, ast.Constant) and isinstance(alt.value, str) or isinstance(alt, ast.JoinedStr):
        return True
    return (isinstance(alt, ast.Call) and isinstance(alt.func, ast.Name) and alt.func.id in TRANSLATE
            and all(isinstance(a, ast.Constant) for a in alt.args))


def test_pictures_and_charts_are_drawn_only_through_ui_common():
    direct = [c.where + f": .{c.name}(" for c in every_call() if c.name in DRAWING and c.file != COMMON]
    assert not direct, "draw through ui.common.picture / chart (with alt):\n" + "\n".join(direct)


def test_every_alt_is_computed_except_the_named_decorative_ones():
    wrapped = [c for c in every_call() if c.name in WRAPPERS and c.file != COMMON]
    assert wrapped, "no picture or chart call found: the scan is broken"
    missing = [c.where for c in wrapped if c.alt is None and not c.has_kwargs]
    written = [f"{c.where}: alt={ast.unparse(c.alt)}" for c in wrapped
               if c.alt is not None and literal(c.alt) and (c.file, c.function) not in DECORATIVE]
    assert not missing, "picture/chart without alt:\n" + "\n".join(missing)
    assert not written, "alt written in place instead of computed from the data:\n" + "\n".join(written)


def test_the_decorative_list_names_real_empty_alts():
    sites = {(c.file, c.function): c for c in every_call() if c.name in WRAPPERS}
    for (file, function), why in DECORATIVE.items():
        assert why.strip(), (file, function)
        call = sites.get((file, function))
        assert call is not None, f"{file} ({function}) draws no picture or chart any more: remove it from DECORATIVE"
        assert isinstance(call.alt, ast.Constant) and call.alt.value == "", f"{call.where} is not decorative (alt='')"


def test_the_scan_sees_what_it_must_refuse():
    source = ("import streamlit as st\nfrom ui.common import chart\n"
              "def draw(col, fig):\n    col.plotly_chart(fig)\n    chart(fig, alt='a chart')\n"
              "    chart(fig, alt=_('A chart'))\n    chart(fig, alt=_('{n} bars').format(n=3))\n")
    tree = ast.parse(source)
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _called(n) in DRAWING | WRAPPERS]
    alts = [next((k.value for k in n.keywords if k.arg == "alt"), None) for n in found]
    assert [_called(n) for n in found] == ["plotly_chart", "chart", "chart", "chart"]
    assert [a is not None and literal(a) for a in alts] == [False, True, True, False]
