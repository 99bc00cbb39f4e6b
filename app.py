"""vitviz: how vision transformers see an image, stage by stage. Start with `python3 tasks.py run`."""
import os
import time

from ui.server import keep_upload_replies

keep_upload_replies()  # a file chosen while a run starts must not lose its upload URL (Streamlit 1.67)
import streamlit as st
import torch

from ui import i18n, lesson_routing, presenter
from ui.lesson_bar import bar as lesson_bar
from ui.questions import question
from ui.models import download_progress
from ui.server import counted_run
from ui.sidebar import sidebar
from ui.stages import EXTRAS, STAGES
from vitviz.i18n import _
from vitviz.runtime import COLLECTOR, flush_denormals, freeze_loaded_objects, keep_freed_memory

# Sessions run in parallel threads: each op using every core makes their OpenMP teams spin against each other.
THREADS = max(1, (os.cpu_count() or 2) // 2)
if torch.get_num_threads() != THREADS:
    torch.set_num_threads(THREADS)
flush_denormals()  # this run's thread: ~10× slower arithmetic on values below ~1e-38 otherwise (Swin's mask)
keep_freed_memory()  # forwards and traces reuse freed memory instead of page-faulting fresh memory in
freeze_loaded_objects()  # full collections then skip the imported libraries' objects

i18n.apply()  # the session's language, before any text of this run
# The tab's icon is an emoji, drawn by the browser: a :material/ icon is fetched from fonts.gstatic.com, which a
# classroom without internet cannot reach (an error in every page's console).
st.set_page_config(page_title=_("vitviz — how vision transformers see"), page_icon="👁️",
                   layout="wide", initial_sidebar_state="collapsed" if lesson_routing.presenting() else "auto")

overview = st.Page("pages/overview.py", title=_("Overview"), icon=":material/route:", url_path="overview", default=True)
stages = [st.Page(s.file, title=_(s.title), icon=s.icon, url_path=s.key) for s in STAGES]
# The playground is no stage of the pipeline: its own section, after it (the overview and the footers walk STAGES)
extras = [st.Page(s.file, title=_(s.title), icon=s.icon, url_path=s.key) for s in EXTRAS]
page = st.navigation({"vitviz": [overview], _("The pipeline"): stages, _("Try it yourself"): extras})
start = time.perf_counter()
try:
    with counted_run():  # background work (the Swin page's prefetch) waits for a quiet server
        lesson = lesson_routing.prepare(page.url_path or "overview")  # before any widget: a step sets the widgets' values
        if lesson.lesson or lesson.page != "overview":
            # Before any chart or table. Plotly looks pandas up in sys.modules, where another session's import in
            # progress leaves it half-initialised ("has no attribute 'Series'"); a run importing it here waits for
            # that import to finish. The overview draws neither, so a cold start's first page skips its 0.35 s.
            import pandas  # noqa: F401

            freeze_loaded_objects(after="pandas")
        presenter.style(lesson.present, lesson.hide, lesson.lesson is not None)
        progress = st.container()  # stays empty unless trained weights are being downloaded
        bar = lesson_bar(lesson)
        sidebar()
        if question(lesson, bar):  # a step's question keeps the page hidden until it is answered
            page.run()
        download_progress(progress)  # after the page: it has asked for the weights it shows
finally:  # also after a run stopped by a rerun
    COLLECTOR.maybe_collect()  # reference cycles: a full collection every 10 s, not Streamlit's one per run
# For load tests: the server time of every completed run (an interrupted run raises and is not logged).
if run_log := os.environ.get("VITVIZ_RUN_LOG"):
    with open(run_log, "a") as log:
        log.write(f"{page.url_path or 'overview'} {time.perf_counter() - start:.4f}\n")
