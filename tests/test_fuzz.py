"""A seeded fuzz of every page, in the manner of PhET's continuous fuzzing: a fixed number of random actions (clicks
on the page's controls and charts, keys on a focused control, slider moves, tab switches) drawn from one seed per
page, each followed by the end of the script run it started, so that a seed replays the same walk. It fails on any
exception box, any error in the browser's console or any uncaught script error (and the shared server fixture fails
the session on any warning the server logs). The main area only: the sidebar's model and image are the other tests'
(a fuzz that loads every model would spend the budget loading them). VITVIZ_FUZZ_SEED picks another seed."""
from __future__ import annotations

import os
import random
import re

import pytest

from ui.stages import STAGES

from .browser import exceptions, goto, wait_idle

pytestmark = pytest.mark.browser
ACTIONS_PER_PAGE = 25
SEED = int(os.environ.get("VITVIZ_FUZZ_SEED", "0"))
PAGES = ["", *(s.key for s in STAGES)]
KEYS = ("ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown", "Enter", "Space",
        "Tab", "Shift+Tab", "Escape", "1", "7")
# Failed loads the browser logs that are not the app's errors: Streamlit's client, opened on a page's path, first asks
# for its server under that path (404) before the root; and a picture of a run that the next run has already replaced
# (a slider moved three steps in a row) is gone from the media store (404) when the browser asks for it. What counts
# is that every picture on the page once the runs have ended is there: BROKEN_IMAGES. The browser names the failed
# URL as the message's location; Streamlit's image list logs the same replaced picture as its own "Image source
# error" with the URL in the text.
NOT_THE_APPS = re.compile(r"/[^/]+/_stcore/(host-config|health)$|/media/[0-9a-f]+\.\w+$")
REPLACED_PICTURE = re.compile(r"^Client Error: Image source error - \S+/media/[0-9a-f]+\.\w+$")
BROKEN_IMAGES = """() => [...document.querySelectorAll('[data-testid="stMain"] img')]
  .filter(i => i.complete && i.naturalWidth === 0).map(i => 'broken picture: ' + (i.alt || i.src).slice(0, 80))"""
# What a click may land on: the main area's controls, tabs and charts. Not links (they leave the page), downloads (a
# file dialog), the element toolbars (full screen, copy: the clipboard is not the app's).
_TARGETS = """(kind) => {
  const main = document.querySelector('[data-testid="stMain"]');
  const selector = {
    click: 'button, [role="tab"], [role="radio"], [role="checkbox"], [role="switch"], summary, '
      + '.js-plotly-plot .nsewdrag',
    key: 'input, button, [role="tab"], [role="radio"], [role="slider"], [tabindex="0"]',
    slider: '[role="slider"], input[type="range"]',
    tab: '[role="tab"]',
  }[kind];
  const skip = '[data-testid="stDownloadButton"], .stElementToolbar, [data-testid="stCodeCopyButton"], a';
  document.querySelectorAll('[data-fuzz]').forEach(e => e.removeAttribute('data-fuzz'));
  const found = [...main.querySelectorAll(selector)].filter(e => {
    const r = e.getBoundingClientRect();
    const enabled = !e.disabled && e.getAttribute('aria-disabled') !== 'true';
    return !e.closest(skip) && enabled && (r.width > 0 || e.type === 'range');  // a slider's <input> is 1 px
  });
  found.forEach((e, i) => e.setAttribute('data-fuzz', String(i)));
  return found.length;
}"""


def act(page, rng: random.Random) -> str:
    """One random action on the page; returns what it did (for the failure message: the seed replays it)."""
    kind = rng.choice(("click", "click", "key", "slider", "tab"))
    count = page.evaluate(_TARGETS, kind)
    if not count:
        return f"{kind}: nothing to act on"
    index = rng.randrange(count)
    target = page.locator(f'[data-fuzz="{index}"]')
    described = target.evaluate("e => (e.getAttribute('aria-label') || e.innerText || e.className.baseVal || "
                                "e.tagName).replace(/\\s+/g, ' ').slice(0, 50)")
    if kind in ("click", "tab"):
        box = target.bounding_box() if target.is_visible() else None
        if box is None:
            return f"{kind} #{index} ({described}): not visible"
        x, y = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
        target.click(position={"x": box["width"] * x, "y": box["height"] * y}, timeout=10_000)
        return f"{kind} #{index} ({described}) at ({x:.2f}, {y:.2f})"
    target.focus()
    keys = [rng.choice(("ArrowLeft", "ArrowRight", "Home", "End"))] * rng.randint(1, 4) if kind == "slider" \
        else [rng.choice(KEYS)]
    for key in keys:
        page.keyboard.press(key)
    return f"{kind} #{index} ({described}): {' '.join(keys)}"


@pytest.mark.parametrize("path", PAGES, ids=[p or "overview" for p in PAGES])
def test_random_clicks_keys_sliders_and_tabs_break_nothing(chromium, app_url, path):
    rng = random.Random(f"{SEED}:{path}")
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text} ({m.location['url']})") if m.type == "error"
            and not NOT_THE_APPS.search(m.location["url"]) and not REPLACED_PICTURE.search(m.text) else None)
    page.on("pageerror", lambda e: errors.append(f"script error: {e}"))
    done: list[str] = []
    try:
        goto(page, app_url, path)
        for _ in range(ACTIONS_PER_PAGE):
            done.append(act(page, rng))
            wait_idle(page)
            found = exceptions(page) + errors + page.evaluate(BROKEN_IMAGES)
            assert not found, f"seed {SEED}, /{path}, after:\n  " + "\n  ".join(done) + "\n" + "\n".join(found)
    finally:
        context.close()
