"""Stage 2 · Flattening: each patch becomes one P·P·C vector, in (p1 p2 c) order, by the model's own `flatten`."""
import streamlit as st

from ui.chrome import show_source, stage_footer, stage_header
from ui.common import chart, code_block, picture, shape_text
from ui.context import context
from ui.models import show_notes, vit_input
from ui.patches import cached_figure, clickable_grid, model_patches, patch_picker
from vitviz.describe.patching import describe_matrix, describe_rows, describe_strip, describe_zoom
from vitviz.i18n import _, sentences
from vitviz.models.vit import ViT
from vitviz.patching import FlatteningView, flattening_view, matrix_csv, npy, vector_csv
from vitviz.viz import patches as viz
from vitviz.viz.encode import png


@st.cache_resource(max_entries=8, show_spinner=False)
def matrix_base(cache_key: str, _flat01, channels: int, size: tuple[int, int]):
    """The matrix picture of this input, palette-quantised once; shared read-only (`mark_row` draws on a copy).
    64 colours (about 21 levels a channel, each value in its channel's colour): 59 kB at P = 16, 122 kB with 250."""
    return viz.matrix_base(_flat01, channels, size, colours=64)


@st.cache_data(max_entries=16, show_spinner=False)
def matrix_png(cache_key: str, selected: int, _base, n: int) -> bytes:
    return png(viz.mark_row(_base, n, selected))


def draw_patch(view: FlatteningView, cache_key: str) -> None:
    """The selected patch enlarged, pixel by pixel."""
    s = view.selected
    st.markdown(_("**1 · The patch.** Patch {index} (row {row}, column {col}), enlarged with nearest-neighbour "
                  "pixels so each of its pixels is a visible square. Hover for its values.").format(
                      index=s.index, row=s.row, col=s.col))
    zoom = cached_figure("zoom", cache_key, s.index, 440,
                         lambda: viz.patch_zoom_figure(view.patch01, s.index, height=440))
    chart(zoom, alt=describe_zoom(view.patch01, s.index), key="zoom")


def draw_vector(view: FlatteningView, cache_key: str) -> None:
    """The selected patch as its vector: the element formula, the first numbers, and all of them wrapped by p1."""
    index, grid, c, k = view.selected.index, view.patches.grid, view.patches.channels, view.patches.length
    p = grid.patch
    st.subheader(_("2 · Patch {index} read as a vector of {p}·{p}·{c} = {k:,} numbers").format(index=index, p=p, c=c,
                                                                                                k=k))
    # One short line per formula: each fits a phone's width (WCAG 1.4.10, reflow at 320 px).
    st.latex(
        r"\begin{gathered} x_p^{(i)}[k] = x\big[c,\; r P + p_1,\; q P + p_2\big] \\"
        r" k = (p_1 \cdot P + p_2)\cdot C + c \\"
        rf" i = r \cdot {grid.cols} + q = {index} \end{{gathered}}"
    )
    st.markdown(
        _("The first numbers of the vector are the **three channels of pixel (0, 0)**, then the three of pixel (0, 1), "
          "and so on along the top row of the patch. Each cell is shaded in its own channel's colour, "
          "brighter for a larger value; the number written in it is the value the model reads.")
    )
    strip = cached_figure("strip", cache_key, index, view.strip,
                          lambda: viz.vector_strip_figure(view.vector, view.vector01, p, c, count=view.strip))
    chart(strip, alt=describe_strip(view), key="strip")
    st.markdown(
        _("The whole vector, wrapped every {p}·{c} = {width} numbers so that each line is one row p1 of the patch. "
          "The stripes are the interleaving: red, green and blue values alternate along every line.").format(
            p=p, c=c, width=view.line)
    )
    rows = cached_figure("rows", cache_key, index, 0, lambda: viz.vector_rows_figure(view.vector, view.vector01, p, c))
    chart(rows, alt=describe_rows(view), key="rows")


def draw_matrix(view: FlatteningView, cache_key: str) -> None:
    """All patches stacked as the N × P²C matrix, the selected one's row framed."""
    n, k, index = view.patches.grid.n, view.patches.length, view.selected.index
    st.subheader(_("3 · All {n:,} patches stacked: the {n:,} × {k:,} matrix").format(n=n, k=k))
    base = matrix_base(cache_key, view.patches.flat01, view.patches.channels, view.matrix_box)
    width, height = view.matrix_px
    picture(
        matrix_png(cache_key, index, base, n), alt=describe_matrix(view), width=base.width,
        caption=sentences(
            _("Row i is patch i (raster order), column k is element k in (p1 p2 c) order; each value in its "
              "channel's colour."),
            _("Patch {index}'s row is framed in yellow.").format(index=index),
            *([_("The {n:,} × {k:,} matrix is averaged into the picture's {width} × {height} pixels: neighbouring "
                 "red, green and blue columns blend where there is no room for stripes.").format(
                     n=n, k=k, width=width, height=height)]
              if view.averaged else []),
            _("The model reads normalised values (x − mean) / std; for display they are mapped back to 0–1."),
        ),
    )


def draw_code(view: FlatteningView) -> None:
    """The rearrange call and the shape table, with this input's numbers."""
    grid, input_shape = view.patches.grid, view.patches.input_shape
    h, w, p, gh, gw, n = grid.height, grid.width, grid.patch, grid.rows, grid.cols, grid.n
    c, k = view.patches.channels, view.patches.length
    st.subheader(_("The code and the shapes, with your numbers"))
    code, table = st.columns([1, 1], gap="large")
    with code:
        code_block(f'''flat = rearrange(
    x,                 # {shape_text(input_shape)}
    "b c (h p1) (w p2) -> b (h w) (p1 p2 c)",
    p1={p}, p2={p},
)                      # -> (1, {n}, {k})''', python=True)
        if grid.dropped_pixels:
            st.caption(_("`x` is first sliced to `x[..., :{height}, :{width}]`: the {bottom} bottom rows and {right} "
                         "right columns that make no whole patch are dropped (page 1).").format(
                             height=view.kept[0], width=view.kept[1], bottom=grid.drop_bottom,
                             right=grid.drop_right))
    with table:
        st.markdown(
            _("| step | dims | shape |") + "\n|---|---|---|\n"
            f"| pixel_values | b c H W | {shape_text(input_shape)} |\n"
            f"| patchify | b h w p1 p2 c | (1, {gh}, {gw}, {p}, {p}, {c}) |\n"
            f"| flatten → x_p | b (h w) (p1 p2 c) | (1, {n:,}, {k:,}) |\n\n"
            + sentences(
                f"h = ⌊{h}/{p}⌋ = {gh}, w = ⌊{w}/{p}⌋ = {gw}, N = h·w = {n:,}, P²·C = {p}²·{c} = {k:,}.",
                _("Shapes read from the model's own tensors; the model does it in the two steps of the table "
                  "(`ViT.patchify`, `ViT.flatten`, source below)."),
            )
        )


def draw_downloads(view: FlatteningView) -> None:
    """The selected vector and, when small enough, the whole matrix as CSV and NPY, encoded only when clicked."""
    index, p, c = view.selected.index, view.patches.grid.patch, view.patches.channels
    n, k, vector, flat = view.patches.grid.n, view.patches.length, view.vector, view.patches.flat
    st.subheader(_("Download the numbers"))
    st.caption(_("The values the model reads (normalised), in (p1 p2 c) order. Files are made when you click."))
    a, b, m1, m2 = st.columns(4)
    stem = f"patch{index}_P{p}"
    a.download_button(_("Patch {index} vector").format(index=index) + " · CSV", lambda: vector_csv(vector, p, c),
                      f"{stem}.csv", "text/csv", on_click="ignore", key="dl-vec-csv")
    b.download_button(_("Patch {index} vector").format(index=index) + " · NPY", lambda: npy(vector), f"{stem}.npy",
                      "application/octet-stream", on_click="ignore", key="dl-vec-npy")
    if view.downloadable:
        matrix = _("Matrix {n}×{k}").format(n=n, k=k)
        m1.download_button(matrix + " · CSV", lambda: matrix_csv(flat), f"patches_{n}x{k}.csv", "text/csv",
                           on_click="ignore", key="dl-mat-csv")
        m2.download_button(matrix + " · NPY", lambda: npy(flat), f"patches_{n}x{k}.npy",
                           "application/octet-stream", on_click="ignore", key="dl-mat-npy")
    else:
        st.info(_("The matrix has {values:,} values ({mib:.1f} MiB as float32) — too big to offer as a download "
                  "here. Compute it yourself: `flat = model.flatten(model.patchify(pixel_values))` (README, library "
                  "section).").format(values=view.values, mib=view.mib), icon=":material/info:")


ctx = context()
vin = vit_input(ctx)
stage_header(
    "flattening",
    _("A transformer layer multiplies **vectors**. So each P × P × C patch is unrolled into one row of "
      "**P·P·C numbers**, and the N rows are stacked into an **N × P²C matrix** — the paper's {formula}. The order "
      "of the numbers inside a row is fixed by the code: row p1 of the patch first, then column p2, then channel c — "
      "so the channels take turns, **R G B R G B …**.").format(formula=r"$x_p \in \mathbb{R}^{N \times (P^2 \cdot C)}$"),
)
show_notes(vin)
left, right = st.columns([1, 1], gap="large")
with left:
    selected = patch_picker(vin.grid[0] * vin.grid[1])
view = flattening_view(model_patches(vin), selected)
with left:
    clickable_grid(vin, view.patches.grid, selected, plot_width=330, max_height=480)
with right:
    draw_patch(view, vin.cache_key)
draw_vector(view, vin.cache_key)
draw_matrix(view, vin.cache_key)
draw_code(view)
draw_downloads(view)
show_source(ViT.flatten, ViT.patchify, viz.channel_colours)
stage_footer("flattening")
