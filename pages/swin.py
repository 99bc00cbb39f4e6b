"""Placeholder: this stage's page is built in its own issue."""
import streamlit as st

from ui.shell import stage_footer, stage_header

stage_header("swin", "This page is not built yet: it will show this stage computed by the real model on your image.")
st.info("Coming soon.", icon=":material/construction:")
stage_footer("swin")
