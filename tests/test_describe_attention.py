"""The attention page's text alternatives (vitviz.describe.attention), each checked against the tensors its picture
draws: attention probabilities materialised by the model itself (not the view's recomputation from q and k), a
trace built by hand with a known peak, and the rollout, masks and distances written out independently."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import vitviz
from vitviz import attention as att
from vitviz.describe import attention as describe
from vitviz.describe.common import grid_region, percent
from vitviz.models import common
from vitviz.models.vit import ViT, ViTConfig

from .helpers import perturb_

GRID = (5, 7)
PREFIX = 3  # CLS and 2 registers
EVEN = re.compile(r"(?P<what>[a-z][a-z -]*) spread almost evenly over the (?P<cells>\d+) patches: the largest, row "
                  r"(?P<row>\d+), column (?P<col>\d+), holds (?P<peak>[\d.]+ %) \(evenly: (?P<even>[\d.]+ %) each\)")
DISTRIBUTION = re.compile(r"(?P<share>[\d.]+ %) of (?P<what>[a-z -]+) on (?P<count>\d+) of (?P<cells>\d+) patches, "
                          r"rows (?P<rows>[\d–]+), columns (?P<cols>[\d–]+) \((?P<where>[a-z ]+)\); the other "
                          r"(?P<rest>[\d.]+ %) spread (?:thinly|over the rest)")


@pytest.fixture(scope="module")
def traced():
    """A ViT with 2 registers on a 5 × 7 grid: its trace and, per layer, the probabilities (H, T, T) the model
    materialised itself."""
    cfg = ViTConfig(image_size=32, patch_size=8, dim=24, depth=3, heads=3, mlp_dim=48, registers=2)
    model = perturb_(common.init_random(ViT(cfg), "describe-attn"), seed=4).eval()
    pixels = torch.randn(1, 3, 40, 56, generator=torch.Generator().manual_seed(5))
    probs = vitviz.trace(model, pixels, include=["blocks.*.attn.probs"])
    return att.trace_attention(model, pixels), [probs[f"blocks.{i}.attn.probs"][0].double().numpy() for i in range(3)]


def peaked_trace(logits: torch.Tensor | None = None) -> att.AttentionTrace:
    """One layer, one head, a 16 × 16 grid, d = 2, built so that CLS gives its patch attention 55 % to the 9 patches
    of rows 3–5, columns 2–4 (each 6.1 %: all 9 are needed to pass half) and weight e^y / Σ to its own key."""
    grid, tokens = (16, 16), 257
    x = math.log(0.55 * 247 / (9 * 0.45))  # 9 e^x / (9 e^x + 247) = 0.55
    k = torch.zeros(1, tokens, 2)
    for r in range(3, 6):
        for c in range(2, 5):
            k[0, 1 + r * 16 + c, 0] = x * math.sqrt(2)
    k[0, 0, 1] = math.log(100) * math.sqrt(2)
    q = torch.zeros(1, tokens, 2)
    q[0, 0] = 1.0
    return att.AttentionTrace((q,), (k,), (torch.zeros(1, tokens, 2),), grid, 16, np.zeros((1, 1)), logits)


def smallest_set(values: np.ndarray) -> tuple[int, float, np.ndarray, np.ndarray]:
    """The fewest largest cells holding half of a map's sum, written out: (count, share, rows, cols)."""
    flat = values.reshape(-1) / values.sum()
    order = np.argsort(-flat, kind="stable")
    count = int(np.argmax(np.cumsum(flat[order]) >= 0.5)) + 1
    rows, cols = np.divmod(order[:count], values.shape[1])
    return count, float(flat[order[:count]].sum()), rows, cols


def span_of(values: np.ndarray) -> str:
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}–{high}"


def assert_distribution(text: str, values: np.ndarray, what: str) -> None:
    """The description's share, count, rows and columns are those of the map's real smallest half-holding set; a
    map where over a quarter of the patches hold half is described by its real largest patch instead."""
    count, share, rows, cols = smallest_set(values)
    if count > values.size // 4:
        found = EVEN.search(text)
        assert found, text
        flat = values.reshape(-1) / values.sum()
        assert found["what"] == what and int(found["cells"]) == values.size
        assert divmod(int(np.argmax(flat)), values.shape[1]) == (int(found["row"]), int(found["col"]))
        assert (found["peak"], found["even"]) == (percent(flat.max()), percent(1 / values.size))
        return
    found = DISTRIBUTION.search(text)
    assert found, text
    assert found["what"] == what
    assert (int(found["count"]), int(found["cells"])) == (count, values.size)
    assert (found["share"], found["rest"]) == (percent(share), percent(1 - share))
    assert (found["rows"], found["cols"]) == (span_of(rows), span_of(cols))
    assert grid_region(rows, cols, values.shape).endswith(f"({found['where']})")


def test_a_peaked_head_is_described_as_the_issue_reads_it():
    view = att.attention_view(peaked_trace(), 0, 0, 0, ())
    row = view.row.astype(np.float64)
    assert row[1:].reshape(16, 16)[3:6, 2:5].sum() / row[1:].sum() == pytest.approx(0.55, abs=1e-6)
    text = describe.head_map(view, 0)
    assert text == ("Layer 1, head 1, query CLS: 55 % of the patch attention on 9 of 256 patches, rows 3–5, columns 2–4 "
                    f"(the top left); the other 45 % spread thinly. Off the image, the CLS token takes "
                    f"{percent(row[0])}; the patches together {percent(row[1:].sum())}.")
    assert percent(row[0]) == "15 %"  # e^y = 100 against 9 e^x + 247 + 100


@pytest.mark.parametrize("layer,head,query", [(0, 0, 0), (2, 1, 0), (1, 2, PREFIX + 2 * 7 + 6), (2, 0, 1)])
def test_head_maps_name_the_real_largest_patches_and_shares(traced, layer, head, query):
    tr, probs = traced
    view = att.attention_view(tr, layer, head, query, ())
    for h in range(3):
        a = probs[layer][h, query]  # (T,) as the model computed it
        text = describe.head_map(view, h)
        assert text.startswith(f"Layer {layer + 1}, head {h + 1}, query {view.label}: ")
        assert_distribution(text, a[PREFIX:].reshape(GRID), "the patch attention")
        assert (f"Off the image, the CLS token takes {percent(a[0])} and the 2 registers {percent(a[1:3].sum())}; "
                f"the patches together {percent(a[PREFIX:].sum())}.") in text
        framed = "The query patch, row 2, column 6, is framed in yellow and black."
        assert (framed in text) == (query == PREFIX + 20)


def test_the_enlarged_head_names_its_largest_weight(traced):
    tr, probs = traced
    view = att.attention_view(tr, 1, 2, PREFIX + 9, ())
    a = probs[1][2, PREFIX + 9]
    r, c = divmod(int(np.argmax(a[PREFIX:])), 7)
    text = describe.enlarged_head(view)
    assert text.startswith(describe.head_map(view, 2).split(". Off the image")[0])
    assert (f"The largest weight on a patch, {a[PREFIX:].max():.3g}, is on row {r}, column {c}; uniform attention "
            f"would give every token {1 / 38:.3g}.") in text
    assert text.endswith("The query patch, row 1, column 2, is framed in yellow and black.")


def test_the_prefix_strip_gives_each_token_off_the_image(traced):
    tr, probs = traced
    view = att.attention_view(tr, 2, 1, 0, ())
    a = probs[2][1, 0]
    assert describe.prefix_strip(view) == (f"Layer 3, head 2, query CLS, the tokens with no place on the image: "
                                           f"CLS {percent(a[0])}; register 1 {percent(a[1])}; "
                                           f"register 2 {percent(a[2])}.")


def test_the_matrix_description_is_its_diagonal_and_most_read_keys(traced):
    tr, probs = traced
    view = att.attention_view(tr, 1, 0, PREFIX + 4, ())
    a = probs[1][0]  # (T, T)
    received = a.sum(0) / 38
    top = np.argsort(-received)[:3]
    text = describe.matrix(view, view.matrix())
    assert text.startswith("Attention matrix of layer 2, head 1: 38 × 38 tokens")
    assert f"holds {percent(np.trace(a) / 38)} of all the attention (uniform attention: {percent(1 / 38)})" in text
    keys = "; ".join(f"{view.layout.label(j)} {percent(received[j])}" for j in top)
    assert f"The keys that receive most: {keys}." in text
    assert text.endswith("The row of the query, patch (0, 4), is framed.")


def test_the_query_row_of_a_large_grid(traced):
    tr, probs = traced
    view = att.attention_view(tr, 0, 1, PREFIX + 34, ())
    text = describe.query_row(view)
    assert_distribution(text, probs[0][1, PREFIX + 34][PREFIX:].reshape(GRID), "the patch attention")
    assert "Drawn on the 5 × 7 patch grid." in text and "row 4, column 6, is framed" in text


@pytest.mark.parametrize("t", [0.3, 0.6, 1.0])
def test_dino_masks_count_and_place_the_kept_patches(traced, t):
    tr, probs = traced
    masks = att.attention_view(tr, 0, 0, 0, ()).masks(t)
    cls = probs[-1][:, 0, PREFIX:]  # (H, N): the last layer's CLS attention to the patches
    for h in range(3):
        order = np.argsort(cls[h])  # DINO's rule written out: drop the smallest while they hold at most 1 − t
        dropped = order[np.cumsum(cls[h][order] / cls[h].sum()) <= 1 - t]
        kept = np.setdiff1d(np.arange(35), dropped)
        rows, cols = np.divmod(kept, 7)
        assert describe.dino_mask(masks, h) == (
            f"Head {h + 1}: the {len(kept)} of 35 patches ({percent(len(kept) / 35)}) holding {percent(t)} of the "
            f"last layer's CLS attention to the patches stay bright and outlined, {grid_region(rows, cols, GRID)}; "
            "the rest is darkened.")


def rollout_by_hand(layers: list[np.ndarray], count: int) -> np.ndarray:
    """R[CLS] of the mean-fused rollout through the first `count` layers: ½(mean_h A + I), rows normalised."""
    result = np.eye(layers[0].shape[-1])
    for a in layers[:count]:
        step = (a.mean(0) + np.eye(len(result))) / 2
        result = (step / step.sum(-1, keepdims=True)) @ result
    return result[0]


def test_the_rollout_and_its_single_layer(traced):
    tr, probs = traced
    rolled = att.attention_view(tr, 0, 0, 0, ()).rollout(3)
    row = rollout_by_hand(probs, 3)
    text = describe.rollout_map(rolled)
    assert text.startswith("Rollout R[CLS, patches] through layers 1–3 (mean of heads): ")
    assert_distribution(text, row[PREFIX:].reshape(GRID), "the rolled-out attention")
    assert text.endswith(f"The patches hold {percent(row[PREFIX:].sum())} of R[CLS], CLS itself {percent(row[0])} "
                         f"and the registers {percent(row[1:3].sum())}.")
    alone = describe.layer_alone(rolled)
    assert alone.startswith("CLS attention in layer 3 alone (mean of heads): ")
    assert_distribution(alone, probs[2][:, 0].mean(0)[PREFIX:].reshape(GRID), "the patch attention")
    assert describe.fusion_text(att.attention_view(tr, 0, 0, 0, ()).rollout(2, "max", 0.5)) == \
        "max of heads, lowest 50% discarded"


def distance_by_hand(a: np.ndarray) -> float:
    """One head's mean attention distance (px, P = 8): CLS and registers dropped, rows renormalised."""
    rows, cols = np.divmod(np.arange(35), 7)
    dist = 8 * np.hypot(rows[:, None] - rows[None], cols[:, None] - cols[None])
    patch = a[PREFIX:, PREFIX:]
    return float(((patch / patch.sum(-1, keepdims=True)) * dist).sum(-1).mean())


def test_the_distance_chart_quotes_every_layer_against_uniform(traced):
    tr, probs = traced
    view = att.attention_view(tr, 1, 0, 0, ())
    distance = np.array([[distance_by_hand(a[h]) for h in range(3)] for a in probs])  # (L, H)
    np.testing.assert_allclose(view.distance, distance, rtol=1e-4)
    text = describe.distance_chart(view)
    px = lambda d: f"{d:.0f}" if d >= 10 else f"{d:.1f}"  # noqa: E731
    uniform = view.uniform_distance
    assert text.startswith("Mean attention distance of each of the 3 heads (one marker shape each) in each of the 3 "
                           f"layers; uniform attention over this grid gives {px(uniform)} px (the dashed line).")
    ranges = "; ".join(f"layer {i + 1} {px(d.min())}–{px(d.max())} px" for i, d in enumerate(distance))
    assert f"Shortest to longest head, layer by layer: {ranges}." in text
    assert (f"The mean over the heads goes from {px(distance[0].mean())} px in layer 1 to "
            f"{px(distance[-1].mean())} px in layer 3; {int((distance < uniform).sum())} of the 9 heads look closer than uniform.") in text
    assert text.endswith("Layer 2, the one selected, is shaded and labelled.")


def test_predictions_are_the_softmax_top_five():
    logits = torch.tensor([0.5, 2.0, -1.0, 1.0, 0.0, 3.0, -2.0])
    view = att.attention_view(peaked_trace(logits), 0, 0, 0, tuple("abcdefg"))
    p = logits.double().softmax(-1).numpy()
    assert describe.predictions(view) == ("The model's 5 most probable classes: " + "; ".join(
        f"{name} {percent(p[i])}" for name, i in zip("fbdae", (5, 1, 3, 0, 4))) + ".")
    assert describe.predictions(att.attention_view(peaked_trace(), 0, 0, 0, ())) == ""


def test_descriptions_follow_the_language(traced):
    """In Chinese every description is built without a missing placeholder (untranslated words stay English until
    the catalog has them)."""
    tr, _probs = traced
    view = att.attention_view(tr, 2, 1, PREFIX + 3, ())
    rolled = view.rollout(2)
    with vitviz.i18n.use_language("zh"):
        texts = [describe.head_map(view, 0), describe.enlarged_head(view), describe.prefix_strip(view),
                 describe.matrix(view, view.matrix()), describe.query_row(view), describe.dino_mask(view.masks(0.6), 1),
                 describe.rollout_map(rolled), describe.layer_alone(rolled), describe.distance_chart(view)]
    assert all(text and "{" not in text for text in texts)


def test_one_register_is_named_in_the_singular():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 6, 2, generator=g), torch.randn(1, 6, 2, generator=g)
    view = att.attention_view(att.AttentionTrace((q,), (k,), (k,), (2, 2), 8, np.zeros((1, 1)), None, prefix=2),
                              0, 0, 0, ())
    a = att.attention_probs(q[0], k[0], 2 ** -0.5)[0].double().numpy()
    assert (f"Off the image, the CLS token takes {percent(a[0])} and the register {percent(a[1])}; the patches "
            f"together {percent(a[2:].sum())}.") in describe.head_map(view, 0)


# ---- The tabs beyond the weight (vitviz.describe.attention_qk) ---------------------------------------------------
@pytest.fixture(scope="module")
def layer_scaled():
    """A DINOv2-like ViT (LayerScale λ₁ not 1, 2 registers) on a 5 × 7 grid: the model, its trace, and per layer
    the probabilities (H, T, T) it materialised itself."""
    cfg = ViTConfig(image_size=32, patch_size=8, dim=24, depth=2, heads=3, mlp_dim=48, registers=2, layer_scale=True)
    model = perturb_(common.init_random(ViT(cfg), "describe-qk"), seed=6).eval()
    pixels = torch.randn(1, 3, 40, 56, generator=torch.Generator().manual_seed(7))
    probs = vitviz.trace(model, pixels, include=["blocks.*.attn.probs"])
    return model, att.trace_attention(model, pixels), [probs[f"blocks.{i}.attn.probs"][0].double().numpy()
                                                       for i in range(2)]


def test_the_joint_map_names_the_true_top_weights_and_its_nearest_keys(layer_scaled):
    from vitviz import attention_qk as qk
    from vitviz.describe import attention_qk as describe_qk

    _model, tr, probs = layer_scaled
    query = PREFIX + 8  # patch (1, 1)
    view = qk.query_key_map(tr, 1, 2, query)
    alt = describe_qk.query_key_map(view, "patch row")
    row = probs[1][2, query]
    top = np.argsort(-row)[:5]
    assert alt.startswith("Layer 2, head 3: the 38 queries (circles) and 38 keys (diamonds) of this image")
    assert "Colour: patch row." in alt
    assert ("Lines join the query patch (1, 1) to its 5 largest weights: "
            + "; ".join(f"{tr.layout.label(int(j))} {percent(row[j])}" for j in top) + ".") in alt
    distances = np.linalg.norm(view.keys - view.queries[query], axis=1)
    near = np.argsort(distances)[:5]
    agree = len(set(near) & set(top))
    assert (f"Its 5 nearest keys in the picture are {'; '.join(tr.layout.label(int(j)) for j in near)}; {agree} of "
            "them are among those largest weights.") in alt
    assert f"Over all queries of this head, {percent(view.faithfulness[2])} of the nearest keys" in alt
    assert f"(a random picture: {percent(5 / 38)};" in alt


def test_the_contribution_sentences_quote_independent_norms(layer_scaled):
    from vitviz import attention_qk as qk
    from vitviz.describe import attention_qk as describe_qk

    model, tr, probs = layer_scaled
    c = qk.contributions(model, tr, 0, 1, 0)
    lam = model.blocks[0].ls1.lambda1.detach().double().numpy()
    proj = model.blocks[0].attn.proj.weight.detach().double().numpy()  # (D, H·d)
    v = tr.v[0].double().numpy()  # (H, T, d)
    d = v.shape[-1]
    f = np.stack([v[h] @ proj[:, h * d:(h + 1) * d].T for h in range(3)])  # (H, T, D): f_h(x_j)
    vectors = lam * np.einsum("ht,htd->td", probs[0][:, 0], f)  # λ₁ ⊙ Σ_h α^h_0j f_h(x_j)
    norms, weight = np.linalg.norm(vectors, axis=1), probs[0][:, 0].mean(0)
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731 (no ties among these floats)
    rho = np.corrcoef(rank(weight), rank(norms))[0, 1]
    text = describe_qk.disagreement(c)
    assert text.startswith(f"Rank correlation of weight and contribution over the 38 tokens: ρ = {rho:.2f} (")
    over = int(np.argmax(weight / weight.sum() - norms / norms.sum()))
    if weight[over] / weight.sum() > 2 * norms[over] / norms.sum():
        assert f"Looked at, little taken: {tr.layout.label(over)} gets {percent(weight[over] / weight.sum())}" in text
    alt = describe_qk.contribution_map(c)
    assert alt.startswith("Layer 1, query CLS, length of what each token adds, summed over the heads: ")
    assert (f"Off the image: CLS {percent(norms[0] / norms.sum())}, the registers "
            f"{percent(norms[1:PREFIX].sum() / norms.sum())}.") in alt
    received = probs[0].mean((0, 1))
    assert (f"Over all 38 queries of layer 1: CLS: {percent(received[0])} of the attention received") in (
        describe_qk.layer_sentence(c))
    assert describe_qk.weight_map(c).endswith(
        f"Off the image: CLS {percent(weight[0] / weight.sum())}, the registers "
        f"{percent(weight[1:PREFIX].sum() / weight.sum())}.")
    assert describe_qk.value_map(c).startswith("Layer 1, head 2, length of each token's transformed value: ")
    assert describe_qk.share_map(c).startswith("Layer 1, all queries: each token's share of the attention output, ")
