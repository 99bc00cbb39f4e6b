"""A class over the protocol client in CI: a teacher walks a whole lesson and three followers show every step and
have their answers counted exactly. How fast they follow is measured in bench/bench_class.py, not asserted here."""
from __future__ import annotations

from .browser import require_chromium, streamlit_server
from .classload import follow_class


def test_followers_show_every_step_and_their_answers_are_counted_exactly():
    require_chromium()  # not needed by the protocol client, but the browser tests' server set-up is shared
    with streamlit_server() as (url, proc):
        report = follow_class(url, proc.pid, followers=3, read_s=0.5, follow_s=3.0, join_spread_s=0.5)
    print(report.table())
    assert report.errors == []
    assert sorted(report.arrival_s) == list(range(2, 9))
    assert all(len(seconds) == 3 for seconds in report.arrival_s.values())
    assert report.expected and report.counted == report.expected
    assert report.polls > 0
