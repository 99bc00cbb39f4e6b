"""Landing page: the whole pipeline at a glance, with the tensor shapes for the current image and settings."""
import streamlit as st

import vitviz
from ui.context import context
from ui.models import show_notes, vit_input
from ui.stages import STAGES
from vitviz.explain import STEPS
from vitviz.i18n import _


@st.cache_data(max_entries=32, show_spinner=False)
def vit_shapes(cache_key: str, _model, _pixel_values) -> dict[str, tuple]:
    """Shapes of the embedding stages, run through the real stage methods (no encoder: cheap at any size)."""
    t = vitviz.trace(_model, _pixel_values, include=["patches", "flat", "embeddings", "position"], method="embed")
    return {name: tuple(t[name].shape) for name in t.records} | {"input": tuple(_pixel_values.shape)}


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
            st.page_link(stage.file, label=f"**{_(stage.title)}** — {_(stage.summary)}",
                         query_params=st.query_params.to_dict())
            shape_of[stage.key] = st.empty()
# Everything above goes out before the model is built: at a cold start the browser loads and draws it meanwhile.
vin = vit_input(ctx)
model = vin.model
with notes:
    show_notes(vin)
shown = vin.shown
shapes = vit_shapes(vin.cache_key, model, vin.pixel_values)
c = model.config
gh, gw, p = *shapes["patches"][1:3], c.patch_size
tokens = shapes["position"][1] + c.registers  # the registers join after E_pos
sequence = _("1+R+N, 1+R+N with R = {r} registers").format(r=c.registers) if c.registers else "1+N, 1+N"
flow = {
    "patching": _("image (H, W, C) = ({h}, {w}, {c}) → patches ({gh}, {gw}, {p}, {p}, {c})").format(
        h=shapes["input"][2], w=shapes["input"][3], c=c.channels, gh=gh, gw=gw, p=p),
    "flattening": f"→ (N, P²·C) = {shapes['flat'][1:]}",
    "projection": _("→ tokens (N, D) = {shape}").format(shape=shapes["embeddings"][1:]),
    "position": _("→ with CLS + E_pos (1+N, D) = {shape}").format(shape=shapes["position"][1:]),
    "attention": _("→ per layer (heads, {sequence}) = ({heads}, {tokens}, {tokens})").format(
        sequence=sequence, heads=c.heads, tokens=tokens),
    "registers": _("→ ‖z‖ of every token after each of the {depth} layers: ({depth}, {tokens})").format(
        depth=c.depth, tokens=tokens),
    "swin": _("Swin-T: windows of M×M tokens, merged 56²×96 → 7²×768 at 224"),
    "mobilevit": _("MobileViT: (b·P, N, d) — attention across patches per pixel offset"),
    "explain": _("a classifier's class → 4 maps ({gh}, {gw}), deletion/insertion (maps, 2, {steps}), logit lens "
                 "(L, classes)").format(gh=gh, gw=gw, steps=len(STEPS)),
}
for key, slot in shape_of.items():
    slot.markdown(f"`{flow[key]}`")  # not st.code: its highlighter is 1.5 MB of JavaScript to load
with right:
    st.image(shown, caption=_("What {model} receives: {height}×{width} px, {gh}×{gw} = {n} patches of {p}×{p}").format(
        model=ctx.model_name, height=shown.height, width=shown.width, gh=gh, gw=gw, n=gh * gw, p=p),
             width="stretch")
    kind = _("pretrained") if model.source in vitviz.HUB_IDS.values() else _("random-init sandbox")
    st.caption(_("Model: {model}, {kind} · D = {dim}, {depth} layers, {heads} heads · device {device}").format(
        model=ctx.model_name, kind=kind, dim=c.dim, depth=c.depth, heads=c.heads, device=ctx.device))
