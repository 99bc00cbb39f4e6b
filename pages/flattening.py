"""Stage 2 · Flattening: each patch becomes one P·P·C vector, in (p1 p2 c) order, by the model's own `flatten`."""
import io

import numpy as np
import streamlit as st
from PIL import Image

from ui.patches import cached_figure, clickable_grid, model_patches, patch_picker
from ui.chrome import show_source, stage_footer, stage_header
from ui.context import context
from ui.models import show_notes, vit_input
from vitviz.i18n import _, sentences
from vitviz.models.vit import ViT
from vitviz.viz import patches as viz
from vitviz.viz.encode import png

MATRIX_DOWNLOAD_MAX = 1_000_000  # values: beyond this the matrix is only offered as code, not as a file
MATRIX_PX = 860  # the matrix picture's width at most: the main column at 1400 px with the sidebar open


@st.cache_resource(max_entries=8, show_spinner=False)
def matrix_base(cache_key: str, _flat01: np.ndarray, channels: int, size: tuple[int, int]):
    """The matrix picture of this input, palette-quantised once (the payload stays well under 400 KB); shared
    read-only (`mark_row` draws on a copy)."""
    return viz.matrix_base(_flat01, channels, size).quantize(250, method=Image.Quantize.MEDIANCUT)


@st.cache_data(max_entries=16, show_spinner=False)
def matrix_png(cache_key: str, selected: int, _base, n: int) -> bytes:
    return png(viz.mark_row(_base, n, selected))


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

data = model_patches(vin)
grid = data.grid
c, h, w = data.input_shape[1:]
p = grid.patch
n, k = data.flat.shape
gh, gw = data.patches.shape[:2]

left, right = st.columns([1, 1], gap="large")
with left:
    selected = patch_picker(n)
    clickable_grid(vin, grid, selected, plot_width=330, max_height=480)
r, col = grid.cell(selected)
vector, vector01 = data.flat[selected], data.flat01[selected]
with right:
    st.markdown(_("**1 · The patch.** Patch {index} (row {row}, column {col}), enlarged with nearest-neighbour "
                  "pixels so each of its pixels is a visible square. Hover for its values.").format(
                      index=selected, row=r, col=col))
    zoom = cached_figure("zoom", vin.cache_key, selected, 440,
                         lambda: viz.patch_zoom_figure(data.patches01[r, col], selected, height=440))
    st.plotly_chart(zoom, config={"displaylogo": False}, key="zoom")

st.subheader(_("2 · Patch {index} read as a vector of {p}·{p}·{c} = {k:,} numbers").format(index=selected, p=p, c=c,
                                                                                            k=k))
st.latex(
    r"x_p^{(i)}[k] = x\big[c,\; r P + p_1,\; q P + p_2\big], \qquad k = (p_1 \cdot P + p_2)\cdot C + c"
    rf", \qquad i = r \cdot {gw} + q = {selected}"
)
st.markdown(
    _("The first numbers of the vector are the **three channels of pixel (0, 0)**, then the three of pixel (0, 1), "
      "and so on along the top row of the patch. Each cell is shaded in its own channel's colour, "
      "brighter for a larger value; the number written in it is the value the model reads.")
)
strip = cached_figure("strip", vin.cache_key, selected, 4 * c,
                      lambda: viz.vector_strip_figure(vector, vector01, p, c, count=min(4 * c, k)))
st.plotly_chart(strip, config={"displaylogo": False}, key="strip")
st.markdown(
    _("The whole vector, wrapped every {p}·{c} = {width} numbers so that each line is one row p1 of the patch. "
      "The stripes are the interleaving: red, green and blue values alternate along every line.").format(
        p=p, c=c, width=p * c)
)
rows = cached_figure("rows", vin.cache_key, selected, 0, lambda: viz.vector_rows_figure(vector, vector01, p, c))
st.plotly_chart(rows, config={"displaylogo": False}, key="rows")

st.subheader(_("3 · All {n:,} patches stacked: the {n:,} × {k:,} matrix").format(n=n, k=k))
base = matrix_base(vin.cache_key, data.flat01, c, (MATRIX_PX, int(min(520, max(160, n * 2)))))
st.image(
    matrix_png(vin.cache_key, selected, base, n), output_format="PNG", width=base.width,
    caption=sentences(
        _("Row i is patch i (raster order), column k is element k in (p1 p2 c) order; each value in its channel's "
          "colour."),
        _("Patch {index}'s row is framed in yellow.").format(index=selected),
        *([_("The {n:,} × {k:,} matrix is averaged into the picture's {width} × {height} pixels: neighbouring red, "
             "green and blue columns blend where there is no room for stripes.").format(
                 n=n, k=k, width=base.width - viz.MATRIX_MARGIN, height=base.height - 8)]
          if k > MATRIX_PX or n > 520 else []),
        _("The model reads normalised values (x − mean) / std; for display they are mapped back to 0–1."),
    ),
)

st.subheader(_("The code and the shapes, with your numbers"))
code, table = st.columns([1, 1], gap="large")
with code:
    st.code(f'''flat = rearrange(
    x,                 # ({', '.join(map(str, data.input_shape))})
    "b c (h p1) (w p2) -> b (h w) (p1 p2 c)",
    p1={p}, p2={p},
)                      # -> (1, {n}, {k})''', language="python")
    if grid.dropped_pixels:
        st.caption(_("`x` is first sliced to `x[..., :{height}, :{width}]`: the {bottom} bottom rows and {right} "
                     "right columns that make no whole patch are dropped (page 1).").format(
                         height=gh * p, width=gw * p, bottom=grid.drop_bottom, right=grid.drop_right))
with table:
    st.markdown(
        _("| step | dims | shape |") + "\n|---|---|---|\n"
        f"| pixel_values | b c H W | ({', '.join(map(str, data.input_shape))}) |\n"
        f"| patchify | b h w p1 p2 c | (1, {gh}, {gw}, {p}, {p}, {c}) |\n"
        f"| flatten → x_p | b (h w) (p1 p2 c) | (1, {n:,}, {k:,}) |\n\n"
        + sentences(
            f"h = ⌊{h}/{p}⌋ = {gh}, w = ⌊{w}/{p}⌋ = {gw}, N = h·w = {n:,}, P²·C = {p}²·{c} = {k:,}.",
            _("Shapes read from the model's own tensors; the model does it in the two steps of the table "
              "(`ViT.patchify`, `ViT.flatten`, source below)."),
        )
    )


def _vector_csv(vector: np.ndarray, p: int, c: int) -> str:
    """One line per element: k, p1, p2, c and the value the model reads."""
    names = viz.CHANNEL_NAMES if c == 3 else [str(i) for i in range(c)]
    lines = [f"{j},{j // (p * c)},{j // c % p},{names[j % c]},{v:.7g}" for j, v in enumerate(vector)]
    return "k,p1,p2,c,value\n" + "\n".join(lines) + "\n"


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, dtype=np.float32))
    return buf.getvalue()


def _matrix_csv(array: np.ndarray) -> str:
    buf = io.StringIO()
    np.savetxt(buf, array, delimiter=",", fmt="%.6g")
    return buf.getvalue()


st.subheader(_("Download the numbers"))
st.caption(_("The values the model reads (normalised), in (p1 p2 c) order. Files are made when you click."))
a, b, m1, m2 = st.columns(4)
stem = f"patch{selected}_P{p}"
a.download_button(_("Patch {index} vector").format(index=selected) + " · CSV", lambda: _vector_csv(vector, p, c),
                  f"{stem}.csv", "text/csv", on_click="ignore", key="dl-vec-csv")
b.download_button(_("Patch {index} vector").format(index=selected) + " · NPY", lambda: _npy(vector), f"{stem}.npy",
                  "application/octet-stream", on_click="ignore", key="dl-vec-npy")
if n * k <= MATRIX_DOWNLOAD_MAX:
    flat = data.flat
    m1.download_button(_("Matrix {n}×{k}").format(n=n, k=k) + " · CSV", lambda: _matrix_csv(flat), f"patches_{n}x{k}.csv", "text/csv",
                       on_click="ignore", key="dl-mat-csv")
    m2.download_button(_("Matrix {n}×{k}").format(n=n, k=k) + " · NPY", lambda: _npy(flat), f"patches_{n}x{k}.npy",
                       "application/octet-stream", on_click="ignore", key="dl-mat-npy")
else:
    st.info(_("The matrix has {values:,} values ({mib:.1f} MiB as float32) — too big to offer as a download here. "
              "Compute it yourself: `flat = model.flatten(model.patchify(pixel_values))` (README, library "
              "section).").format(values=n * k, mib=n * k * 4 / 2**20), icon=":material/info:")

show_source(ViT.flatten, ViT.patchify, viz.channel_colours)
stage_footer("flattening")
