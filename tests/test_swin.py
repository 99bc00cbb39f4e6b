"""Swin parity with transformers 5.23 on locally saved checkpoints, and the shifted-window invariants."""
from __future__ import annotations

import copy
import re
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from transformers import SwinConfig as HFSwinConfig
from transformers import SwinForImageClassification, SwinModel
from transformers.models.swin.modeling_swin import SwinAttention, SwinPatchMerging, SwinRelativePositionBias

import vitviz
from vitviz.models.swin import (
    PRESETS,
    PatchMerging,
    Swin,
    SwinBlock,
    SwinConfig,
    config_from_hf,
    region_labels,
    relative_position_index,
    resize_bias_table,
    shift_mask,
    window_and_shift,
    window_partition,
    window_reverse,
)

from .helpers import perturb_, recording_ended, save

RTOL, ATOL = 1e-4, 1e-5


def hf_config(**kw) -> HFSwinConfig:
    base = dict(image_size=32, patch_size=4, embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=4,
                attn_implementation="eager")
    base.update(kw)
    return HFSwinConfig(**base)


def randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere; bias tables at std 1 so that a wrong index or crop changes the attention."""
    perturb_(model, seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("relative_position_bias_table"):
                param.mul_(10)
    return model.eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Pristine transformers models (never run: each use deep-copies, as transformers mutates on forward) + dirs.

    classifier: P=4, M=4, eps 1e-3; backbone: P=2, odd M=3, three stages, no q/k/v bias;
    tiny7: Swin-T's geometry (P=4, M=7, four stages) at width 16, to reach 56²/28²/14²/7² cheaply.
    """
    root = tmp_path_factory.mktemp("swin")
    torch.manual_seed(0)
    labels = {i: f"label{i}" for i in range(5)}
    classifier = randomise(SwinForImageClassification(hf_config(num_labels=5, id2label=labels, layer_norm_eps=1e-3)), 1)
    backbone = randomise(SwinModel(hf_config(patch_size=2, embed_dim=24, depths=[2, 2, 2], num_heads=[2, 4, 6],
                                             window_size=3, qkv_bias=False), add_pooling_layer=False), 2)
    tiny7 = randomise(SwinModel(hf_config(image_size=224, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=7)), 3)
    return {name: (model, save(model, root / name)) for name, model in
            [("classifier", classifier), ("backbone", backbone), ("tiny7", tiny7)]}


def run_hf(model: torch.nn.Module, x: torch.Tensor, fresh: bool = True) -> dict:
    """transformers' outputs plus every block's attention, captured by hooks on its SwinAttention modules."""
    model = copy.deepcopy(model) if fresh else model
    base = getattr(model, "swin", model)
    per_block, captured = {}, {}
    handles = [base.register_forward_hook(lambda m, a, out: captured.__setitem__("last", out.last_hidden_state))]
    for name, module in base.named_modules():
        if isinstance(module, SwinAttention):
            s, b = re.search(r"layers\.(\d+)\.blocks\.(\d+)\.attention$", name).groups()
            key = f"stages.{s}.blocks.{b}.attn.probs"
            handles.append(module.register_forward_hook(lambda m, a, out, key=key: per_block.__setitem__(key, out[1])))
    try:
        with torch.no_grad():
            out = model(x, output_attentions=True)
    finally:
        for handle in handles:
            handle.remove()
    return dict(last=captured["last"], logits=getattr(out, "logits", None), attentions=out.attentions, blocks=per_block)


def run_ours(model: Swin, x: torch.Tensor, window_size: int | None = None) -> tuple:
    """Our output and every block's `attn.probs`, recorded by vitviz.trace (which passes `window_size` on)."""
    t = vitviz.trace(model, x, "*.attn.probs", output_attentions=True, window_size=window_size)
    return t.output, t.records


def assert_matches(ours: Swin, x: torch.Tensor, expected: dict, window_size: int | None = None) -> None:
    out, blocks = run_ours(ours, x, window_size)
    torch.testing.assert_close(out.last_hidden_state, expected["last"], rtol=RTOL, atol=ATOL)
    if expected["logits"] is None:
        assert out.logits is None
    else:
        torch.testing.assert_close(out.logits, expected["logits"], rtol=RTOL, atol=ATOL)
    assert len(out.attentions) == len(expected["attentions"]) == len(ours.stages)
    untraced = ours(x, window_size=window_size).attentions  # no probs tap active: only the last blocks' softmax
    for a, b, c in zip(out.attentions, expected["attentions"], untraced):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)
        torch.testing.assert_close(c, b, rtol=RTOL, atol=ATOL)
    assert blocks.keys() == expected["blocks"].keys()
    for name, probs in blocks.items():
        torch.testing.assert_close(probs, expected["blocks"][name], rtol=RTOL, atol=ATOL, msg=name)


# --- parity with transformers where transformers is well defined -------------------------------------------------

@pytest.mark.parametrize("name,size", [
    ("classifier", (32, 32)),  # stage 2 is 4×4 = M: one window, unshifted
    ("classifier", (70, 90)),  # pixels padded to 72×92; 18×23 → 9×12 maps padded to whole windows; odd merges
    ("backbone", (24, 24)),  # odd M = 3, s = 1; 12² → 6² → 3² = M
    ("backbone", (26, 34)),  # 13×17 → 7×9 → 4×5
    ("tiny7", (224, 224)),  # Swin-T geometry: 56² → 28² → 14² → 7² = M
])
def test_outputs_and_every_block_attention_match_transformers(checkpoints, name, size):
    reference, path = checkpoints[name]
    ours = vitviz.load_model(path, device="cpu")
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    assert_matches(ours, x, run_hf(reference, x))


def test_transformers_stage_attentions_are_each_stages_last_block(checkpoints):
    """SwinModel(output_attentions=True) returns one map per stage: the last (here shifted) block's."""
    reference, _ = checkpoints["classifier"]
    expected = run_hf(reference, torch.randn(1, 3, 70, 90))
    assert len(expected["attentions"]) == 2
    for s, att in enumerate(expected["attentions"]):
        assert torch.equal(att, expected["blocks"][f"stages.{s}.blocks.1.attn.probs"])
        assert not torch.allclose(att, expected["blocks"][f"stages.{s}.blocks.0.attn.probs"])


def test_loaded_labels_and_epsilons(checkpoints):
    clf = vitviz.load_model(checkpoints["classifier"][1], device="cpu")
    assert clf.config.labels == tuple(f"label{i}" for i in range(5))
    assert clf.stages[0].blocks[0].norm1.eps == clf.norm.eps == 1e-3
    assert clf.embed_norm.eps == clf.stages[0].downsample.norm.eps == 1e-5  # as transformers: torch's default
    backbone = vitviz.load_model(checkpoints["backbone"][1], device="cpu")
    assert backbone.head is None and backbone.config.labels == () and backbone.config.window_size == 3
    assert backbone.stages[0].blocks[0].attn.query.bias is None


def test_hub_style_file_with_relative_position_index_buffers_loads_strictly(checkpoints, tmp_path):
    """Hub files still store relative_position_index; it is dropped and recomputed."""
    reference, path = checkpoints["classifier"]
    state = load_file(path / "model.safetensors")
    for key in [k for k in state if k.endswith("relative_position_bias_table")]:
        state[key.replace("relative_position_bias_table", "relative_position_index")] = relative_position_index(4).flatten()
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    ours = vitviz.load_model(tmp_path, device="cpu")
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(ours(x).logits, run_hf(reference, x)["logits"], rtol=RTOL, atol=ATOL)


def test_config_from_hf_rejects_what_the_module_does_not_compute(checkpoints):
    import json

    cfg = json.loads((checkpoints["classifier"][1] / "config.json").read_text())
    assert config_from_hf(cfg).depths == (2, 2) and config_from_hf(cfg).heads == (2, 4)
    with pytest.raises(ValueError, match="absolute"):
        config_from_hf({**cfg, "use_absolute_embeddings": True})
    with pytest.raises(ValueError, match="hidden_act"):
        config_from_hf({**cfg, "hidden_act": "relu"})
    assert config_from_hf({**cfg, "architectures": ["SwinModel"]}).labels == ()


# --- where transformers is broken: ours against an independent computation ---------------------------------------

def cropped_reference(model: torch.nn.Module, stage: int, window: int, table_window: int | None = None) -> torch.nn.Module:
    """A copy of transformers' model whose `stage` blocks get bias modules built for a window×window window.

    transformers clamps the window to a small stage but keeps the M×M bias, so it crashes on the shape. The
    rebuilt module holds the central (2m-1)² rows of the table, i.e. the learned bias of every offset the small
    window has: an independent computation (transformers' own attention code) of what the clamped window means.
    """
    model = copy.deepcopy(model)
    base = getattr(model, "swin", model)
    big = table_window or model.config.window_size
    lo, hi = big - window, big + window - 1
    for block in base.encoder.layers[stage].blocks:
        table = block.attention.relative_position_bias.relative_position_bias_table.detach()
        heads = table.shape[1]
        bias = SwinRelativePositionBias(heads, (window, window))
        with torch.no_grad():
            bias.relative_position_bias_table.copy_(table.view(2 * big - 1, 2 * big - 1, heads)[lo:hi, lo:hi].reshape(-1, heads))
        block.attention.relative_position_bias = bias
    return model


@pytest.mark.parametrize("name,size,stage,window", [
    ("classifier", (20, 28), 1, 3),  # 5×7 → 3×4: stage 2 is smaller than M = 4
    ("tiny7", (192, 192), 3, 6),  # Swin-T geometry at 192: 48 → 24 → 12 → 6 < 7, where transformers crashes
])
def test_stage_smaller_than_window_matches_cropped_table_reference(checkpoints, name, size, stage, window):
    reference, path = checkpoints[name]
    x = torch.randn(1, 3, *size)
    with pytest.raises(RuntimeError):  # documents the transformers 5.23 bug this module avoids
        run_hf(reference, x)
    ours = vitviz.load_model(path, device="cpu")
    assert_matches(ours, x, run_hf(cropped_reference(reference, stage, window), x))
    assert ours(x).attentions[stage].shape[-1] == window * window


def test_no_mutation_224_then_256_then_192(checkpoints):
    """transformers' 224 run sets the 7×7 stage's shift to 0 for good, so its later 256 run is wrong; ours is not."""
    reference, path = checkpoints["tiny7"]
    ours, fresh = vitviz.load_model(path, device="cpu"), vitviz.load_model(path, device="cpu")
    x224, x256, x192 = torch.randn(1, 3, 224, 224), torch.randn(1, 3, 256, 256), torch.randn(1, 3, 192, 192)
    with torch.no_grad():
        ours(x224), ours(x256), ours(x192)
        again, expected = ours(x256), fresh(x256)
    assert torch.equal(again.last_hidden_state, expected.last_hidden_state)
    assert all(torch.equal(a, b) for a, b in zip(again.attentions, expected.attentions))
    assert [b.window_size for s in ours.stages for b in s.blocks] == [7] * 8
    torch.testing.assert_close(again.last_hidden_state, run_hf(reference, x256)["last"], rtol=RTOL, atol=ATOL)
    mutated = copy.deepcopy(reference)
    run_hf(mutated, x224, fresh=False)
    assert not torch.allclose(run_hf(mutated, x256, fresh=False)["last"], expected.last_hidden_state, atol=1e-3), \
        "the scenario no longer triggers transformers' mutation; this test then checks nothing"


# --- window size override -----------------------------------------------------------------------------------------

def timm_style_resize(table: torch.Tensor, window: int) -> torch.Tensor:
    """timm's resize_rel_pos_bias_table_simple, written its own way (transpose/reshape, not einops)."""
    src, dst = int(table.shape[0] ** 0.5), 2 * window - 1
    grid = table.transpose(1, 0).reshape(1, -1, src, src)
    return F.interpolate(grid, size=(dst, dst), mode="bicubic", align_corners=False).view(-1, dst * dst).transpose(0, 1)


def test_resize_bias_table_is_bicubic_per_head():
    table = torch.randn(13 * 13, 3)
    assert resize_bias_table(table, 7) is table
    for window in (2, 4, 10, 14):
        torch.testing.assert_close(resize_bias_table(table, window), timm_style_resize(table, window))
    constant = torch.full((13 * 13, 2), 0.5)  # bicubic weights sum to 1: a constant bias stays constant
    torch.testing.assert_close(resize_bias_table(constant, 10), torch.full((19 * 19, 2), 0.5))


@pytest.mark.parametrize("window", [4, 14])
def test_window_override_matches_transformers_built_for_that_window(checkpoints, window):
    """M' = 4: every stage shifts by 2. M' = 14: 56² and 28² shift by 7, 14² = M' is one window, and the 7² stage
    is smaller than the window (cropped reference, as above)."""
    reference, path = checkpoints["tiny7"]
    other = SwinModel(hf_config(image_size=224, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=window)).eval()
    state = {k: timm_style_resize(v, window) if k.endswith("relative_position_bias_table") else v
             for k, v in reference.state_dict().items()}
    other.load_state_dict(state)
    if window == 14:
        other = cropped_reference(other, 3, 7)
    ours = vitviz.load_model(path, device="cpu")
    x = torch.randn(1, 3, 224, 224)
    assert_matches(ours, x, run_hf(other, x), window_size=window)
    block = ours.stages[0].blocks[1]
    assert block.bias_table(window).shape == ((2 * window - 1) ** 2, 1)
    torch.testing.assert_close(block.bias_table(window), timm_style_resize(block.relative_position_bias_table, window))
    records = run_ours(ours, x, window)[1]
    for probs in records.values():
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))
    # the 7×7 stage: one clamped 7×7 window for M' = 14; padded to 8×8 and four 4×4 windows for M' = 4
    assert records["stages.3.blocks.1.attn.probs"].shape == ((1, 8, 49, 49) if window == 14 else (4, 8, 16, 16))


def test_window_override_none_is_the_checkpoint_window(checkpoints):
    ours = vitviz.load_model(checkpoints["backbone"][1], device="cpu")
    x = torch.randn(1, 3, 26, 34)
    assert torch.equal(ours(x).last_hidden_state, ours(x, window_size=3).last_hidden_state)
    assert ours.stages[0].blocks[0].bias_table(3) is ours.stages[0].blocks[0].relative_position_bias_table
    with pytest.raises(ValueError, match="positive"):
        ours(x, window_size=0)


# --- invariants ---------------------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 14), nh=st.integers(1, 4), nw=st.integers(1, 4), b=st.integers(1, 2), c=st.integers(1, 3))
def test_window_reverse_inverts_window_partition(m, nh, nw, b, c):
    x = torch.randn(b, nh * m, nw * m, c)
    windows = window_partition(x, m)
    assert windows.shape == (b * nh * nw, m * m, c)
    # window (bi, i, j) holds the rows i·M.. and columns j·M.. of image bi, row-major inside
    bi, i, j = b - 1, nh - 1, nw - 1
    assert torch.equal(windows[(bi * nh + i) * nw + j].view(m, m, c), x[bi, i * m:(i + 1) * m, j * m:(j + 1) * m])
    assert torch.equal(window_reverse(windows, m, nh * m, nw * m), x)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), s=st.integers(0, 10))
def test_unshift_undoes_shift(h, w, s):
    block = SwinBlock(4, 1, True, SwinConfig(window_size=2))
    x = torch.randn(2, h, w, 4)
    shifted = block.shift(x, s)
    assert torch.equal(shifted, torch.roll(x, shifts=(-s, -s), dims=(1, 2)))
    assert torch.equal(block.unshift(shifted, s), x)


def brute_force_mask(height: int, width: int, m: int, s: int) -> list[list[list[float]]]:
    """The original Swin code's slice assignment of 9 regions, then every pair of every window compared in a loop."""
    labels = [[0] * width for _ in range(height)]
    count = 0
    for hs in (slice(0, -m), slice(-m, -s), slice(-s, None)):
        for ws in (slice(0, -m), slice(-m, -s), slice(-s, None)):
            for r in range(height)[hs]:
                for c in range(width)[ws]:
                    labels[r][c] = count
            count += 1
    masks = []
    for wy in range(height // m):
        for wx in range(width // m):
            cells = [(wy * m + i // m, wx * m + i % m) for i in range(m * m)]
            masks.append([[0.0 if labels[a][b] == labels[c][d] else -100.0 for (c, d) in cells] for (a, b) in cells])
    return masks


@settings(max_examples=40, deadline=None)
@given(data=st.data(), m=st.integers(2, 6), nh=st.integers(1, 4), nw=st.integers(1, 4))
def test_shift_mask_equals_brute_force_region_comparison(data, m, nh, nw):
    s = data.draw(st.integers(1, m - 1))
    assert shift_mask(nh * m, nw * m, m, s).tolist() == brute_force_mask(nh * m, nw * m, m, s)


def test_no_shift_means_one_region_and_no_mask():
    assert not region_labels(14, 21, 7, 0).any()
    assert not shift_mask(14, 21, 7, 0).any()


def test_swin_t_first_stage_mask_counts():
    labels = region_labels(56, 56, 7, 3)
    assert labels.unique().tolist() == list(range(9))
    masked = (shift_mask(56, 56, 7, 3) != 0).sum(dim=(1, 2))
    assert masked.shape == (64,) and int((masked > 0).sum()) == 15
    assert sorted(masked.tolist()) == [0] * 49 + [1176] * 14 + [1776]
    assert masked[63] == 1776  # the bottom-right window holds all four corner regions


def test_reference_worked_example_a1_to_d4():
    """4×4 grid A1..D4, M = 2, s = 1: a 2-D cyclic roll, not a shift along raster order."""
    names = [f"{r}{c}" for r in "ABCD" for c in "1234"]
    grid = torch.arange(16.0).view(1, 4, 4, 1)
    block = SwinBlock(4, 1, True, SwinConfig(window_size=2))
    rolled = block.shift(grid, 1)
    assert [" ".join(names[int(v)] for v in row) for row in rolled[0, :, :, 0]] == \
        ["B2 B3 B4 B1", "C2 C3 C4 C1", "D2 D3 D4 D1", "A2 A3 A4 A1"]
    windows = [" ".join(names[int(v)] for v in w[:, 0]) for w in block.partition(rolled, 2)]
    assert windows == ["B2 B3 C2 C3", "B4 B1 C4 C1", "D2 D3 A2 A3", "D4 D1 A4 A1"]
    mask = shift_mask(4, 4, 2, 1)
    assert not mask[0].any()  # B2 B3 / C2 C3 were neighbours before the roll
    assert (mask[1] != 0).tolist() == [[False, True, False, True], [True, False, True, False],
                                       [False, True, False, True], [True, False, True, False]]
    assert torch.equal(mask[3] != 0, ~torch.eye(4, dtype=torch.bool))  # four singletons


@pytest.mark.parametrize("m", range(1, 9))
def test_relative_position_index_matches_transformers_and_formula(m):
    index = relative_position_index(m)
    assert torch.equal(index.flatten(), SwinRelativePositionBias(1, (m, m)).relative_position_index)
    q, k = m * m - 1, 0  # bottom-right query, top-left key: dy = dx = M-1
    assert index[q, k] == (2 * m - 2) * (2 * m - 1) + (2 * m - 2)
    assert index.diagonal().eq((m - 1) * (2 * m - 1) + (m - 1)).all()  # the centre row for zero offset


def test_relative_position_index_inside_a_bigger_table_uses_its_central_rows():
    small, big = relative_position_index(3, 7), relative_position_index(7)
    cells = [r * 7 + c for r in range(3) for c in range(3)]  # a 3×3 corner of the 7×7 window: same offsets
    assert torch.equal(small, big[cells][:, cells])
    with pytest.raises(ValueError):
        relative_position_index(8, 7)


@pytest.mark.parametrize("size,window,shift,expected", [
    ((56, 56), 7, 3, (7, 3)), ((7, 7), 7, 3, (7, 0)), ((6, 9), 7, 3, (6, 0)), ((8, 3), 4, 2, (3, 0)), ((9, 12), 4, 0, (4, 0)),
])
def test_window_and_shift(size, window, shift, expected):
    assert window_and_shift(*size, window, shift) == expected


@pytest.mark.parametrize("size", [(4, 6), (5, 7), (3, 2), (1, 1)])
def test_patch_merging_order_is_the_checkpoints_cat(size):
    h, w = size
    x = torch.randn(2, h * w, 8)
    merging = PatchMerging(8)
    perturb_(merging, 4)
    grid = F.pad(x.view(2, h, w, 8), (0, 0, 0, w % 2, 0, h % 2))
    cat = torch.cat([grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2]], dim=-1)
    assert torch.equal(merging.merge(x, size), cat.reshape(2, -1, 32))
    theirs = SwinPatchMerging(8)
    theirs.load_state_dict(merging.state_dict())
    torch.testing.assert_close(merging(x, size), theirs(x, size))


def test_attention_rows_sum_to_one_and_taps_agree(checkpoints):
    ours = vitviz.load_model(checkpoints["classifier"][1], device="cpu")
    t = vitviz.trace(ours, torch.randn(2, 3, 70, 90))
    for name in [n for n in t.records if n.endswith("probs")]:
        probs = t[name]
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))
    block = "stages.0.blocks.1"
    assert t[f"{block}.shifted"].shape == (2, 20, 24, 16)  # 18×23 padded to whole 4×4 windows
    assert t[f"{block}.windows"].shape == (2 * 30, 16, 16)
    assert torch.equal(t[f"{block}.labels"], region_labels(20, 24, 4, 2))
    assert torch.equal(t[f"{block}.mask"], shift_mask(20, 24, 4, 2))
    assert "stages.0.blocks.0.mask" not in t and not t["stages.0.blocks.0.labels"].any()
    q, k = t[f"{block}.attn.q"], t[f"{block}.attn.k"]
    scores = q @ k.transpose(-2, -1) * 8**-0.5 + t[f"{block}.rel_bias"] + t[f"{block}.mask"].repeat(2, 1, 1)[:, None]
    torch.testing.assert_close(t[f"{block}.attn.probs"], scores.softmax(-1), rtol=RTOL, atol=ATOL)
    assert t["stages.0.merged"].shape == (2, 9 * 12, 32) and t["stages.1.blocks.1.out"].shape == (2, 9 * 12, 32)


def test_fast_path_matches_explicit_attention(checkpoints):
    ours = vitviz.load_model(checkpoints["backbone"][1], device="cpu")
    x = torch.randn(2, 3, 26, 34)
    fast, explicit = ours(x, output_attentions=False), ours(x)
    assert fast.attentions is None
    torch.testing.assert_close(fast.last_hidden_state, explicit.last_hidden_state, rtol=RTOL, atol=ATOL)


def test_tracing_leaves_no_recording_and_no_change(checkpoints):
    ours = vitviz.load_model(checkpoints["backbone"][1], device="cpu")
    x = torch.randn(1, 3, 24, 24)
    before = ours(x, output_attentions=False).last_hidden_state
    vitviz.trace(ours, x)
    assert recording_ended(ours)
    assert torch.equal(ours(x, output_attentions=False).last_hidden_state, before)


def test_autograd_works_after_a_trace_filled_the_caches():
    """The cached index and mask are first built inside trace's inference mode; they must still serve autograd."""
    from vitviz.models import swin

    swin._cached_index.cache_clear()
    swin._cached_mask.cache_clear()
    model = Swin(SwinConfig(embed_dim=8, depths=(2, 2), heads=(1, 2), window_size=3, labels=("a", "b")))
    x = torch.randn(1, 3, 44, 44)
    vitviz.trace(model, x)
    model(x, output_attentions=False).logits.sum().backward()
    assert model.stages[0].blocks[1].relative_position_bias_table.grad.abs().sum() > 0


# --- the swin-tiny preset -----------------------------------------------------------------------------------------

def test_swin_tiny_preset_parameters_and_stage_shapes():
    assert sum(p.numel() for p in Swin(PRESETS["swin-tiny"]).parameters()) == 28_288_354
    model = vitviz.load_model("swin-tiny", device="cpu")
    t = vitviz.trace(model, torch.randn(1, 3, 224, 224), ["embeddings", "*.out", "*.merged", "*.windows"])
    assert t["embeddings"].shape == (1, 56 * 56, 96)
    for s, (side, dim, windows, last) in enumerate([(56, 96, 64, 1), (28, 192, 16, 1), (14, 384, 4, 5), (7, 768, 1, 1)]):
        assert t[f"stages.{s}.blocks.{last}.out"].shape == (1, side * side, dim)
        assert t[f"stages.{s}.blocks.0.windows"].shape == (windows, 49, dim)
        if s < 3:
            assert t[f"stages.{s}.merged"].shape == (1, side * side // 4, 2 * dim)
    assert t.output.last_hidden_state.shape == (1, 49, 768) and t.output.logits.shape == (1, 1000)
    with pytest.raises(KeyError):
        vitviz.trace(model, torch.randn(1, 3, 32, 32), "stages.3.merged")


def test_with_patch_size_is_a_new_model_with_the_checkpoints_weights(checkpoints):
    ours = vitviz.load_model(checkpoints["classifier"][1], device="cpu")
    bigger = ours.with_patch_size(8)
    assert bigger is not ours and ours.with_patch_size(4) is ours
    assert (bigger.source, bigger.preprocessing) == (ours.source, ours.preprocessing)
    assert bigger.config == replace(ours.config, patch_size=8) and ours.config.patch_size == 4
    assert not any(p.is_meta for p in bigger.parameters()) and not bigger.training
    assert bigger.head.weight.data_ptr() == ours.head.weight.data_ptr()  # shared, not copied
    x = torch.randn(1, 3, 64, 64)
    assert bigger(x).last_hidden_state.shape == (1, 4 * 4, 32)  # 8×8 tokens of 16 channels, merged once
