"""What the patch pages share: the model's own patches of the current input (cut by `vitviz.patching`, cached
here), the selected-patch input (bound to the URL, so pages 1, 2, 3 and 5 agree) and the clickable patch grid."""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vitviz.describe.patching import describe_grid
from vitviz.i18n import _, language
from vitviz.patching import Patches, cut_patches
from vitviz.viz.patches import PatchGrid, fit_height, grid_figure

from .common import chart, shared_figure
from .models import VitInput


@st.cache_resource(max_entries=8, show_spinner=False)
def _patches(cache_key: str, _model, _pixel_values) -> Patches:
    """Shared by every session (read-only arrays): st.cache_data would copy ~10 MB per run at 512 × 1536."""
    return cut_patches(_model, _pixel_values)


def model_patches(vin: VitInput) -> Patches:
    """The current input cut and flattened by the model itself (cached per model, P, image and size)."""
    return _patches(vin.cache_key, vin.model, vin.pixel_values)


def patch_picker(n: int, label: str | None = None) -> int:
    """The selected patch as a number input (key "patch", bound to the URL), clamped to 0 … n-1."""
    current = st.session_state.get("patch")
    if isinstance(current, (int, float)):
        # Re-set as a session value: a widget's value is dropped when another page's widget takes the key over,
        # so without this a page switch would fall back to 0 wherever the URL does not carry the selection.
        st.session_state["patch"] = min(max(int(current), 0), n - 1)
    return int(st.number_input(label or _("Selected patch (0 – {last}, raster order)").format(last=n - 1),
                               min_value=0, max_value=n - 1, step=1, key="patch", bind="query-params",
                               help=_("Click a patch on the image, or type its index. Pages 1, 2, 3 and 5 share it.")))


def patch_from_event(event, grid: PatchGrid) -> int | None:
    """A plotly click/selection event on `grid_figure` -> the patch's raster index (None if no patch)."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points:
        if point.get("x") is None or point.get("y") is None:
            continue
        index = grid.locate(float(point["x"]), float(point["y"]))
        if index is not None:
            return index
    return None


def _on_click(key: str, grid: PatchGrid) -> None:
    index = patch_from_event(st.session_state.get(key), grid)
    if index is not None:
        select_patch(index)


def clickable_grid(vin: VitInput, grid: PatchGrid, selected: int, plot_width: int = 480, max_height: int = 640) -> None:
    """The input with its patch grid; a click on a patch selects it for this and the next pages (the keyboard's
    way is `patch_picker`'s number input).

    plot_width: about how wide (px) the column shows the image at 1400 px, to size the figure without blank bands.
    """
    height = fit_height(grid.height, grid.width, plot_width, max_height)
    # A fresh key per (input, selection): each click is a change, even on a patch selected before.
    key = "grid-" + hashlib.sha1(f"{vin.cache_key}|{selected}|{height}".encode()).hexdigest()[:12]
    image = np.asarray(vin.shown.convert("RGB"))
    fig = cached_figure("grid", vin.cache_key, selected, height,
                        lambda: grid_figure(image, grid.patch, selected, height))
    chart(fig, alt=describe_grid(grid, selected, image), key=key, on_select=lambda: _on_click(key, grid),
          selection_mode="points")


def cached_figure(name: str, cache_key: str, selected: int, size: int, _build: Callable[[], go.Figure]) -> go.Figure:
    """A figure built once per (name, input, selected patch, size, language) and shared read-only.

    Building a plotly figure (validation) costs more than all the page's numpy work; st.plotly_chart only reads
    the figure (`to_dict()` copies it), so one object can serve every session. `size` stands for whatever else
    `_build` depends on (a height, a count). The figures' titles and hover texts are in the run's language.
    """
    return _cached_figure(name, cache_key, selected, size, language(), _build)


@st.cache_resource(max_entries=96, show_spinner=False)
def _cached_figure(name: str, cache_key: str, selected: int, size: int, lang: str,
                   _build: Callable[[], go.Figure]) -> go.Figure:
    return shared_figure(_build())


def selected_patch(vin: VitInput) -> int:
    """The patch selected on any page (raster index, clamped to the current grid)."""
    n = vin.grid[0] * vin.grid[1]
    return min(int(st.session_state.get("patch", 0)), n - 1)


def select_patch(index: int) -> None:
    """Select a patch for this and the next pages (call from click callbacks)."""
    st.session_state["patch"] = int(index)
