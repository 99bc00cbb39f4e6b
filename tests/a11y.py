"""The accessibility harness the browser tests share: axe-core run in every frame of a page, the pages and tabs a
tour visits, moving one browser page through them in place (one session: pages by the sidebar's links, tabs by
their buttons, widths by the viewport, the language once by URL), and the reflow check (content cut off at 320 px
outside a scroll region a keyboard can reach)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from ui.stages import STAGES

from .browser import ROOT, assert_healthy, goto, wait_idle

# .ci/run installs it: npm install --prefix .cache/axe axe-core@4.14.1
AXE_JS = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]},
    "rules": {"target-size": {"enabled": True}},
    "iframes": False,  # every frame is injected and run on its own (`axe_violations`)
    "resultTypes": ["violations"],
}
BLOCKING = ("serious", "critical")
# Rules Streamlit's own markup breaks and the app cannot work around, each with its upstream issue: none today (the
# navigation list is repaired in the page by ui/presenter.py's script).
KNOWN_EXCEPTIONS: dict[str, str] = {}
WIDTHS = {"phone": (390, 844), "projector": (1280, 720)}
REFLOW = (320, 720)  # WCAG 1.4.10: 320 CSS px

_RUN_AXE = """async (options) => {
  const result = await axe.run(document, options);
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 300), impact: n.impact,
                          why: (n.failureSummary || '').slice(0, 300)}))}));
}"""


@dataclass(frozen=True)
class Visit:
    path: str  # the page's url path ("" is the overview)
    tab: int | None  # the index of its open tab (None for a page without tabs)
    label: str  # the tab's English label, for the test ids

    @property
    def id(self) -> str:
        return f"{self.path or 'overview'}" + (f"-{self.label}" if self.tab is not None else "")


VISITS = [Visit("", None, "")] + [
    v for s in STAGES for v in ([Visit(s.key, i, t) for i, t in enumerate(s.tabs)] or [Visit(s.key, None, "")])]


def axe_source() -> str:
    """axe-core's script; skipped when it is not installed, unless CI requires the browser tests."""
    if not AXE_JS.exists():
        if os.environ.get("VITVIZ_REQUIRE_BROWSER"):
            pytest.fail(f"{AXE_JS} is missing but VITVIZ_REQUIRE_BROWSER is set (.ci/run installs axe-core)")
        pytest.skip(f"axe-core not installed (npm install --prefix .cache/axe axe-core@{AXE_VERSION})")
    return AXE_JS.read_text()


def axe_violations(page, source: str) -> list[dict]:
    """axe's violations in the page and in each of its frames (Plotly or a component may draw in one), each with the
    frame's url."""
    found = []
    for frame in page.frames:
        if frame.is_detached():
            continue
        if not frame.evaluate("() => typeof window.axe !== 'undefined'"):
            frame.evaluate(source)
        found += [{**v, "frame": frame.url} for v in frame.evaluate(_RUN_AXE, AXE_OPTIONS)]
    return found


def blocking(violations: list[dict]) -> list[dict]:
    """The serious and critical violations that are not a listed upstream exception."""
    return [v for v in violations if v["impact"] in BLOCKING and v["id"] not in KNOWN_EXCEPTIONS]


def report(violations: list[dict]) -> str:
    """Each violation's rule, impact and every node's target and html, for a failing test's message."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {v['help']}")
        lines += [f"    {n['target']}  {n['html']}  ({n['why']})" for n in v["nodes"]]
    return "\n".join(lines)


class Tour:
    """One browser page walked through the app in place: a language is opened once by URL; pages are reached by the
    sidebar's links and tabs by their buttons (in the same session, as a student does), widths by the viewport."""

    def __init__(self, page, base: str):
        self.page, self.base = page, base
        self.lang: str | None = None
        self.path: str | None = None
        self.tab: int | None = None

    def go(self, lang: str, visit: Visit) -> None:
        """Open the visit's page and tab in `lang`, moving as little as it can; waits for the run to end."""
        if lang != self.lang:
            goto(self.page, self.base, visit.path, lang=lang)
            self.lang, self.path, self.tab = lang, visit.path, None
        elif visit.path != self.path:
            navigate(self.page, visit.path)
            self.path, self.tab = visit.path, None
        if visit.tab is not None and visit.tab != (self.tab or 0):
            open_tab_at(self.page, visit.tab)
        self.tab = visit.tab
        assert_healthy(self.page)

    def width(self, size: tuple[int, int]) -> None:
        """Resize the viewport, let the page lay itself out again (Plotly redraws on the window's resize) and scroll
        it to the top: what the header covers must not depend on where the last click left the page."""
        self.page.set_viewport_size({"width": size[0], "height": size[1]})
        self.page.evaluate("() => { window.scrollTo(0, 0); "
                           "document.querySelectorAll('[data-testid=\"stMain\"]').forEach(m => m.scrollTop = 0); }")
        self.page.wait_for_timeout(400)
        # Styles and fonts a page loads on demand (KaTeX's with its first equation) must have arrived: on a busy
        # machine a check could otherwise see an equation's unstyled MathML copy, or an icon font's ligature text
        self.page.wait_for_function("() => document.fonts.status === 'loaded' && [...document.querySelectorAll("
                                    "'.katex-mathml')].every(m => getComputedStyle(m).position === 'absolute')",
                                    timeout=60_000)


def navigate(page, path: str) -> None:
    """Go to another page by its link in the sidebar's navigation (the same session; the sidebar may be collapsed at
    a phone's width, so the link is clicked from script)."""
    page.evaluate("""(path) => {
      const links = [...document.querySelectorAll('[data-testid="stSidebarNavLink"]')];
      const link = links.find(a => new URL(a.href).pathname.replace(/^\\//, '') === path);
      if (!link) throw new Error('no navigation link to /' + path);
      link.click();
    }""", path)
    page.wait_for_function("(path) => location.pathname.replace(/^\\//, '') === path", arg=path)
    wait_idle(page)


def main_tabs(page):
    """The page's step tabs (in the main area)."""
    return page.get_by_test_id("stMain").get_by_role("tab")


def open_tab_at(page, index: int) -> None:
    """Click the page's tab number `index` and wait for the page to draw it."""
    tab = main_tabs(page).nth(index)
    tab.click()
    page.wait_for_function("(e) => e.getAttribute('aria-selected') === 'true'", arg=tab.element_handle())
    wait_idle(page)


# Content of the main area cut off at the current width: an element sticking out of the nearest box that clips it
# horizontally, unless that box scrolls and a keyboard can reach it (it, or something inside it, takes the focus);
# or sticking out of the page itself (it would scroll sideways). What is visually hidden on purpose for screen readers
# is not content cut off: KaTeX's MathML copy, an element of 2 px or less or inside such a box (the real <input> of a
# slider or radio). Inside a chart's SVG only its texts count: Plotly clips its marks to the plot area by design.
_CUT_OFF = """() => {
  const main = document.querySelector('[data-testid="stMain"]'), width = document.documentElement.clientWidth;
  const focusable = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';
  const reachable = (box) => box.tabIndex >= 0 || !!box.querySelector(focusable);
  const text = (e) => (e.innerText ?? e.textContent ?? '').replace(/\\s+/g, ' ').trim().slice(0, 50);
  const name = (e) => (e.dataset.testid || e.tagName.toLowerCase()) + ['', ...(e.getAttribute('class') || '').split(' ')
    .filter(c => c && !c.startsWith('st-emotion') && !/^e[0-9a-z]{6,8}[0-9]$/.test(c))].join('.');
  const found = [];
  for (const e of main.querySelectorAll('*')) {
    if (e.closest('.katex-mathml')) continue;
    if (e.closest('svg') && e.tagName !== 'text') continue;
    const r = e.getBoundingClientRect();
    if (r.width <= 2 || r.height <= 2) continue;
    let box = e.parentElement;
    while (box && box !== main && getComputedStyle(box).overflowX === 'visible') box = box.parentElement;
    if (box && box !== main) {
      const b = box.getBoundingClientRect(), how = getComputedStyle(box).overflowX;
      if (r.right <= b.right + 2 && r.left >= b.left - 2) continue;  // a glyph's side bearing is not cut text
      if (b.width <= 2 || b.height <= 2) continue;  // a visually hidden box
      // text wrapped in a <pre> hangs its trailing spaces past the edge without overflowing it
      if (!(box instanceof SVGElement) && box.scrollWidth <= box.clientWidth + 1) continue;
      const scrolls = how === 'auto' || how === 'scroll';
      if (scrolls && reachable(box)) continue;
      found.push(`${name(e)} "${text(e)}" cut by ${name(box)} (overflow ${how}${scrolls ? ', no keyboard focus' : ''})`
                 + ` at ${Math.round(b.right)} px, reaching ${Math.round(r.right)} px`);
    } else if (r.right > width + 1 || r.left < -1) {
      found.push(`${name(e)} "${text(e)}" out of the page: ${Math.round(r.left)} to ${Math.round(r.right)} px`
                 + ` of ${width}`);
    }
  }
  return found;
}"""


_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const text = (n) => {  // what a screen reader reads of n: without what is aria-hidden (a material icon's ligature)
    const copy = n.cloneNode(true);
    copy.querySelectorAll('[aria-hidden="true"]').forEach(h => h.remove());
    return copy.textContent;
  };
  const by = (e.getAttribute('aria-labelledby') || '').split(' ').map(id => document.getElementById(id))
    .filter(Boolean).map(text);
  const name = e.getAttribute('aria-label') || by.join(' ').trim() || (e.labels?.[0] && text(e.labels[0]))
    || text(e) || e.value || '';
  // a focus indicator: an outline or a box shadow on the element or on the box drawn around it (a hidden radio's
  // label, a number field's frame)
  let ring = false;
  for (let a = e, i = 0; a && i < 4 && !ring; a = a.parentElement, i++) {
    const s = getComputedStyle(a);
    ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 1) || s.boxShadow !== 'none';
  }
  const role = e.getAttribute('role') || (e.tagName === 'INPUT' ? e.type : e.tagName.toLowerCase());
  return {name: name.replace(/\\s+/g, ' ').trim(), role,
          value: e.value ?? null, selected: e.getAttribute('aria-selected') ?? e.getAttribute('aria-checked'),
          ring};
}"""


def focused(page) -> dict | None:
    """The element with the keyboard focus: its accessible name (roughly), role, value, selection and whether a focus
    indicator is drawn; None when nothing has the focus."""
    return page.evaluate(_FOCUSED)


def tab_to(page, name: str, role: str | None = None, limit: int = 150, key: str = "Tab") -> dict:
    """Press Tab (or `key`, e.g. Shift+Tab) until the focus is on an element whose name starts with `name` (and
    whose role is `role`); returns it. Fails after `limit` presses: the element cannot be reached by keyboard."""
    for _ in range(limit):
        page.keyboard.press(key)
        now = focused(page)
        if now and now["name"].startswith(name) and (role is None or now["role"] == role):
            return now
    raise AssertionError(f"{limit} × {key} never reached {role or 'an element'} named {name!r}")


# The box a sighted keyboard user looks at for the focused element: the element or, for a visually hidden one (a
# slider's or a radio's real <input>), the nearest box around it of at least 10 × 10 px; with a margin for a ring.
_FOCUS_BOX = """() => {
  let e = document.activeElement;
  while (e && e.parentElement && (e.getBoundingClientRect().width < 10 || e.getBoundingClientRect().height < 10))
    e = e.parentElement;
  e.scrollIntoView({block: 'center', inline: 'nearest'});
  const r = e.getBoundingClientRect(), m = 6;
  const x = Math.max(0, r.left - m), y = Math.max(0, r.top - m);
  return {x, y, width: Math.min(innerWidth - x, r.width + 2 * m), height: Math.min(innerHeight - y, r.height + 2 * m)};
}"""


def focus_is_visible(page) -> bool:
    """Whether the focused element looks different focused and not (WCAG 2.4.7): its box is photographed, the focus
    taken away (blur: no scroll) and the box photographed again; then Tab and Shift+Tab bring the focus back."""
    before = focused(page)
    box = page.evaluate(_FOCUS_BOX)
    page.wait_for_timeout(150)  # the scroll, and any transition of the ring
    with_focus = page.screenshot(clip=box)
    page.evaluate("() => document.activeElement.blur()")
    page.wait_for_timeout(150)
    without = page.screenshot(clip=box)
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    assert focused(page)["name"] == before["name"], (focused(page), before)
    return with_focus != without


def cut_off(page) -> list[str]:
    """What the main area shows cut off at the current width (see `_CUT_OFF`)."""
    return page.evaluate(_CUT_OFF)
