"""Stage 1 · Patching: the student's image cut into P×P patches by the model's own `patchify`."""
import streamlit as st

from ui.patches import cached_figure, clickable_grid, model_patches, patch_picker
from ui.chrome import show_source, stage_footer, stage_header
from ui.context import context
from ui.models import show_notes, vit_input
from vitviz.i18n import _, sentences
from vitviz.models.vit import ViT
from vitviz.viz import patches as viz
from vitviz.viz.encode import png

GALLERY_TILES = 324  # tiles drawn at most: more would be neither readable nor light (payload)


@st.cache_data(max_entries=16, show_spinner=False)
def gallery_png(cache_key: str, selected: int, _patches01) -> tuple[bytes, int, range]:
    """The gallery as one PNG (a few hundred KB at most), its width and the patch indices it shows."""
    picture, shown = viz.patch_gallery(_patches01, selected=selected, max_tiles=GALLERY_TILES)
    return png(picture), picture.width, shown


ctx = context()
vin = vit_input(ctx)
stage_header(
    "patching",
    _("A transformer reads a **sequence**, not a picture. So the Vision Transformer first cuts the image into "
      "non-overlapping **P × P squares — patches** — and reads them left to right, top to bottom (*raster order*). "
      "Every patch will become one token. Move **Patch size P** and **Input resolution** in the sidebar and watch "
      "the grid, the numbers and the gallery follow."),
)
show_notes(vin)

data = model_patches(vin)
grid = data.grid
c, h, w = data.input_shape[1:]
p, n = grid.patch, data.flat.shape[0]
gh, gw = data.patches.shape[:2]

cols = st.columns([1, 1, 1, 1, 1.4, 1.2, 1.2])
cols[0].metric(_("Height H"), h, help=_("pixel_values.shape[2]: the input after resizing to the sidebar's resolution"))
cols[1].metric(_("Width W"), w, help="pixel_values.shape[3]")
cols[2].metric(_("Patch P"), p, help=_("patches.shape[3]: pixels per patch side"))
cols[3].metric(_("Channels C"), c, help="R, G, B")
cols[4].metric(_("Grid h × w"), f"{gh}×{gw}", help="⌊H/P⌋ × ⌊W/P⌋ = patches.shape[1:3]")
cols[5].metric(_("Patches N"), f"{n:,}", help="h · w = flat.shape[1]")
cols[6].metric(_("Tokens N + 1"), f"{n + 1:,}", help=_("N patch tokens plus the CLS token (page 4)"))


def divides(size: int) -> str:
    q, r = divmod(size, p)
    return f"{size} = {q}·{p}" if r == 0 else f"{size} = {q}·{p} + **{r}**"


if grid.dropped_pixels == 0:
    st.success(_("P = {p} divides the input: {height} (height) and {width} (width). Every pixel lands in exactly one "
                 "patch.").format(p=p, height=divides(h), width=divides(w)), icon=":material/check_circle:")
else:
    bottom = _("the last **{n} pixel rows at the bottom**").format(n=grid.drop_bottom)
    right = _("the last **{n} pixel columns on the right**").format(n=grid.drop_right)
    if grid.drop_bottom and grid.drop_right:
        sides = _("{bottom} and {right}").format(bottom=bottom, right=right)
    else:
        sides = bottom if grid.drop_bottom else right
    fits = [q for q in range(4, 65) if h % q == 0 and w % q == 0]
    st.warning(
        sentences(
            _("**{p} does not divide the input**: {height} (height), {width} (width). This ViT keeps the {gh} × {gw} "
              "whole patches and **drops** {sides} — none at the top or left.").format(
                p=p, height=divides(h), width=divides(w), gh=gh, gw=gw, sides=sides),
            _("They are shaded red on the image: the model never sees these {pixels:,} pixels ({share:.1%} of the "
              "image).").format(pixels=grid.dropped_pixels, share=grid.dropped_pixels / (h * w)),
            _("That is what its Conv2d(kernel = stride = P) does — the layer of every ViT checkpoint, also in "
              "transformers — and `patchify` slices them off the same way."),
            _("Other models choose differently: Swin zero-pads right and bottom to a multiple of P, MobileViT resizes "
              "up to the next multiple."),
            _("Sizes that drop nothing at {h} × {w}: P = {sizes}.").format(h=h, w=w, sizes=", ".join(map(str, fits)))
            if fits else "",
        ),
        icon=":material/crop:",
    )

left, right = st.columns([3, 2], gap="large")
with right:
    selected = patch_picker(n)
    r, col = grid.cell(selected)
    top, lft, bottom, rgt = grid.box(selected)
    st.markdown(
        _("Patch **{index}** is row **{row}**, column **{col}** of the grid: index = row · {gw} + column = "
          "{row} · {gw} + {col}. It covers pixels y = {top}…{bottom}, x = {left}…{right}.").format(
            index=selected, row=r, col=col, gw=gw, top=top, bottom=bottom - 1, left=lft, right=rgt - 1)
    )
    zoom = cached_figure("zoom", vin.cache_key, selected, 340,
                         lambda: viz.patch_zoom_figure(data.patches01[r, col], selected, height=340))
    st.plotly_chart(zoom, config={"displaylogo": False}, key="zoom")
    st.caption(_("Click any patch on the image to select it, here and on the next pages."))
with left:
    clickable_grid(vin, grid, selected, plot_width=400)

st.subheader(_("The count"))
st.latex(
    r"x \in \mathbb{R}^{H \times W \times C} \;\longrightarrow\; "
    r"N = \left\lfloor \tfrac{H}{P} \right\rfloor \cdot \left\lfloor \tfrac{W}{P} \right\rfloor"
    rf" = \left\lfloor \tfrac{{{h}}}{{{p}}} \right\rfloor \cdot \left\lfloor \tfrac{{{w}}}{{{p}}} \right\rfloor"
    rf" = {gh} \cdot {gw} = {n:,} \text{{ patches of }} {p} \times {p} \times {c}"
)
st.markdown(
    _("The paper writes N = HW/P², true when P divides H and W. Halving P quadruples N — and attention compares "
      "every token with every other, so its cost grows with N² (page 5): at P = {p} that is {pairs:,} token pairs "
      "per head and layer.").format(p=p, pairs=(n + 1) ** 2)
)

st.subheader(_("All patches in raster order"))
gallery, gallery_width, shown = gallery_png(vin.cache_key, selected, data.patches01)
more = n - len(shown)
per_line, tile = viz.gallery_layout(grid)
parts = [_("Patches {first}–{last} of {n:,}, each labelled with its index; the selected one is framed in yellow.")
         .format(first=shown.start, last=shown.stop - 1, n=n)]
if tile > p:
    parts.append(_("Tiles enlarged ×{factor} (nearest neighbour).").format(factor=tile // p))
if per_line < gw:
    parts.append(_("A grid row has {gw} patches: the gallery wraps every {per_line}, so its lines are not the grid's "
                   "rows.").format(gw=gw, per_line=per_line))
if more:
    parts.append(_("The other {more:,} are not drawn (a gallery of {n:,} tiles would not be readable): the window "
                   "follows the selected patch.").format(more=more, n=n))
caption = sentences(*parts)
st.image(gallery, caption=caption, width=gallery_width, output_format="PNG")

show_source(ViT.patchify, viz.PatchGrid)
stage_footer("patching")
