"""WCAG 2.1 AA in Chromium, on every page and every tab, in English and in 中文: axe-core (rules WCAG 2.0 / 2.1 /
2.2 A and AA, plus target-size) finds no serious or critical violation at 390 px (a phone) and at 1280 px (a
projector); nothing is cut off at 320 px outside a scroll region a keyboard can reach (1.4.10 reflow; this replaces
the old phone test, which accepted content clipped by `overflow: hidden`); every chart leaves a finger's scroll to
the page (dragmode off) and its title clear of Plotly's mode bar.

One server, one browser page and one session for the whole tour (tests/a11y.py's Tour): each language is opened once
by URL, pages by the sidebar's links, tabs by their buttons and widths by the viewport, each check after the script
run has ended. The lesson bar, its questions and a class are checked in tests/test_keyboard.py's walk."""
from __future__ import annotations

import pytest

from ui.stages import EXTRAS

from .a11y import REFLOW, VISITS, WIDTHS, Tour, Visit, axe_source, axe_violations, blocking, cut_off, report

pytestmark = pytest.mark.browser
# the pipeline's pages and tabs, then the pages beyond it (the playground; its live views once trained are checked
# in tests/test_browser_playground.py)
STOPS = [(lang, visit) for lang in ("en", "zh") for visit in VISITS + [Visit(s.key, None, "") for s in EXTRAS]]
# Every Plotly chart of the main area: one whose drag mode is on captures a finger scrolling the page; one whose
# title runs under the mode bar (its PNG button, top right: ui/common.py's rule) hides part of the title on a phone.
# A chart a student clicks (st.plotly_chart with on_select; Streamlit then sets clickmode "event+select") is the one
# exception to the first: Streamlit 1.67 replaces its dragmode False by "pan" (PlotlyChart.tsx treats False as unset;
# upstream, like streamlit/streamlit#8766: on_select overrides the figure's own layout), README "Accessibility".
CHART_PROBLEMS = """() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')].flatMap(plot => {
  const title = plot.querySelector('.gtitle'), named = (title?.textContent || '(no title)').slice(0, 60);
  const problems = [], layout = plot._fullLayout || {};
  if (layout.dragmode !== false && !String(layout.clickmode).includes('select'))
    problems.push(`"${named}": dragmode is ${layout.dragmode}, not false`);
  const bar = plot.querySelector('.modebar');
  if (bar && title) {
    const a = bar.getBoundingClientRect(), b = title.getBoundingClientRect();
    if (a.width > 0 && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
      problems.push(`"${named}": the mode bar covers the title (${Math.round(b.right - a.left)} px)`);
  }
  return problems;
})"""


@pytest.fixture(scope="module")
def tour(chromium, app_url):
    axe = axe_source()
    context = chromium.new_context(viewport={"width": WIDTHS["projector"][0], "height": WIDTHS["projector"][1]})
    try:
        yield Tour(context.new_page(), app_url), axe
    finally:
        context.close()


@pytest.fixture(scope="module", params=STOPS, ids=[f"{lang}-{visit.id}" for lang, visit in STOPS])
def stop(request, tour):
    """The tour moved (in place) to one page and tab in one language; every test of this module runs there before
    it moves on."""
    lang, visit = request.param
    walk, axe = tour
    walk.go(lang, visit)
    return walk, axe


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_axe_finds_no_serious_violation(stop, width):
    walk, axe = stop
    walk.width(WIDTHS[width])
    found = blocking(axe_violations(walk.page, axe))
    assert not found, f"at {WIDTHS[width][0]} px:\n" + report(found)


def test_nothing_is_cut_off_at_320_px(stop):
    walk, _axe = stop
    walk.width(REFLOW)
    assert cut_off(walk.page) == []


def test_charts_leave_the_scroll_to_the_page_and_their_titles_clear(stop):
    walk, _axe = stop
    walk.width(WIDTHS["phone"])
    assert walk.page.evaluate(CHART_PROBLEMS) == []
