"""Stage 9 · Which patches decided? Explanation maps for one predicted class (CLS attention, rollout, gradient
rollout, Grad-CAM), tested live by deleting and inserting patches, and the logit lens (`vitviz.explain`).

One forward and one backward pass give every map of a class; the deletion batches run once per class, the random
band once per image. Three lazy tabs: a run draws the open one.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st
import torch

import vitviz
from ui.chrome import download_array, lazy_tabs, show_source, stage_footer, stage_header
from ui.context import context
from ui.image_input import model_input
from ui.models import get_model, vit_input
from vitviz import explain as ex
from vitviz import hub
from vitviz.i18n import N_, _, ngettext
from vitviz.models.vit import PRESETS
from vitviz.viz import explain as viz
from vitviz.viz.encode import jpeg

PX = 300  # width of each map
CLASSIFIERS = {  # preset -> description (shown through _())
    "deit-tiny": N_("DeiT-Tiny/16 (ViT, 5.7 M parameters)"),
    "vit-base-16": N_("ViT-B/16 (ViT, 86 M parameters)"),
    "dinov2-small-cls": N_("DINOv2 ViT-S/14 + linear classifier"),
    "swin-tiny": N_("Swin-T (windowed attention)"),
    "mobilevit-xxs": N_("MobileViT-XXS (convolutions + attention)"),
    "mobilevit-s": "MobileViT-S",
}
VIT = {"deit-tiny", "vit-base-16", "dinov2-small-cls"}
# heads × layers × T² attention numbers that the backward pass keeps twice (probabilities and their gradients):
# ViT-B at 384 px (577 tokens) is about 48 M, 190 MB each; beyond it the page asks for a lower resolution.
ATTENTION_BUDGET = 48_000_000
ASSUMES = {  # method -> what it assumes (shown through _())
    "attention": N_("what the last layer's CLS query attends to is what mattered. It ignores every earlier layer, "
                    "the values the attention mixes and the MLPs, and it is the same map for every class."),
    "rollout": N_("information flows only through attention, mixed linearly, with the residual as an extra ½·I, "
                  "heads averaged. It sees all layers but still no class: the same map for every class."),
    "grad_rollout": N_("attention weights matter as much as the class's gradient says, and only where that product "
                       "is positive (Chefer et al. 2021). Class-specific; it still reads only the attention maps."),
    "gradcam": N_("one layer's activations, weighted by the average gradient of each channel, say where the evidence "
                  "is (Selvaraju et al. 2017). Class-specific; it reads a single layer and keeps only the positive "
                  "part."),
}


@st.cache_resource(max_entries=16, show_spinner=False)  # read-only, shared between sessions
def _logits(cache_key: str, _model, _pixel_values) -> torch.Tensor:
    with torch.inference_mode():
        return _model(_pixel_values, output_attentions=False).logits[0].float().cpu()


@st.cache_resource(max_entries=16, show_spinner=False)
def _explanation(cache_key: str, target: int, _model, _pixel_values) -> ex.Explanation:
    if hasattr(_model, "blocks"):
        return ex.explain_vit(_model, _pixel_values, target)
    return ex.explain_features(_model, _pixel_values, target)


@st.cache_resource(max_entries=16, show_spinner=False)
def _method_curves(cache_key: str, target: int, _model, _pixel_values, _explanation: ex.Explanation) -> torch.Tensor:
    """(methods, 2, K) probabilities of the class with each method's ranking."""
    rankings = torch.stack([ex.ranking(v) for v in _explanation.maps.values()])
    return _curves(_model, _pixel_values, rankings, _explanation.grid)[..., target]


@st.cache_resource(max_entries=16, show_spinner=False)  # every class's probability: a class change reuses it
def _random_curves(cache_key: str, _model, _pixel_values, grid: tuple[int, int]) -> torch.Tensor:
    """(SEEDS, 2, K, classes) with random rankings."""
    return _curves(_model, _pixel_values, ex.random_rankings(grid[0] * grid[1]), grid)


def _curves(model, pixel_values, rankings, grid):
    if hasattr(model, "blocks"):
        return ex.token_curves(model, pixel_values, rankings)
    return ex.pixel_curves(model, pixel_values, rankings, grid)


@st.cache_resource(max_entries=16, show_spinner=False)
def _lens(cache_key: str, _model, _pixel_values) -> torch.Tensor:
    return ex.logit_lens(_model, _pixel_values).float().softmax(-1).cpu()


@st.cache_data(max_entries=64, show_spinner=False)
def _picture(cache_key: str, target: int, method: str, _image, _values: np.ndarray, patch: int | None) -> bytes:
    return jpeg(viz.map_picture(_image, _values, PX, patch))


ctx = context()
stage_header(
    "explain",
    _("A classifier said *what* it sees. **Which patches made it say so?** Four common answers are drawn below for "
      "one class — and then **tested**: remove the patches a map calls most important and watch the class's "
      "probability. A map that looks convincing can fail that test. Attention maps are not explanations by "
      "themselves; here you can check on your own photo how far each method is from one."),
)
st.caption(_("This page has its own classifier control; the sidebar's image, resolution, aspect and *Trained "
             "weights* apply here too (and its patch size P, when its ViT model is the classifier chosen here)."))


def _default_classifier() -> str:
    """The sidebar's ViT when it classifies, else the first classifier whose trained weights are on this machine."""
    if ctx.model_name in CLASSIFIERS:
        return ctx.model_name
    for candidate in CLASSIFIERS if ctx.pretrained else ():
        try:
            if hub.find_local(vitviz.HUB_IDS[candidate], candidate) is not None:
                return candidate
        except vitviz.ModelLoadError:  # a damaged download: get_model will say so if it is chosen
            continue
    return "deit-tiny"


if st.session_state.get("xmodel") not in CLASSIFIERS:
    st.session_state["xmodel"] = _default_classifier()
with st.container(border=True):
    left, right = st.columns([2, 5], gap="medium")
    name = left.selectbox(_("Classifier"), list(CLASSIFIERS), key="xmodel", bind="query-params",
                          on_change=lambda: st.session_state.pop("xclass", None))
    left.caption(_(CLASSIFIERS[name]))
    if name in VIT:
        vin = vit_input(replace(ctx, model_name=name,
                                patch_size=ctx.patch_size if name == ctx.model_name else PRESETS[name].patch_size))
        model, shown, pixel_values, cache_key, patch = vin.model, vin.shown, vin.pixel_values, vin.cache_key, vin.patch_size
        notes = vin.notes
    else:
        model, warning = get_model(name, ctx.pretrained)
        shown, pixel_values = model_input(ctx, model.preprocessing)
        pixel_values = pixel_values.to(ctx.device)
        h, w = pixel_values.shape[-2:]
        cache_key, patch, notes = f"{model.source}|{ctx.image_key}|{h}x{w}", None, (warning,) if warning else ()
    logits = _logits(cache_key, model, pixel_values)
    top = logits.softmax(-1).topk(5)
    labels = model.config.labels
    ranks = [f"top-{r}" for r in range(1, 6)]  # the URL keeps the rank, which means the same for every photo
    rank = ranks.index(right.radio(
        _("Explain the class"), ranks, key="xclass", bind="query-params", horizontal=True,
        captions=[f"{labels[int(i)]} · {p:.1%}" for p, i in zip(top.values.tolist(), top.indices.tolist())],
        help=_("The classifier's five most probable classes for this image; the maps, curves and lens follow the "
               "one chosen."))) + 1
    target = int(top.indices[rank - 1])
    label = labels[target]

for note in notes:
    st.info(note, icon=":material/info:")
if getattr(model, "source", None) in vitviz.HUB_IDS:  # a preset name: the random weights
    st.warning(_("**Random weights.** The classifier's answers, and so its explanations, are noise here: the maps "
                 "still show what each method computes, and the deletion test still measures them."),
               icon=":material/casino:")

if name in VIT:
    tokens = vin.grid[0] * vin.grid[1] + model.config.prefix
    if model.config.heads * model.config.depth * tokens**2 > ATTENTION_BUDGET:
        st.error(_("This input makes {tokens:,} tokens: the gradients of every attention map would need more "
                   "memory than this page allows a student. Choose a lower resolution or a larger P in the "
                   "sidebar.").format(tokens=tokens), icon=":material/memory:")
        stage_footer("explain")
        st.stop()

with st.spinner(_("One forward and one backward pass for “{label}”…").format(label=label), show_time=True):
    explanation = _explanation(cache_key, target, model, pixel_values)
methods = list(explanation.maps)
names = {m: _(ex.METHOD_NAMES[m]) for m in methods}  # in the run's language


def maps() -> None:
    """The maps side by side, what each assumes, how much they agree."""
    columns = st.columns(1 + len(methods) if name in VIT else [1, 1, 3], gap="small")  # the same map size for all
    columns[0].image(shown, width="stretch", caption=_("The input, as the model sees it"))
    for column, method in zip(columns[1:], methods):
        column.image(_picture(cache_key, target, method, shown, explanation.maps[method], patch), width="stretch",
                     caption=names[method] + ("" if method in ("attention", "rollout") else f" · “{label}”"))
    if name not in VIT:
        columns[2].info(
            _("**Why only Grad-CAM here?** {family} has no CLS token that attends to the whole image: {reason} So "
              "attention maps and rollout have no single row to read; Grad-CAM on the last feature map works for any "
              "network that pools such a map.").format(
                family="Swin" if name == "swin-tiny" else "MobileViT",
                reason=_("Swin's attention stays inside M×M windows, and the classifier averages the last stage's "
                         "tokens.") if name == "swin-tiny" else
                _("MobileViT's attention runs across patches separately for every pixel offset, and the classifier "
                  "averages a convolutional feature map.")), icon=":material/help:")
    st.caption(_("Every map is scaled to 0…1 by its own minimum and maximum (their units differ) and drawn with the "
                 "same colour map: bright = most important by that method. One colour per patch.") if patch else
               _("Every map is scaled to 0…1 by its own minimum and maximum (their units differ) and drawn with the "
                 "same colour map: bright = most important by that method. One colour per patch cell of the last "
                 "feature map."))
    st.markdown(_("**What each method assumes**"))
    for method in methods:
        st.markdown(_("- **{method}** assumes that {assumption}").format(method=names[method],
                                                                          assumption=_(ASSUMES[method])))
    if len(methods) > 1:
        order = {m: np.argsort(np.argsort(-explanation.maps[m].ravel(), kind="stable")) for m in methods}
        agreement = pd.DataFrame([[np.corrcoef(order[a], order[b])[0, 1] for b in methods] for a in methods],
                                 index=[names[m] for m in methods], columns=[names[m] for m in methods])
        st.markdown(_("**Do they agree?** Spearman's rank correlation between the maps on this image (1 = the same "
                      "ranking of patches, 0 = unrelated). The methods often disagree; the next tab asks which one "
                      "the model's output agrees with."))
        st.dataframe(agreement.style.format("{:+.2f}").background_gradient(cmap="RdBu", vmin=-1, vmax=1),
                     width="content")
        st.latex(r"\bar A_b = \operatorname{mean}_{\text{heads}}\big[\,\nabla_{A_b} y_t \odot A_b\,\big]^+,\qquad "
                 r"R = (I + \bar A_L)\cdots(I + \bar A_1),\qquad \text{map} = R_{\text{CLS},\,\text{patches}}")
    st.latex(r"w_c = \frac{1}{N}\sum_{i} \frac{\partial y_t}{\partial Z_{ic}},\qquad "
             r"\text{Grad-CAM}_i = \Big[\sum_c w_c\, Z_{ic}\Big]^+")
    st.caption(_("y_t: the logit of the class; A_b: block b's attention probabilities; Z: {z}").format(
        z=_("LN(x) entering the last block, patch tokens only (after the last block the patches no longer reach CLS, "
            "so their gradient would be zero); [·]⁺ keeps the positive part.") if name in VIT else
        _("the last feature map (Swin: the last stage's tokens before the final LayerNorm; MobileViT: after the 1×1 "
          "expansion); [·]⁺ keeps the positive part.")))
    download_array(_("The maps ({methods} × {rows} × {cols})").format(methods=len(methods), rows=explanation.grid[0],
                                                                      cols=explanation.grid[1]),
                   np.stack([explanation.maps[m] for m in methods]), "explanation-maps")
    if name in VIT:
        show_source(ex.explain_vit, ex.gradient_rollout, ex.grad_cam)
    else:
        show_source(ex.explain_features, ex.grad_cam)


def faithfulness() -> None:
    """Deletion and insertion curves for every map against the random band, and the verdicts."""
    with st.spinner(_("Removing and putting back patches in {steps} steps for every map, as a few batches…").format(
            steps=len(ex.STEPS) * 2 - 2), show_time=True):
        ours = _method_curves(cache_key, target, model, pixel_values, explanation).numpy()
        random = _random_curves(cache_key, model, pixel_values, explanation.grid)[..., target].numpy()
    st.markdown(
        _("**How patches are removed:** the patch tokens are taken out of the sequence after the position embeddings "
          "were added, so each kept token keeps its own position (as MAE's encoder does); {kept} always stay, and "
          "insertion starts from them alone. The grey band is {seeds} random orders: their mean ± 2 standard "
          "deviations.").format(kept=_("CLS and the registers") if model.config.prefix > 1 else "CLS", seeds=ex.SEEDS)
        if name in VIT else
        _("**How patches are removed:** windows and convolutions need the whole grid, so a removed cell's pixels are "
          "replaced by a blurred copy of the image (Gaussian, σ = {sigma:g} px); insertion starts from the whole image "
          "blurred and puts the original pixels back. The grey band is {seeds} random orders: their mean ± 2 standard "
          "deviations.").format(sigma=ex.BLUR_SIGMA, seeds=ex.SEEDS))
    left, right = st.columns(2, gap="large")
    for column, curve, heading in (
            (left, 0, N_("**Deletion**: most important removed first · lower area = more faithful")),
            (right, 1, N_("**Insertion**: most important put back first · higher area = more faithful"))):
        with column:
            st.markdown(_(heading))
            st.plotly_chart(viz.curves_figure(ex.STEPS, {m: ours[i, curve] for i, m in enumerate(methods)},
                                              names, random[:, curve], title=None),
                            key=f"curve-{curve}", theme=None, config={"displaylogo": False})
    random_areas = ex.area(random)  # (S, 2)
    rows, beaten = [], []
    method_col, d_area, d_verdict, i_area, i_verdict = (_("Method"), _("Deletion area ↓"), _("Deletion verdict"),
                                                     _("Insertion area ↑"), _("Insertion verdict"))
    beats, fails = _("beats random"), _("not better than random")
    for i, method in enumerate(methods):
        areas = ex.area(ours[i])
        d, n = ex.verdict(areas[0], random_areas[:, 0], 0), ex.verdict(areas[1], random_areas[:, 1], 1)
        rows.append({method_col: names[method], d_area: f"{d.auc:.3g}", d_verdict: beats if d.beats else fails,
                     i_area: f"{n.auc:.3g}", i_verdict: beats if n.beats else fails})
        if d.beats and n.beats:
            beaten.append(names[method])
    rows.append({method_col: _("random ({n} orders): mean ± σ").format(n=ex.SEEDS),
                 d_area: f"{random_areas[:, 0].mean():.3g} ± {random_areas[:, 0].std(ddof=1):.2g}",
                 d_verdict: "—",
                 i_area: f"{random_areas[:, 1].mean():.3g} ± {random_areas[:, 1].std(ddof=1):.2g}",
                 i_verdict: "—"})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.markdown(_(
        "**On this image, for “{label}”:** {verdict} A method beats it when its area lies more than 2σ beyond the "
        "random mean on the faithful side. Faithfulness tests often barely separate the popular methods from random "
        "orders (Wu et al., SaCo, CVPR 2024), and a map that looks right can fail: removing patches also makes images "
        "the model never saw in training, which is why both directions are shown. Try another photo or class before "
        "you trust a method.").format(
        label=label,
        verdict=ngettext("{methods} beats the random band on both curves.",
                         "{methods} beat the random band on both curves.", len(beaten)).format(methods=", ".join(beaten))
        if beaten else _("no map beats the random band on both curves.")))
    st.latex(r"\text{area} = \int_0^1 p_t(k)\,dk \approx \sum_{s} \tfrac{1}{2}\big(p_t(k_s) + p_t(k_{s+1})\big)\,(k_{s+1}-k_s)")
    download_array(_("Curves ({methods} methods × deletion/insertion × {steps} steps)").format(
        methods=len(methods), steps=len(ex.STEPS)), ours, "deletion-insertion")
    show_source(ex.token_curves if name in VIT else ex.pixel_curves, ex.area, ex.verdict)


def lens() -> None:
    """The classifier read after every layer: when does the decision form?"""
    if name not in VIT:
        st.info(_("The logit lens reads the classifier's token after every layer. Swin and MobileViT have no such "
                  "token: their classifier pools a feature map whose size and width change from stage to stage, so "
                  "there is nothing to read before the last stage. Choose a ViT classifier above."),
                icon=":material/help:")
        return
    probs = _lens(cache_key, model, pixel_values).numpy()  # (L, classes)
    depth = probs.shape[0]
    final = list(np.argsort(-probs[-1])[:5])
    rows = final + ([target] if target not in final else [])
    ranks = (probs > probs[:, [target]]).sum(axis=1) + 1
    first = next((l for l in range(depth) if ranks[l:].max() == 1), None)
    m = st.columns(3)
    m[0].metric(_("Rank of “{label}” after layer 1").format(label=label), f"{ranks[0]:,}")
    m[1].metric(_("Top-1 from layer"), _("never") if first is None else _("{layer} of {depth}").format(
        layer=first + 1, depth=depth), help=_("The first layer after which the class stays the most probable to the end"))
    m[2].metric(_("Probability at the last layer"), f"{probs[-1, target]:.1%}")
    left, right = st.columns(2, gap="large")
    with left:
        st.plotly_chart(viz.lens_figure(probs[:, rows].T, [labels[i] for i in rows], chosen=rows.index(target)),
                        key="lens-heat", theme=None, config={"displaylogo": False})
    with right:
        st.plotly_chart(viz.rank_figure(ranks, label), key="lens-rank", theme=None,
                        config={"displaylogo": False})
    table = pd.DataFrame({_("top {k}").format(k=j + 1): [f"{labels[i]} · {probs[l, i]:.1%}" for l, i in
                                                         enumerate(np.argsort(-probs, axis=1)[:, j])] for j in range(5)},
                         index=pd.Index(range(1, depth + 1), name=_("layer")))
    st.dataframe(table, width="stretch", height=35 * (depth + 1) + 3)
    st.latex(r"p^{(l)} = \operatorname{softmax}\big(W\,\operatorname{pool}(\mathrm{LN}(z^{(l)})) + b\big),\qquad "
             r"l = 1,\dots,L;\quad p^{(L)} = \text{the model's own output}")
    st.markdown(_(
        "The **logit lens** applies the model's final LayerNorm and classifier to the tokens after every layer, as if "
        "the network stopped there ({pool}). The head was trained only on the last layer's output, so early readings "
        "are rough — but they show when the answer appears: usually late, in the last third of the layers.").format(
        pool=_("pool: CLS and the mean of the patch tokens, as DINOv2's classifier reads them")
        if model.config.pool == "cls+mean" else _("pool: the CLS token")))
    show_source(ex.logit_lens)


lazy_tabs("explain", (maps, faithfulness, lens))
stage_footer("explain")
