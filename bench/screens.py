"""Screenshots of every page and tab, to look at: at 390 px (a phone, the whole page), 1280 × 720 (a projector, what
fits on the screen) and 1400 px (a laptop, the whole page), and at 1400 px under each simulated colour-vision
deficiency (Chromium's Emulation.setEmulatedVisionDeficiency: deuteranopia, protanopia, tritanopia, achromatopsia).
One server, one browser page walked in place (tests/a11y.py's Tour), each picture after the script run has ended.

    python bench/screens.py [--out out/screens] [--lang en] [--only attention swin] [--no-deficiencies]

Writes <out>/<lang>/<page>[-<tab>]-<390|1280x720|1400|deuteranopia|…>.png and prints each file.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.a11y import VISITS, Tour  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

# (name, window, the whole page or the window only); the deficiencies come last, at the 1400 px whole page
SIZES = (("390", (390, 844), True), ("1280x720", (1280, 720), False), ("1400", (1400, 900), True))
DEFICIENCIES = ("deuteranopia", "protanopia", "tritanopia", "achromatopsia")


def file_name(visit, view: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "_", visit.id) + f"-{view}.png"


def whole_page(tour: Tour, width: int, path: Path) -> None:
    """The whole page: Streamlit scrolls its main area inside the window, so the window is made as tall as that area
    for the picture (a full-page screenshot of the window would stop at its height)."""
    tall = tour.page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    tour.width((width, max(tall, 600)))
    tour.page.screenshot(path=str(path))


def shoot(tour: Tour, cdp, folder: Path, visit, deficiencies: bool) -> list[Path]:
    """Every picture of one page and tab (the tour already there)."""
    written = []
    for view, size, whole in SIZES:
        tour.width(size)
        written.append(folder / file_name(visit, view))
        if whole:
            whole_page(tour, size[0], written[-1])
        else:
            tour.page.screenshot(path=str(written[-1]))
    for deficiency in DEFICIENCIES if deficiencies else ():
        cdp.send("Emulation.setEmulatedVisionDeficiency", {"type": deficiency})
        written.append(folder / file_name(visit, deficiency))
        tour.page.screenshot(path=str(written[-1]))  # the window is still as tall as the page at 1400 px
    cdp.send("Emulation.setEmulatedVisionDeficiency", {"type": "none"})
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "screens")
    parser.add_argument("--lang", default="en", choices=("en", "zh"))
    parser.add_argument("--only", nargs="*", default=None, help="page url paths (overview for the first page)")
    parser.add_argument("--no-deficiencies", action="store_true")
    args = parser.parse_args()
    visits = [v for v in VISITS if args.only is None or (v.path or "overview") in args.only]
    folder = args.out / args.lang
    folder.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with streamlit_server() as (url, _proc), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        tour, cdp = Tour(page, url), page.context.new_cdp_session(page)
        for visit in visits:
            tour.go(args.lang, visit)
            for path in shoot(tour, cdp, folder, visit, not args.no_deficiencies):
                print(path)
        browser.close()


if __name__ == "__main__":
    main()
