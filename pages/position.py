"""Stage 4 · Position embeddings: prepend x_class, add E_pos (ViT Eq. 1, Fig. 7 centre), interpolated to the grid.

The page reads its controls, makes one call (`vitviz.embeddings.position_stage`) and draws its result."""
from __future__ import annotations

from contextlib import nullcontext

import streamlit as st

from ui.chrome import show_source, stage_footer, stage_header
from ui.common import chart, picture
from ui.context import context
from ui.embedding_pages import equation_pieces, photo_jpeg, whole_patches
from ui.models import VitInput, show_notes, vit_input
from ui.patches import selected_patch
from vitviz import embeddings as emb
from vitviz.describe import embeddings as describe
from vitviz.embeddings import PositionStage
from vitviz.i18n import N_, _, language, ngettext, sentences
from vitviz.models.vit import ViT
from vitviz.viz import embeddings as viz


@st.cache_data(max_entries=8, show_spinner=False)  # an entry holds three (1+N) × D arrays: 225 MB at the largest grid
def position_stage(cache_key: str, layers: int, _model, _pixel_values, _image) -> PositionStage:
    """The page's one call, once per input and number of layers in the shuffle test."""
    return emb.position_stage(_model, _pixel_values, _image, layers)


@st.cache_resource(max_entries=48, show_spinner=False)  # a shared figure: nobody mutates it, no copy per run
def similarity_chart(key: str, _pos, grid: tuple[int, int], height: int, selected: int | None,
                     lang: str) -> viz.SimilarityChart:
    """Tiled cosine-similarity heatmap (ViT Fig. 7 centre) of position embeddings (N, D) on `grid`, its hover texts
    and titles in `lang` (the run's language), and how it was thinned."""
    return viz.similarity_figure(_pos, grid, selected, height)


# what each similarity panel shows, for its text alternative (the widget key is "sim_" + the name)
PANELS = {"learned": N_("learned E_pos at this {gh} × {gw} grid"), "sincos": N_("fixed 2-D sin-cos at {gh} × {gw}"),
          "native": N_("the checkpoint's E_pos on its own {gh} × {gw} grid"),
          "interp": N_("E_pos interpolated to {gh} × {gw}")}


def similarity_panel(cache_key: str, name: str, pos, grid: tuple[int, int], height: int,
                     selected: int | None) -> viz.SimilarityChart:
    """Draw one tiled similarity chart of `PANELS` with its text alternative, computed from the chart's own rows of
    S; returns the chart (what it left out is said below it)."""
    sim = similarity_chart(cache_key, pos, grid, height, selected, language())
    title = _(PANELS[name]).format(gh=grid[0], gw=grid[1])
    chart(sim.figure, alt=describe.similarity(sim, title, grid, selected), key=f"sim_{name}",
          config={"displayModeBar": False})
    return sim


def chart_height(grid: tuple[int, int]) -> int:
    """Taller charts for tall grids, so tiles stay readable."""
    return int(500 * min(max(grid[0] / grid[1], 1.0), 1.6))


def ordinal(n: int) -> str:
    """2nd, 3rd, 11th … in English; in Chinese the number itself (the sentence says 每隔/每 n 个)."""
    if language() == "zh":
        return str(n)
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def thinned_note(chart: viz.SimilarityChart) -> list[str]:
    """What a thinned similarity chart leaves out, in words (one sentence, or none when nothing is left out)."""
    if not chart.thinned:
        return []
    if chart.stride > 1 and chart.inner > 1:
        text = _("To stay under 400 KB it shows a tile for every {stride} row and column of positions and every "
                 "{inner} position inside each tile.")
    elif chart.stride > 1:
        text = _("To stay under 400 KB it shows a tile for every {stride} row and column of positions.")
    else:
        text = _("To stay under 400 KB it shows every {inner} position inside each tile.")
    return [text.format(stride=ordinal(chart.stride), inner=ordinal(chart.inner))]


def vec(values, k: int = 3) -> str:
    """LaTeX column vector of the first k values."""
    return r"\begin{bmatrix}" + r" \\ ".join(f"{v:+.3f}" for v in values[:k]) + r" \\ \vdots\end{bmatrix}"


def sequence(s: PositionStage, selected: int) -> None:
    """Section 1: z_0 = [x_class; x_p E] + E_pos with the live numbers, and the registers that follow."""
    P, D, (gh, gw), N, shapes = s.config.patch_size, s.config.dim, s.grid, s.n, s.shapes
    st.header(_("Prepend x_class, add E_pos"))
    m = st.columns([1.1, 1, 1.1, 0.9, 1.3])
    m[0].metric(_("Patch grid"), f"{gh} × {gw}",
                help=_("{height}×{width} px read in {p}×{p} patches").format(height=gh * P, width=gw * P, p=P))
    m[1].metric(_("Patch tokens N"), f"{shapes['embeddings'][1]:,}")
    m[2].metric(_("Sequence length 1+N"), f"{shapes['position'][1]:,}")
    m[3].metric(_("Token width D"), f"{shapes['position'][2]}")
    m[4].metric(_("E_pos shape"), f"({shapes['e_pos'][1]}, {shapes['e_pos'][2]})")
    equation_pieces(
        r"z_0 = \big[\,x_\text{class};\; x_p^1E;\; \dots;\; x_p^{%d}E\,\big]" % N,
        r"+\; E_\text{pos}\qquad",
        r"\underbrace{(1+%d)\times%d}_{\text{tokens}}" % (N, D),
        r"+\; \underbrace{(1+%d)\times%d}_{E_\text{pos}}" % (N, D),
        r"=\; \underbrace{%d\times%d}_{z_0}" % (N + 1, D),
    )
    st.markdown(_("**Live numbers** — the first 3 of {d} dimensions, read from the traced tensors `tokens`, `e_pos` "
                  "and `position`:").format(d=D))
    for column, (label, row) in zip(st.columns(2), (("CLS", 0), (f"patch {selected}", 1 + selected))):
        with column:
            equation_pieces(r"\text{%s}:\;\; \underbrace{%s}_{\text{token}}" % (label, vec(s.tokens[row])),
                            r"+\; \underbrace{%s}_{E_\text{pos}}" % vec(s.e_pos[row]),
                            r"=\; \underbrace{%s}_{z_0}" % vec(s.position[row]))
    st.caption(sentences(
        _("Row 0 is the learned class token x_class, the same for every image (equal to the checkpoint's `cls_token` "
          "up to {diff:.1e}); row 1+i is patch i's token from the projection page (your selected patch is "
          "{index}).").format(diff=s.cls_difference, index=selected),
        _("max |z₀ − (tokens + E_pos)| = {diff:.1e}: the addition is all there is.").format(diff=s.sum_difference),
        _("The CLS token's final state is what a classifier reads."),
    ))
    registers = s.config.registers
    if registers:
        st.markdown(sentences(
            _("**Then the registers.** This model inserts {r} learned **register tokens** right after x_class, once "
              "E_pos has been added: the encoder reads {tokens:,} tokens, [x_class; reg₁…reg_{r}; patches].").format(
                r=registers, tokens=1 + registers + N),
            _("Registers have no position embedding and no patch — they are extra memory the model may use for "
              "global information (Darcet et al. 2024, *Vision Transformers Need Registers*)."),
        ))
        show_source(ViT.add_cls, ViT.add_position, ViT.add_registers)
    else:
        show_source(ViT.add_cls, ViT.add_position)


def similarity(s: PositionStage, cache_key: str, selected: int) -> None:
    """Section 2: which positions look alike, learned E_pos beside the fixed 2-D sin-cos ones (ViT Fig. 7 centre)."""
    D, (gh, gw), height = s.config.dim, s.grid, chart_height(s.grid)
    st.header(_("Which positions look alike? (ViT paper Fig. 7 centre)"))
    st.markdown(sentences(
        _("Normalise each position vector to length 1 and take dot products: S = Ê Êᵀ, a {n} × {n} matrix.").format(
            n=s.n),
        _("Tile *(row r, column c)* below is row r·{gw}+c of S drawn on the {gh}×{gw} grid: how similar every "
          "position is to that one.").format(gw=gw, gh=gh),
        _("Each tile is 1 at its own position; the colour bar below gives the values, and the black-and-white frame "
          "is your selected patch."),
    ))
    left, right = st.columns(2)
    with left:
        st.subheader(_("Learned (the checkpoint's E_pos)"))
        learned = similarity_panel(f"{cache_key}|learned", "learned", s.e_pos[1:], s.grid, height, selected)
        added = _("As added at this {gh}×{gw} grid (interpolated, see below).") if s.interpolated else \
            _("As added at this {gh}×{gw} grid.")
        st.caption(sentences(
            added.format(gh=gh, gw=gw),
            _("{share:.0%} of the tiles shown peak at their own position.").format(share=learned.peaks),
            *thinned_note(learned),
        ))
    with right:
        st.subheader(_("Fixed 2-D sin-cos (MAE / MoCo v3)"))
        if s.sincos is None:
            st.warning(_("D = {d} is not divisible by 4, which 2-D sin-cos embeddings need.").format(d=D))
        else:
            sincos = similarity_panel(f"sincos|{gh}x{gw}|{D}", "sincos", s.sincos, s.grid, height, selected)
            st.caption(sentences(
                _("Not learned: patch (r, c) gets [sin(c·ω), cos(c·ω), sin(r·ω), cos(r·ω)] with ω_k = 10000^(−4k/D), "
                  "k < D/4 — MAE's get_2d_sincos_pos_embed."),
                _("Similarity falls off smoothly with distance, by construction, for any grid."),
                *thinned_note(sincos),
            ))
    if s.trained:
        st.markdown(_("The learned embeddings were never told about rows and columns, yet training made nearby "
                      "patches similar and the tiles show row and column structure, as in the ViT paper."))
    else:
        st.markdown(_("**Random weights:** the learned E_pos here is untrained noise, so each tile is 1 at its own "
                      "position and about 0 everywhere else: no notion of neighbourhood. With *Trained weights* you "
                      "see the row-and-column structure training produces (ViT paper Fig. 7 centre); the sin-cos panel "
                      "shows that structure built in by hand."))
    show_source(emb.cosine_similarity, emb.similarity_tiles, emb.sincos_2d)


def shuffle_intro() -> None:
    """Section 3 above its slider: why a model without E_pos sees a bag of patches."""
    st.header(_("No position embedding: a bag of patches"))
    st.markdown(sentences(
        _("Self-attention and the MLP treat every token the same way, whatever its place in the sequence. So if the "
          "patches are shuffled and there is no E_pos, each output is the same vector as before, just moved — and "
          "the CLS token, which attends to all of them, comes out **identical**: the model cannot tell the two "
          "images apart."),
        _("Here is the real model on your tokens, with a fixed random shuffle Π of the patches (CLS stays first)."),
    ))


def shuffle_outcome(s: PositionStage, vin: VitInput, label: str, img_l, img_r, nums) -> None:
    """Section 3 below its slider: the input beside its shuffled patches, and how much the outputs changed."""
    P, (gh, gw) = s.config.patch_size, s.grid
    picture(whole_patches(vin.cache_key, vin.shown, gw * P, gh * P), alt=describe.whole_patches(label, s.grid, P),
            where=img_l, width="stretch", caption=_("your image (whole patches)"))
    picture(photo_jpeg(f"{vin.cache_key}|shuffled", s.shuffled), alt=describe.shuffled(s.order, s.grid, P),
            where=img_r, width="stretch", caption=_("the same patches, shuffled by Π"))
    with nums:
        if s.shuffle is None:
            st.info(sentences(
                _("{tokens:,} tokens are too many to run the encoder on interactively (attention grows with the square "
                  "of the sequence length).").format(tokens=s.n + 1),
                _("Choose a larger patch size or a lower resolution to run the test."),
            ), icon=":material/speed:")
            return
        result = s.shuffle
        st.markdown(ngettext("Change after {n} layer, relative (‖a − b‖ / ‖b‖):",
                             "Change after {n} layers, relative (‖a − b‖ / ‖b‖):", result.layers).format(n=result.layers))
        without, with_pos = _("**without E_pos**"), _("**with E_pos**")
        st.markdown(
            _("| | all tokens: f(Πx) vs Πf(x) | CLS output |") + "\n|---|---|---|\n"
            f"| {without} | {result.without_pos:.1e} | {result.cls_without_pos:.1e} |\n"
            f"| {with_pos} | {result.with_pos:.1e} | {result.cls_with_pos:.1e} |"
        )
        st.caption(describe.shuffle_test(result))


def interpolation(s: PositionStage, vin: VitInput, selected: int) -> None:
    """Section 4: E_pos resized from the checkpoint's grid to this one."""
    D, (gh, gw), g0, height = s.config.dim, s.grid, s.config.grid, chart_height(s.grid)
    st.header(_("Interpolation: from the checkpoint's {g0}×{g0} grid to {gh}×{gw}").format(g0=g0, gh=gh, gw=gw))
    if not s.interpolated:
        st.info(sentences(
            _("This input makes a {gh}×{gw} grid, the checkpoint's own: E_pos is used as trained.").format(gh=gh, gw=gw),
            _("Change the patch size, the resolution or turn on *Keep the photo's aspect ratio* to see it interpolated."),
        ), icon=":material/info:")
        show_source(ViT.position_embeddings)
        return
    if s.config.antialias:
        resize = _("For {gh}×{gw}, each of the {d} dimensions is treated as a {g0}×{g0} image and resized "
                   "**bicubically** to {gh}×{gw} (`align_corners=False`, **with antialias**, as DINOv2 with registers "
                   "was trained, height and width separately so a non-square grid keeps its aspect) — as transformers "
                   "5.x does with `interpolate_pos_encoding=True`.")
    else:
        resize = _("For {gh}×{gw}, each of the {d} dimensions is treated as a {g0}×{g0} image and resized "
                   "**bicubically** to {gh}×{gw} (`align_corners=False`, no antialias, height and width separately so "
                   "a non-square grid keeps its aspect) — as transformers 5.x does with "
                   "`interpolate_pos_encoding=True`.")
    st.markdown(sentences(
        _("The checkpoint has position vectors for a {g0}×{g0} grid only.").format(g0=g0),
        resize.format(gh=gh, gw=gw, d=D, g0=g0),
        _("The CLS entry is kept as is."),
        _("(Original DINO adds 0.1 to the size as a floating-point workaround and timm antialiases: their numbers "
          "differ by a few percent.)"),
    ))
    left, right = st.columns(2)
    with left:
        st.subheader(_("Checkpoint: {g0}×{g0}").format(g0=g0))
        similarity_panel(f"{vin.model.source}|native", "native", s.native, s.checkpoint_grid, height, None)
    with right:
        st.subheader(_("Interpolated: {gh}×{gw}").format(gh=gh, gw=gw))
        similarity_panel(f"{vin.cache_key}|learned", "interp", s.e_pos[1:], s.grid, height, selected)
    st.caption(interpolation_note(s))
    show_source(ViT.position_embeddings)


def interpolation_note(s: PositionStage) -> str:
    """What resizing did to the similarity pattern, in words."""
    if s.grows:
        return sentences(
            _("Enlarging keeps the pattern but spreads it: each new position is a bicubic mix of its nearest "
              "checkpoint positions, so neighbours become more alike than in the checkpoint."),
            *([] if s.trained else [_("With random weights the checkpoint's tiles are single dots; after enlarging "
                                      "they become small blobs — that smoothness comes from the interpolation alone.")]),
        )
    if s.config.antialias:
        return _("Shrinking samples the checkpoint's grid more coarsely (bicubic, antialiased): each new position "
                 "mixes the checkpoint positions around it, and the map of each tile gets coarser.")
    return _("Shrinking samples the checkpoint's grid more coarsely (bicubic, no antialias): each new position mixes "
             "the checkpoint positions around it, and the map of each tile gets coarser.")


ctx = context()
vin = vit_input(ctx)
stage_header(
    "position",
    _("Attention treats its input as a **set**: shuffle the tokens and it returns the same vectors, shuffled. So "
      "before the encoder, ViT puts a learned **class token** in front and **adds** a position vector to every token, "
      "telling the model where each patch was. This page shows both with your image's numbers, what the position "
      "vectors have in common, how they are stretched to a new grid, and what happens without them."),
)
show_notes(vin)
selected = selected_patch(vin)
body = st.container()  # sections 1–2, drawn once the page's one call has run: section 3's slider is one of its inputs
shuffle_intro()
layers = st.columns([2, 3])[0].select_slider(
    _("Encoder layers to run"), options=list(range(1, vin.model.config.depth + 1)), value=1, key="pos_layers",
    help=_("Each layer costs one forward pass of 4 sequences on this machine; 1 is enough to see it."))
img_l, img_r, nums = st.columns([1, 1, 1.3])
tokens = vin.grid[0] * vin.grid[1] + 1  # the spinner speaks before the call has run
running = st.spinner(ngettext("Running {n} layer on 4 × {tokens:,} tokens…", "Running {n} layers on 4 × {tokens:,} "
                              "tokens…", layers).format(n=layers, tokens=tokens), show_time=True)
with nums, running if tokens <= emb.MAX_LAYER_TOKENS else nullcontext():
    result = position_stage(vin.cache_key, layers, vin.model, vin.pixel_values, vin.shown)
with body:
    sequence(result, selected)
    similarity(result, vin.cache_key, selected)
shuffle_outcome(result, vin, ctx.image_label, img_l, img_r, nums)
show_source(emb.shuffle_test)
interpolation(result, vin, selected)
stage_footer("position")
