"""The explanation page's three tabs (`pages/explain.py`), each drawing a frozen `vitviz.explain` result the page
computed: the maps, their deletion and insertion test, the logit lens."""
from __future__ import annotations

import html

import streamlit as st

from vitviz import explain as ex
from vitviz.describe import explain as describe
from vitviz.describe.common import percent
from vitviz.i18n import N_, _, ngettext
from vitviz.viz import explain as viz
from vitviz.viz.encode import jpeg

from ..chrome import download_array, show_source
from ..common import chart, markdown_table, picture
from ..context import context
from ..models import Classifier

PX = 300  # width of each map
CLASS_FREE = ("attention", "rollout")  # the maps that are the same for every class: their captions name none
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


def method_names(methods) -> dict[str, str]:
    """Each method's name in the run's language."""
    return {m: _(ex.METHOD_NAMES[m]) for m in methods}


@st.cache_data(max_entries=16, show_spinner=False)
def _photo(cache_key: str, _image) -> bytes:
    """JPEG of the input as the classifier receives it."""
    return jpeg(_image)


@st.cache_data(max_entries=64, show_spinner=False)
def _picture(cache_key: str, target: int, method: str, _image, _values, patch: int | None) -> bytes:
    return jpeg(viz.map_picture(_image, _values, PX, patch))


def _maps_row(clf: Classifier, explanation: ex.Explanation, label: str) -> None:
    """The input and every map side by side; on Swin and MobileViT, why there is only Grad-CAM."""
    names = method_names(explanation.methods)
    columns = st.columns(1 + len(names) if clf.vit else [1, 1, 3], gap="small")  # the same map size for all
    picture(_photo(clf.cache_key, clf.shown), alt=describe.input_photo(context().image_label, clf.shown.size),
            where=columns[0], width="stretch", caption=_("The input, as the model sees it"))
    for column, method in zip(columns[1:], explanation.methods):
        specific = method not in CLASS_FREE
        picture(_picture(clf.cache_key, explanation.target, method, clf.shown, explanation.maps[method], clf.patch),
                alt=describe.explanation_map(explanation.maps[method], method, label if specific else None),
                where=column, width="stretch", caption=names[method] + (f" · “{label}”" if specific else ""))
    if not clf.vit:
        columns[2].info(
            _("**Why only Grad-CAM here?** {family} has no CLS token that attends to the whole image: {reason} So "
              "attention maps and rollout have no single row to read; Grad-CAM on the last feature map works for any "
              "network that pools such a map.").format(
                family="Swin" if clf.name == "swin-tiny" else "MobileViT",
                reason=_("Swin's attention stays inside M×M windows, and the classifier averages the last stage's "
                         "tokens.") if clf.name == "swin-tiny" else
                _("MobileViT's attention runs across patches separately for every pixel offset, and the classifier "
                  "averages a convolutional feature map.")), icon=":material/help:")


def maps(clf: Classifier, explanation: ex.Explanation, label: str) -> None:
    """The maps side by side, what each assumes, how much they agree."""
    _maps_row(clf, explanation, label)
    names = method_names(explanation.methods)
    st.caption(_("Every map is scaled to 0…1 by its own minimum and maximum (their units differ) and drawn with the "
                 "same colour map: bright = most important by that method. One colour per patch.") if clf.patch else
               _("Every map is scaled to 0…1 by its own minimum and maximum (their units differ) and drawn with the "
                 "same colour map: bright = most important by that method. One colour per patch cell of the last "
                 "feature map."))
    st.markdown(_("**What each method assumes**"))
    for method in explanation.methods:
        st.markdown(_("- **{method}** assumes that {assumption}").format(method=names[method],
                                                                          assumption=_(ASSUMES[method])))
    if len(names) > 1:
        labels = list(names.values())
        st.markdown(_("**Do they agree?** Spearman's rank correlation between the maps on this image (1 = the same "
                      "ranking of patches, 0 = unrelated). The methods often disagree; the next tab asks which one "
                      "the model's output agrees with."))
        st.markdown(agreement_table(explanation.agreement, labels), unsafe_allow_html=True)
        st.caption(describe.agreement(explanation.agreement, labels))
        st.latex(r"\begin{gathered}\bar A_b = \operatorname{mean}_{\text{heads}}\big[\,\nabla_{A_b} y_t \odot A_b\,"
                 r"\big]^+,\\ R = (I + \bar A_L)\cdots(I + \bar A_1),\\ \text{map} = R_{\text{CLS},\,\text{patches}}"
                 r"\end{gathered}")  # one formula a line: each fits a phone
    st.latex(r"\begin{gathered}w_c = \frac{1}{N}\sum_{i} \frac{\partial y_t}{\partial Z_{ic}},\\ "
             r"\text{Grad-CAM}_i = \Big[\sum_c w_c\, Z_{ic}\Big]^+\end{gathered}")
    st.caption(_("y_t: the logit of the class; A_b: block b's attention probabilities; Z: {z}").format(
        z=_("LN(x) entering the last block, patch tokens only (after the last block the patches no longer reach CLS, "
            "so their gradient would be zero); [·]⁺ keeps the positive part.") if clf.vit else
        _("the last feature map (Swin: the last stage's tokens before the final LayerNorm; MobileViT: after the 1×1 "
          "expansion); [·]⁺ keeps the positive part.")))
    download_array(_("The maps ({methods} × {rows} × {cols})").format(methods=len(names), rows=explanation.grid[0],
                                                                      cols=explanation.grid[1]),
                   explanation.stacked, "explanation-maps")
    if clf.vit:
        show_source(ex.explain_vit, ex.gradient_rollout, ex.grad_cam)
    else:
        show_source(ex.explain_features, ex.grad_cam)


# The colours stop short of RdBu's darkest ends (a third of the way in from each: at least 5:1 for black text on
# every cell, as pandas' background_gradient(low=0.3, high=0.3) drew them); the text is black on every cell.
AGREEMENT_CMAP, AGREEMENT_MARGIN = "RdBu", 0.3


def agreement_table(agreement, labels: list[str]) -> str:
    """Spearman's ρ between every two maps as an HTML table, each cell shaded by its value (−1 red … +1 blue); the
    columns are numbered as the rows."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap, span = colormaps[AGREEMENT_CMAP], 2 * (1 + 2 * AGREEMENT_MARGIN)
    def cell(rho: float) -> str:
        colour = to_hex(cmap((rho + 1 + 2 * AGREEMENT_MARGIN) / span))
        return f'<td style="background:{colour};color:#000;text-align:right">{rho:+.2f}</td>'
    # columns headed by the rows' numbers: four method names side by side would not fit a phone
    head = "".join(f'<th scope="col" aria-label="{html.escape(label)}">{i}</th>' for i, label in enumerate(labels, 1))
    body = "".join(f'<tr><th scope="row">{i} · {html.escape(label)}</th>{"".join(cell(float(r)) for r in row)}</tr>'
                   for i, (label, row) in enumerate(zip(labels, agreement), 1))
    return f"<table><thead><tr><td></td>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_table(result: ex.Faithfulness) -> None:
    """Every method's areas and verdicts and the random orders' mean ± σ, as a table."""
    names = method_names(result.methods)
    method_col, d_area, d_verdict, i_area, i_verdict = (_("Method"), _("Deletion area ↓"), _("Deletion verdict"),
                                                     _("Insertion area ↑"), _("Insertion verdict"))
    beats, fails = _("beats random"), _("not better than random")
    rows = [{method_col: names[method], d_area: f"{d.auc:.3g}", d_verdict: beats if d.beats else fails,
             i_area: f"{n.auc:.3g}", i_verdict: beats if n.beats else fails}
            for method, (d, n) in zip(result.methods, result.verdicts)]
    mean, std = result.random_mean, result.random_std
    rows.append({method_col: _("random ({n} orders): mean ± σ").format(n=ex.SEEDS),
                 d_area: f"{mean[0]:.3g} ± {std[0]:.2g}", d_verdict: "—",
                 i_area: f"{mean[1]:.3g} ± {std[1]:.2g}", i_verdict: "—"})
    st.markdown(markdown_table(list(rows[0]), [list(row.values()) for row in rows], right=(1, 3)))


def faithfulness(clf: Classifier, result: ex.Faithfulness, label: str) -> None:
    """Deletion and insertion curves for every map against the random band, and the verdicts."""
    names = method_names(result.methods)
    st.markdown(
        _("**How patches are removed:** the patch tokens are taken out of the sequence after the position embeddings "
          "were added, so each kept token keeps its own position (as MAE's encoder does); {kept} always stay, and "
          "insertion starts from them alone. The grey band is {seeds} random orders: their mean ± 2 standard "
          "deviations.").format(kept=_("CLS and the registers") if clf.model.config.prefix > 1 else "CLS",
                                seeds=ex.SEEDS)
        if clf.vit else
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
            chart(viz.curves_figure(ex.STEPS, {m: result.curves[i, curve] for i, m in enumerate(result.methods)},
                                    names, result.random[:, curve], title=None),
                  alt=describe.curves(result, names, curve, label), key=f"curve-{curve}", theme=None,
                  config={"displaylogo": False})
    _verdict_table(result)
    beaten = [names[m] for m in result.beaten]
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
    st.latex(r"\begin{aligned}\text{area} &= \int_0^1 p_t(k)\,dk\\ &\approx \sum_{s} \tfrac{1}{2}\big(p_t(k_s) + "
             r"p_t(k_{s+1})\big)\,\Delta k_s\end{aligned}")  # Δk_s = k_{s+1} − k_s: short enough for a phone
    download_array(_("Curves ({methods} methods × deletion/insertion × {steps} steps)").format(
        methods=len(result.methods), steps=len(ex.STEPS)), result.curves, "deletion-insertion")
    show_source(ex.token_curves if clf.vit else ex.pixel_curves, ex.area, ex.verdict)


def no_lens() -> None:
    """Why Swin and MobileViT have no logit lens."""
    st.info(_("The logit lens reads the classifier's token after every layer. Swin and MobileViT have no such "
              "token: their classifier pools a feature map whose size and width change from stage to stage, so "
              "there is nothing to read before the last stage. Choose a ViT classifier above."),
            icon=":material/help:")


def lens(result: ex.LogitLens, reading: ex.LensReading, label: str) -> None:
    """The classifier read after every layer: when does the decision form?"""
    depth, labels = result.depth, result.labels
    m = st.columns(3)
    m[0].metric(_("Rank of “{label}” after layer 1").format(label=label), f"{reading.ranks[0]:,}")
    # "12 / 12" in every language: a worded value is cut off in a third of a projector's width
    m[1].metric(_("Top-1 from layer"), _("never") if reading.first_top1 is None else f"{reading.first_top1 + 1} / {depth}",
                help=_("The first layer after which the class stays the most probable to the end"))
    m[2].metric(_("Probability at the last layer"), percent(reading.final_probability))  # as the rank chart's alt
    left, right = st.columns(2, gap="large")
    chart(viz.lens_figure(reading.row_probs, [labels[i] for i in reading.rows], chosen=reading.chosen),
          alt=describe.lens_heatmap(result, reading), where=left, key="lens-heat", theme=None,
          config={"displaylogo": False})
    chart(viz.rank_figure(reading.ranks, label), alt=describe.rank_chart(reading, label), where=right, key="lens-rank",
          theme=None, config={"displaylogo": False})
    top = result.top
    st.markdown(markdown_table([_("layer")] + [_("top {k}").format(k=j + 1) for j in range(5)],
                               [[str(l + 1)] + [f"{labels[i]} · {result.probs[l, i]:.1%}" for i in top[l]]
                                for l in range(depth)], right=(0,)))
    st.latex(r"\begin{gathered}p^{(l)} = \operatorname{softmax}\big(W h^{(l)} + b\big),\\ "
             r"h^{(l)} = \operatorname{pool}\big(\mathrm{LN}(z^{(l)})\big),\quad l = 1,\dots,L;\\ "
             r"p^{(L)} = \text{the model's own output}\end{gathered}")  # short lines: they fit a phone
    st.markdown(_(
        "The **logit lens** applies the model's final LayerNorm and classifier to the tokens after every layer, as if "
        "the network stopped there ({pool}). The head was trained only on the last layer's output, so early readings "
        "are rough — but they show when the answer appears: usually late, in the last third of the layers.").format(
        pool=_("pool: CLS and the mean of the patch tokens, as DINOv2's classifier reads them")
        if result.pool == "cls+mean" else _("pool: the CLS token")))
    show_source(ex.logit_lens)
