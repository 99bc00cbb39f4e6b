"""A CI-sized classroom: 4 students at once on one real server, every page, an upload and a slider each."""
import pytest

from .browser import require_chromium, streamlit_server
from .load import classroom

pytestmark = pytest.mark.browser

RSS_BUDGET_MB = 2048  # the whole server process, written in the README


def test_four_students_at_once(tmp_path):
    require_chromium()
    with streamlit_server() as (url, proc):
        report = classroom(url, proc.pid, sessions=4, tmp=tmp_path)
    print("\n" + report.table())
    assert not report.errors, report.errors
    # Under heavy CPU load a session sometimes ends up showing the sample again (lost session or upload state):
    # reported, investigated in issue 8, not yet a failure here.
    assert all(len(times) == 4 for times in report.render_s.values())
    assert max(m for _, m in report.rss) < RSS_BUDGET_MB
