"""`python -m ui.launch [streamlit run options]`: `streamlit run app.py`, with the heavy libraries the first page
needs (torch, pandas, plotly, vitviz) imported in a thread from the moment the process starts.

Without it the first browser's first run imports them (~1.5 s here) after the page has loaded; with it that
happens while the server starts and the browser loads the page, when the process would otherwise wait. While the
thread imports, the interpreter switches threads every 1 ms instead of 5 ms, so that the server's event loop,
serving the page's files, never waits long for the GIL. Nothing that uses Streamlit is imported early (caches
created outside a script run would log warnings).
"""
from __future__ import annotations

import sys
import threading


def _preload() -> None:
    try:
        import pandas  # noqa: F401
        import plotly.graph_objects  # noqa: F401
        import torch  # noqa: F401

        import vitviz  # noqa: F401
        import vitviz.explain  # noqa: F401
    finally:
        sys.setswitchinterval(_SWITCH)


_SWITCH = sys.getswitchinterval()


def main(argv: list[str]) -> None:
    sys.setswitchinterval(0.001)
    threading.Thread(target=_preload, name="preload", daemon=True).start()
    from streamlit.web.cli import main as streamlit

    sys.argv = ["streamlit", "run", "app.py", *argv]
    streamlit()


if __name__ == "__main__":
    main(sys.argv[1:])
