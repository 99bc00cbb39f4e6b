"""Stage 9 · Which patches decided? Explanation maps for one predicted class (CLS attention, rollout, gradient
rollout, Grad-CAM), tested live by deleting and inserting patches, and the logit lens (`vitviz.explain`).

One forward and one backward pass give every map of a class; the deletion batches run once per class, the random
band once per image. Three lazy tabs: a run draws the open one.
"""
from __future__ import annotations

from functools import partial

import streamlit as st

import vitviz
from ui.chrome import lazy_tabs, stage_footer, stage_header
from ui.context import context
from ui.models import CLASSIFIERS, Classifier, classifier, default_classifier
from ui.tabs import explain as tabs
from vitviz import explain as ex
from vitviz.i18n import _


@st.cache_resource(max_entries=16, show_spinner=False)  # read-only, shared between sessions
def _prediction(cache_key: str, _model, _pixel_values) -> ex.Prediction:
    return ex.predict(_model, _pixel_values)


@st.cache_resource(max_entries=16, show_spinner=False)
def _explanation(cache_key: str, target: int, _model, _pixel_values) -> ex.Explanation:
    return ex.explain(_model, _pixel_values, target)


@st.cache_resource(max_entries=16, show_spinner=False)  # every class's probability: a class change reuses it
def _random_band(cache_key: str, _model, _pixel_values, grid: tuple[int, int]):
    """(SEEDS, 2, K, classes) with random rankings."""
    return ex.random_curves(_model, _pixel_values, grid)


@st.cache_resource(max_entries=16, show_spinner=False)
def _faithfulness(cache_key: str, target: int, _model, _pixel_values, _explanation: ex.Explanation,
                  _band) -> ex.Faithfulness:
    return ex.faithfulness(_model, _pixel_values, _explanation, _band)


@st.cache_resource(max_entries=16, show_spinner=False)
def _lens(cache_key: str, _model, _pixel_values) -> ex.LogitLens:
    return ex.lens(_model, _pixel_values)


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

if st.session_state.get("xmodel") not in CLASSIFIERS:
    st.session_state["xmodel"] = default_classifier(ctx)
with st.container(border=True):
    left, right = st.columns([2, 5], gap="medium")
    name = left.selectbox(_("Classifier"), list(CLASSIFIERS), key="xmodel", bind="query-params",
                          on_change=lambda: st.session_state.pop("xclass", None))
    left.caption(_(CLASSIFIERS[name]))
    clf = classifier(ctx, name)
    prediction = _prediction(clf.cache_key, clf.model, clf.pixel_values)
    ranks = [f"top-{r}" for r in range(1, 6)]  # the URL keeps the rank, which means the same for every photo
    rank = ranks.index(right.radio(
        _("Explain the class"), ranks, key="xclass", bind="query-params", horizontal=True,
        captions=[f"{label} · {p:.1%}" for label, p in zip(prediction.labels, prediction.probabilities)],
        help=_("The classifier's five most probable classes for this image; the maps, curves and lens follow the "
               "one chosen.")))
    target, label = prediction.classes[rank], prediction.labels[rank]

for note in clf.notes:
    st.info(note, icon=":material/info:")
if not vitviz.is_trained(clf.model):  # a preset name: the random weights
    st.warning(_("**Random weights.** The classifier's answers, and so its explanations, are noise here: the maps "
                 "still show what each method computes, and the deletion test still measures them."),
               icon=":material/casino:")

tokens = ex.tokens_over_budget(clf.model, clf.pixel_values)
if tokens is not None:
    st.error(_("This input makes {tokens:,} tokens: the gradients of every attention map would need more "
               "memory than this page allows a student. Choose a lower resolution or a larger P in the "
               "sidebar.").format(tokens=tokens), icon=":material/memory:")
    stage_footer("explain")
    st.stop()

with st.spinner(_("One forward and one backward pass for “{label}”…").format(label=label), show_time=True):
    explanation = _explanation(clf.cache_key, target, clf.model, clf.pixel_values)


def faithfulness(clf: Classifier, explanation: ex.Explanation, label: str) -> None:
    """Deletion and insertion of every map against the random band (computed when the tab opens)."""
    with st.spinner(_("Removing and putting back patches in {steps} steps for every map, as a few batches…").format(
            steps=len(ex.STEPS) * 2 - 2), show_time=True):
        band = _random_band(clf.cache_key, clf.model, clf.pixel_values, explanation.grid)
        result = _faithfulness(clf.cache_key, explanation.target, clf.model, clf.pixel_values, explanation, band)
    tabs.faithfulness(clf, result, label)


def lens(clf: Classifier, target: int, label: str) -> None:
    """The logit lens of a ViT read for the class (computed when the tab opens); why not, on the others."""
    if not clf.vit:
        tabs.no_lens()
        return
    result = _lens(clf.cache_key, clf.model, clf.pixel_values)
    tabs.lens(result, result.read(target), label)


lazy_tabs("explain", (partial(tabs.maps, clf, explanation, label), partial(faithfulness, clf, explanation, label),
                      partial(lens, clf, target, label)))
stage_footer("explain")
