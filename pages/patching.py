"""Stage 1 · Patching: the student's image cut into P×P patches by the model's own `patchify`."""
import streamlit as st

from ui.chrome import show_source, stage_footer, stage_header
from ui.common import chart, picture
from ui.context import context
from ui.models import show_notes, vit_input
from ui.patches import cached_figure, clickable_grid, model_patches, patch_picker
from vitviz.describe.patching import describe_gallery, describe_zoom
from vitviz.i18n import _, sentences
from vitviz.models.vit import ViT
from vitviz.patching import GALLERY_TILES, Division, PatchingView, patching_view
from vitviz.viz import patches as viz
from vitviz.viz.encode import png


@st.cache_data(max_entries=16, show_spinner=False)
def gallery_png(cache_key: str, selected: int, _patches01) -> tuple[bytes, int]:
    """The gallery as one PNG of 256 colours (less than half the bytes of full colour, 69 vs 190 kB at
    P = 16, with no visible change on the enlarged patches) and its width."""
    picture, _shown = viz.patch_gallery(_patches01, selected=selected, max_tiles=GALLERY_TILES)
    return png(picture, colors=256), picture.width


def draw_metrics(slots, view: PatchingView) -> None:
    """The input's sizes and the grid's counts, one metric per slot."""
    grid = view.grid
    slots[0].metric(_("Height H"), grid.height,
                    help=_("pixel_values.shape[2]: the input after resizing to the sidebar's resolution"))
    slots[1].metric(_("Width W"), grid.width, help="pixel_values.shape[3]")
    slots[2].metric(_("Patch P"), grid.patch, help=_("patches.shape[3]: pixels per patch side"))
    slots[3].metric(_("Channels C"), view.patches.channels, help="R, G, B")
    slots[4].metric(_("Grid h × w"), f"{grid.rows}×{grid.cols}", help="⌊H/P⌋ × ⌊W/P⌋ = patches.shape[1:3]")
    slots[5].metric(_("Patches N"), f"{grid.n:,}", help="h · w = flat.shape[1]")
    slots[6].metric(_("Tokens N + 1"), f"{view.tokens:,}", help=_("N patch tokens plus the CLS token (page 4)"))


def divides(side: Division, p: int) -> str:
    """A side as the page writes it: 224 = 14·16, or with the dropped remainder in bold, 230 = 14·16 + **6**."""
    whole = f"{side.size} = {side.quotient}·{p}"
    return whole if side.remainder == 0 else f"{whole} + **{side.remainder}**"


def draw_fit(slot, view: PatchingView) -> None:
    """Whether P divides the input, and if not, which pixels the model drops and which sizes would drop none."""
    grid = view.grid
    p, height, width = grid.patch, divides(view.height, grid.patch), divides(view.width, grid.patch)
    if grid.dropped_pixels == 0:
        slot.success(_("P = {p} divides the input: {height} (height) and {width} (width). Every pixel lands in "
                       "exactly one patch.").format(p=p, height=height, width=width), icon=":material/check_circle:")
        return
    bottom = _("the last **{n} pixel rows at the bottom**").format(n=grid.drop_bottom)
    right = _("the last **{n} pixel columns on the right**").format(n=grid.drop_right)
    if grid.drop_bottom and grid.drop_right:
        sides = _("{bottom} and {right}").format(bottom=bottom, right=right)
    else:
        sides = bottom if grid.drop_bottom else right
    slot.warning(
        sentences(
            _("**{p} does not divide the input**: {height} (height), {width} (width). This ViT keeps the {gh} × {gw} "
              "whole patches and **drops** {sides} — none at the top or left.").format(
                p=p, height=height, width=width, gh=grid.rows, gw=grid.cols, sides=sides),
            _("They are shaded red and hatched on the image: the model never sees these {pixels:,} pixels ({share:.1%} "
              "of the image).").format(pixels=grid.dropped_pixels, share=view.dropped_share),
            _("That is what its Conv2d(kernel = stride = P) does — the layer of every ViT checkpoint, also in "
              "transformers — and `patchify` slices them off the same way."),
            _("Other models choose differently: Swin zero-pads right and bottom to a multiple of P, MobileViT resizes "
              "up to the next multiple."),
            _("Sizes that drop nothing at {h} × {w}: P = {sizes}.").format(
                h=grid.height, w=grid.width, sizes=", ".join(map(str, view.fits))) if view.fits else "",
        ),
        icon=":material/crop:",
    )


def draw_selected(view: PatchingView, cache_key: str) -> None:
    """Where the selected patch sits in the grid and in pixels, and the patch enlarged."""
    s = view.selected
    st.markdown(
        _("Patch **{index}** is row **{row}**, column **{col}** of the grid: index = row · {gw} + column = "
          "{row} · {gw} + {col}. It covers pixels y = {top}…{bottom}, x = {left}…{right}.").format(
            index=s.index, row=s.row, col=s.col, gw=view.grid.cols, top=s.top, bottom=s.bottom, left=s.left,
            right=s.right)
    )
    zoom = cached_figure("zoom", cache_key, s.index, 340,
                         lambda: viz.patch_zoom_figure(view.patch01, s.index, height=340))
    chart(zoom, alt=describe_zoom(view.patch01, s.index), key="zoom")
    st.caption(_("Click any patch on the image, or type its index in “Selected patch” above, to select it here and "
                 "on the next pages."))


def draw_count(view: PatchingView) -> None:
    """N = ⌊H/P⌋·⌊W/P⌋ with the input's numbers, and what N costs attention."""
    grid = view.grid
    h, w, p, n = grid.height, grid.width, grid.patch, grid.n
    st.subheader(_("The count"))
    # Three short lines rather than one long one: each fits a phone's width (WCAG 1.4.10, reflow at 320 px).
    st.latex(
        r"\begin{gathered} x \in \mathbb{R}^{H \times W \times C} \;\longrightarrow\; "
        r"N = \left\lfloor \tfrac{H}{P} \right\rfloor \cdot \left\lfloor \tfrac{W}{P} \right\rfloor \\"
        rf" = \left\lfloor \tfrac{{{h}}}{{{p}}} \right\rfloor \cdot \left\lfloor \tfrac{{{w}}}{{{p}}} \right\rfloor"
        rf" = {grid.rows} \cdot {grid.cols} \\"
        rf" = {n:,} \text{{ patches of }} {p} \times {p} \times {view.patches.channels} \end{{gathered}}"
    )
    st.markdown(
        _("The paper writes N = HW/P², true when P divides H and W. Halving P quadruples N — and attention compares "
          "every token with every other, so its cost grows with N² (page 5): at P = {p} that is {pairs:,} token pairs "
          "per head and layer.").format(p=p, pairs=view.pairs)
    )


def draw_gallery(view: PatchingView, cache_key: str) -> None:
    """The patches in raster order as labelled tiles, the window around the selected one when N is large."""
    st.subheader(_("All patches in raster order"))
    gallery, gallery_width = gallery_png(cache_key, view.selected.index, view.patches.patches01)
    g, grid = view.gallery, view.grid
    parts = [_("Patches {first}–{last} of {n:,}, each labelled with its index; the selected one is framed in yellow.")
             .format(first=g.shown.start, last=g.shown.stop - 1, n=grid.n)]
    if g.enlarged > 1:
        parts.append(_("Tiles enlarged ×{factor} (nearest neighbour).").format(factor=g.enlarged))
    if g.wraps:
        parts.append(_("A grid row has {gw} patches: the gallery wraps every {per_line}, so its lines are not the "
                       "grid's rows.").format(gw=grid.cols, per_line=g.per_line))
    if g.hidden:
        parts.append(_("The other {more:,} are not drawn (a gallery of {n:,} tiles would not be readable): the window "
                       "follows the selected patch.").format(more=g.hidden, n=grid.n))
    picture(gallery, alt=describe_gallery(view), caption=sentences(*parts), width=gallery_width)


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
metrics = st.columns([1, 1, 1, 1, 1.4, 1.2, 1.2])
fit = st.empty()
left, right = st.columns([3, 2], gap="large")
with right:
    selected = patch_picker(vin.grid[0] * vin.grid[1])
view = patching_view(model_patches(vin), selected)
draw_metrics(metrics, view)
draw_fit(fit, view)
with right:
    draw_selected(view, vin.cache_key)
with left:
    clickable_grid(vin, view.grid, selected, plot_width=400)
draw_count(view)
draw_gallery(view, vin.cache_key)
show_source(ViT.patchify, viz.PatchGrid)
stage_footer("patching")
