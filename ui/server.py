"""The server process as a whole: fixes to Streamlit that the app needs (installed by app.py, idempotent), and the
count of script runs in progress over every session (background work waits for a quiet server)."""
from __future__ import annotations

import contextlib
import functools
import threading


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
        # A fragment's rerun keeps every non-delta message already; only a full run's clear drops the replies.
        replies = ([m for m in self._queue if m.WhichOneof("type") == "file_urls_response"]
                   if retain_lifecycle_msgs and fragment_ids_this_run is None else [])
        clear(self, retain_lifecycle_msgs, fragment_ids_this_run)
        self._queue.extend(replies)  # not deltas: the coalescing index of deltas is unaffected

    ForwardMsgQueue.clear = clear_keeping_upload_replies


_runs = 0  # script runs in progress on this server, over all sessions (see counted_run)
_runs_lock = threading.Lock()


@contextlib.contextmanager
def counted_run():
    """Count the enclosed script run in `runs_in_progress()` until it ends, finished, stopped or interrupted."""
    global _runs
    with _runs_lock:
        _runs += 1
    try:
        yield
    finally:
        with _runs_lock:
            _runs -= 1


def runs_in_progress() -> int:
    """Script runs that app.py has started and not yet ended, in every session of this server."""
    return _runs
