"""Server memory under a class's worth of uploads: 200 distinct photos across sessions, then everybody leaves.

Starts `streamlit run app.py` on 127.0.0.1 (its own config, so the real `server.disconnectedSessionTTL`) and drives
headless Chromium: one session first visits every page with the sample (models loaded, the "warm" baseline); then
`--sessions` sessions upload `--uploads` distinct phone-sized photos in all, each upload followed by a visit to the
next stage page and to every tab of it, so every page computes and caches arrays for many images. The contexts close; the server's RSS is
sampled until the disconnected sessions have been released. Prints the RSS at each phase and checks them against
the budget written in the README (tests/test_load.py: RSS_BUDGET_MB).

    python bench/bench_memory.py [--uploads 200] [--sessions 10] [--side 1600]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from vitviz.runtime import bench_setup  # noqa: E402

from tests.apptest import photo  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402
from tests.load import RssSampler, _idle, nav_link, photo_shown, rss_mb  # noqa: E402
from tests.test_load import RSS_BUDGET_MB  # noqa: E402
from ui.stages import STAGES  # noqa: E402

TTL_S = 120  # Streamlit's default server.disconnectedSessionTTL, which the app keeps


TABS = {  # the pages with tabs: each tab computes and caches its own arrays (the first one opens with the page)
    "attention": ("One head, step by step", "Whole matrix", "DINO masks", "Rollout", "Distance vs depth"),
    "swin": ("Cyclic shift", "Mask & attention", "Relative position bias", "Patch merging", "Cost"),
    "mobilevit": ("Unfold", "Global representation", "Fold", "Fusion", "Receptive field", "Cost"),
}


async def _visit(page, stage) -> None:
    """Open a stage page and every tab of it in turn."""
    await nav_link(page, stage).click()
    await _idle(page)
    for label in TABS.get(stage.key, ()):
        # by name: right after the navigation the previous page's tabs may still be on screen
        await page.get_by_test_id("stMain").get_by_role("tab", name=label, exact=True).click(timeout=120_000)
        await _idle(page)


async def _warm(browser, url: str) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    await page.goto(url, wait_until="domcontentloaded")
    await _idle(page)
    for stage in STAGES:
        await _visit(page, stage)
    await context.close()


async def _student(browser, url: str, index: int, files: list[Path], errors: list[str]) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(url, wait_until="domcontentloaded")
        await _idle(page)
        await page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
        await _idle(page)
        for k, file in enumerate(files):
            await page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(file))
            await photo_shown(page, file.name).wait_for(timeout=180_000)  # the upload's run, before navigating
            await _idle(page)
            await _visit(page, STAGES[(index + k) % len(STAGES)])
            errors += [f"session {index}: {t[:200]}" for t in await page.locator("[data-testid='stException']").all_inner_texts()]
    except Exception as err:  # a hung or crashed session is reported, not raised, with what its page showed
        try:
            sidebar = await page.get_by_test_id("stSidebar").inner_text(timeout=5_000)
            shown = sidebar[sidebar.find("Upload"):][:400].replace("\n", " | ")  # after the navigation links
            state = await page.get_attribute("[data-testid='stApp']", "data-test-script-state", timeout=5_000)
        except Exception as inner:  # noqa: BLE001 - the page itself may be gone
            shown, state = f"(unreadable: {type(inner).__name__})", "?"
        errors.append(f"session {index}: {type(err).__name__}: {str(err)[:200]} · at {page.url} · script {state} · "
                      f"sidebar: {shown}")
    finally:
        await context.close()


async def _run(url: str, pid: int, uploads: int, sessions: int, side: int, tmp: Path) -> dict[str, float]:
    from playwright.async_api import async_playwright

    phases: dict[str, float] = {"idle server": rss_mb(pid)}
    files = []
    for i in range(uploads):
        file = tmp / f"photo{i:03d}.jpg"
        file.write_bytes(photo(side, side * 3 // 4, seed=1000 + i))
        files.append(file)
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        await _warm(browser, url)
        phases["warm (every page once)"] = rss_mb(pid)
        start = time.monotonic()
        await asyncio.gather(*(_student(browser, url, i, files[i::sessions], errors) for i in range(sessions)))
        phases[f"after {uploads} uploads"] = rss_mb(pid)
        print(f"{uploads} uploads in {time.monotonic() - start:.0f} s, {len(errors)} errors", flush=True)
        await browser.close()
    for error in errors[:10]:
        print("ERROR", error)
    await asyncio.sleep(5)
    phases["sessions closed"] = rss_mb(pid)
    await asyncio.sleep(TTL_S + 30)  # the session TTL, then a cleanup round
    phases[f"{TTL_S + 35} s later"] = rss_mb(pid)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--side", type=int, default=1600, help="width of each photo (height 3/4 of it)")
    args = parser.parse_args()
    bench_setup()
    with tempfile.TemporaryDirectory() as tmp, streamlit_server() as (url, proc):
        sampler = RssSampler(proc.pid, period=1.0)
        sampler.start()
        phases = asyncio.run(_run(url, proc.pid, args.uploads, args.sessions, args.side, Path(tmp)))
        samples = sampler.stop()
    peak = max(m for _, m in samples)
    step = max(1, len(samples) // 16)
    print("server RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in samples[::step]))
    for name, mib in phases.items():
        print(f"{name:<28}{mib:>8.0f} MiB")
    print(f"{'peak':<28}{peak:>8.0f} MiB   (budget {RSS_BUDGET_MB} MiB: {'within' if peak <= RSS_BUDGET_MB else 'OVER'})")


if __name__ == "__main__":
    main()
