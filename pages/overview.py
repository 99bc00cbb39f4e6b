"""Landing page: the whole pipeline at a glance, with the tensor shapes for the current image and settings."""
import streamlit as st

import vitviz
from ui.shell import context, show_notes, vit_input
from ui.stages import STAGES
from vitviz.explain import STEPS

ctx = context()
vin = vit_input(ctx)
model = vin.model


@st.cache_data(max_entries=32, show_spinner=False)
def vit_shapes(cache_key: str, _model, _pixel_values) -> dict[str, tuple]:
    """Shapes of the embedding stages, run through the real stage methods (no encoder: cheap at any size)."""
    t = vitviz.trace(_model, _pixel_values, include=["patches", "flat", "embeddings", "position"], method="embed")
    return {name: tuple(t[name].shape) for name in t.records} | {"input": tuple(_pixel_values.shape)}


st.title("How a vision transformer sees your image")
st.markdown(
    "Follow your image through every stage of a Vision Transformer. Each page shows tensors computed by the "
    "real PyTorch model, the live numbers, the equation, and the code that produced them. Change the image, "
    "model or resolution in the sidebar: every page follows."
)
show_notes(vin)
shown = vin.shown
shapes = vit_shapes(vin.cache_key, model, vin.pixel_values)
c = model.config
gh, gw, p = *shapes["patches"][1:3], c.patch_size
tokens = shapes["position"][1] + c.registers  # the registers join after E_pos
sequence = f"1+R+N, 1+R+N with R = {c.registers} registers" if c.registers else "1+N, 1+N"
flow = {
    "patching": f"image (H, W, C) = ({shapes['input'][2]}, {shapes['input'][3]}, {c.channels}) → patches ({gh}, {gw}, {p}, {p}, {c.channels})",
    "flattening": f"→ (N, P²·C) = {shapes['flat'][1:]}",
    "projection": f"→ tokens (N, D) = {shapes['embeddings'][1:]}",
    "position": f"→ with CLS + E_pos (1+N, D) = {shapes['position'][1:]}",
    "attention": f"→ per layer (heads, {sequence}) = ({c.heads}, {tokens}, {tokens})",
    "registers": f"→ ‖z‖ of every token after each of the {c.depth} layers: ({c.depth}, {tokens})",
    "swin": "Swin-T: windows of M×M tokens, merged 56²×96 → 7²×768 at 224",
    "mobilevit": "MobileViT: (b·P, N, d) — attention across patches per pixel offset",
    "explain": f"a classifier's class → 4 maps ({gh}, {gw}), deletion/insertion (maps, 2, {len(STEPS)}), logit lens (L, classes)",
}
left, right = st.columns([3, 2])
with left:
    for stage in STAGES:
        with st.container(border=True):
            st.page_link(stage.file, label=f"**{stage.title}** — {stage.summary}", query_params=st.query_params.to_dict())
            st.code(flow[stage.key], language=None, wrap_lines=True)
with right:
    st.image(shown, caption=f"What {ctx.model_name} receives: {shown.height}×{shown.width} px, {gh}×{gw} = {gh * gw} patches of {p}×{p}",
             width="stretch")
    st.caption(f"Model: {ctx.model_name}, {'pretrained' if model.source in vitviz.HUB_IDS.values() else 'random-init sandbox'} · "
               f"D = {c.dim}, {c.depth} layers, {c.heads} heads · device {ctx.device}")
