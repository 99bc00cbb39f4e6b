"""Test-wide settings: never touch the network, and start every AppTest with empty data caches."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_data_cache():
    """st.cache_data outlives AppTest instances in one process; clear it so tests don't see each other."""
    import streamlit as st

    st.cache_data.clear()
    yield
