"""Streamlit-side helpers shared by app.py and the pages (vitviz itself never imports streamlit)."""
