"""Landing page: the whole pipeline at a glance, with the tensor shapes for the current image and settings."""
import streamlit as st

from ui.common import picture
from ui.context import Context, context
from ui.models import VitInput, show_notes, vit_input
from ui.stages import STAGES
from vitviz.describe.patching import describe_input
from vitviz.i18n import _
from vitviz.patching import PipelineShapes, pipeline_shapes
from vitviz.viz.encode import fitted


@st.cache_data(max_entries=32, show_spinner=False)
def vit_shapes(cache_key: str, _model, _pixel_values) -> PipelineShapes:
    """The embedding stages' shapes for this input (traced once per model, P, image and size)."""
    return pipeline_shapes(_model, _pixel_values)


@st.cache_data(max_entries=16, show_spinner=False)
def input_jpeg(cache_key: str, _shown) -> bytes:
    """The input as the model receives it, encoded once per model, P, image and size."""
    return fitted(_shown, photo=True)


def flow_texts(s: PipelineShapes) -> dict[str, str]:
    """Each stage's line of the flow: the shape it hands on, with this input's numbers."""
    sequence = _("1+R+N, 1+R+N with R = {r} registers").format(r=s.registers) if s.registers else "1+N, 1+N"
    return {
        "patching": _("image (H, W, C) = ({h}, {w}, {c}) → patches ({gh}, {gw}, {p}, {p}, {c})").format(
            h=s.height, w=s.width, c=s.channels, gh=s.rows, gw=s.cols, p=s.patch),
        "flattening": f"→ (N, P²·C) = {s.flat[1:]}",
        "projection": _("→ tokens (N, D) = {shape}").format(shape=s.embeddings[1:]),
        "position": _("→ with CLS + E_pos (1+N, D) = {shape}").format(shape=s.position[1:]),
        "attention": _("→ per layer (heads, {sequence}) = ({heads}, {tokens}, {tokens})").format(
            sequence=sequence, heads=s.heads, tokens=s.tokens),
        "registers": _("→ ‖z‖ of every token after each of the {depth} layers: ({depth}, {tokens})").format(
            depth=s.depth, tokens=s.tokens),
        "swin": _("Swin-T: windows of M×M tokens, merged 56²×96 → 7²×768 at 224"),
        "mobilevit": _("MobileViT: (b·P, N, d) — attention across patches per pixel offset"),
        "explain": _("a classifier's class → 4 maps ({gh}, {gw}), deletion/insertion (maps, 2, {steps}), logit lens "
                     "(L, classes)").format(gh=s.rows, gw=s.cols, steps=s.steps),
    }


def draw_input(vin: VitInput, s: PipelineShapes, ctx: Context) -> None:
    """The picture the model receives, and the model's sizes."""
    caption = _("What {model} receives: {height}×{width} px, {gh}×{gw} = {n} patches of {p}×{p}").format(
        model=ctx.model_name, height=s.height, width=s.width, gh=s.rows, gw=s.cols, n=s.n, p=s.patch)
    picture(input_jpeg(vin.cache_key, vin.shown), alt=describe_input(s, ctx.model_name, ctx.image_label),
            caption=caption, width="stretch")
    kind = _("pretrained") if s.trained else _("random-init sandbox")
    st.caption(_("Model: {model}, {kind} · D = {dim}, {depth} layers, {heads} heads · device {device}").format(
        model=ctx.model_name, kind=kind, dim=s.dim, depth=s.depth, heads=s.heads, device=ctx.device))


ctx = context()
st.title(_("How a vision transformer sees your image"))
st.markdown(
    _("Follow your image through every stage of a Vision Transformer. Each page shows tensors computed by the "
      "real PyTorch model, the live numbers, the equation, and the code that produced them. Change the image, "
      "model or resolution in the sidebar: every page follows.")
)
notes = st.container()  # which model the page shows, once it is loaded
left, right = st.columns([3, 2])
shape_of = {}
with left:
    for stage in STAGES:
        with st.container(border=True):
            # The summary is text of its own, not part of the link: a link's label does not wrap, so on a phone the
            # summary was cut off at the card's edge (and a screen reader's list of links reads shorter).
            st.page_link(stage.file, label=f"**{_(stage.title)}**", query_params=st.query_params.to_dict())
            st.markdown(_(stage.summary))
            shape_of[stage.key] = st.empty()
# Everything above goes out before the model is built: at a cold start the browser loads and draws it meanwhile.
vin = vit_input(ctx)
with notes:
    show_notes(vin)
shapes = vit_shapes(vin.cache_key, vin.model, vin.pixel_values)
flow = flow_texts(shapes)
for key, slot in shape_of.items():
    slot.markdown(f"`{flow[key]}`")  # not st.code: its highlighter is 1.5 MB of JavaScript to load
with right:
    draw_input(vin, shapes, ctx)
