"""Figures of the app's panels: PIL images and plotly figures built from numpy arrays (no streamlit in here)."""
