"""Start the app's server with its heavy imports already under way: `python -m ui.server [streamlit run options]`.

`streamlit run app.py` imports nothing of the app until the first browser connects; that first session's run then
imports torch (~1.6 s on the 2-core machine), pandas and plotly before it can draw anything, while the server sat idle
during its own start and the browser's page load. Here a thread imports them (and freezes them out of the garbage
collector's walks) from the moment the process starts, and app.py waits for that thread before its own imports, so
no session ever sees a half-imported module. `tasks.py run` and the tests start the server this way; plain
`streamlit run app.py` still works, only its first page comes later.
"""
from __future__ import annotations

import functools
import socket
import sys
import threading
import time
from pathlib import Path

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _preload(port: int) -> None:
    # Once the server listens (importing alongside Streamlit's own start only delayed both: one GIL), or at once
    # when a session is already waiting for these imports.
    deadline = time.monotonic() + 30
    while not HURRY.is_set() and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            HURRY.wait(0.05)
    try:
        import torch  # noqa: F401

        import vitviz  # noqa: F401  (its models, images, weights; not ui.shell: its caches belong to the runtime)
    finally:
        CORE.set()
    try:
        import pandas  # noqa: F401
        import plotly.graph_objects  # noqa: F401

        from vitviz.runtime import freeze_loaded_objects

        freeze_loaded_objects()
    finally:
        ALL.set()


PRELOAD: threading.Thread | None = None  # started by main
CORE, ALL = threading.Event(), threading.Event()  # torch and vitviz imported; everything imported and frozen
HURRY = threading.Event()  # a session waits: stop waiting for the port


def wait_for_preload(everything: bool = True) -> bool:
    """Block until the preload thread has imported torch and vitviz (`everything`: also pandas and plotly, which
    the overview does not need). False, at once, where no preload thread was started (plain `streamlit run`): the
    caller imports them itself."""
    if PRELOAD is None:
        return False
    HURRY.set()
    (ALL if everything else CORE).wait()
    return True


@functools.cache  # once per process: app.py calls it on every run
def keep_upload_replies() -> None:
    """Make Streamlit keep its answers to upload requests when a script run starts.

    Choosing a file makes the browser ask for an upload URL (BackMsg `file_urls_request`); the server queues the
    answer (`file_urls_response`) for its next flush to the browser. Streamlit 1.67 clears a session's queue when a
    script run starts, keeping only lifecycle messages (`ForwardMsgQueue.clear(retain_lifecycle_msgs=True)`), so a
    file chosen while a run starts (a page switch, a slider) lost its answer: the browser waited for ever, the
    uploader showed the file, and the app never saw it (about 1 upload in 180 in the 5-browser memory bench;
    `tests/test_uploads.py` reproduces it at will). This keeps those answers queued, in order, whatever is cleared.
    """
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    clear = ForwardMsgQueue.clear

    def clear_keeping_upload_replies(self, retain_lifecycle_msgs=False, fragment_ids_this_run=None):
        replies = [m for m in self._queue if m.WhichOneof("type") == "file_urls_response"] if retain_lifecycle_msgs else []
        clear(self, retain_lifecycle_msgs, fragment_ids_this_run)
        self._queue.extend(replies)  # not deltas: the coalescing index of deltas is unaffected

    ForwardMsgQueue.clear = clear_keeping_upload_replies


def main(argv: list[str]) -> int:
    global PRELOAD
    port = int(argv[argv.index("--server.port") + 1]) if "--server.port" in argv[:-1] else 8501
    PRELOAD = threading.Thread(target=_preload, args=(port,), name="vitviz preload", daemon=True)
    PRELOAD.start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", APP, *argv]
    return cli.main()


if __name__ == "__main__":
    sys.modules["ui.server"] = sys.modules[__name__]  # app.py's `import ui.server` must find this thread
    sys.exit(main(sys.argv[1:]))
