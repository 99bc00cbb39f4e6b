"""MobileViT parity with transformers on locally saved checkpoints, and the unfold/fold invariants."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import MobileViTConfig as HFMobileViTConfig
from transformers import MobileViTForImageClassification, MobileViTModel
from transformers.models.mobilevit.modeling_mobilevit import MobileViTLayer

import vitviz
from vitviz.models.mobilevit import PRESETS, MobileViT, MobileViTBlock, MobileViTConfig, config_from_hf, fold, unfold

from .helpers import recording_ended

RTOL, ATOL = 1e-4, 1e-5
XXS = dict(neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320], hidden_sizes=[64, 80, 96], expand_ratio=2.0)
MOBILEVIT_STAGES = (2, 3, 4)
DEPTHS = (2, 4, 3)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These models are tiny: a second OpenMP thread only adds barrier waits, which on a busy 2-core machine
    made the module 5× slower. Restored afterwards for the other test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hf_config(**kw) -> HFMobileViTConfig:
    return HFMobileViTConfig(**{**XXS, "image_size": 64, **kw})


def randomize_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights that keep activations at unit scale through the deep conv stack, random LayerNorm/BatchNorm
    affines and biases, and non-trivial BatchNorm running statistics, so every loaded tensor matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=g)
            if param.ndim == 4:
                param.copy_(noise * (2.0 / param[0].numel()) ** 0.5)
            elif param.ndim == 2:
                # Larger query/key weights give peaked attention maps, which a wrong layout cannot mimic.
                gain = 2.5 if ".query." in name or ".key." in name else 1.0
                param.copy_(noise * gain * param.shape[1] ** -0.5)
            elif name.endswith("weight"):
                param.copy_(1 + 0.2 * noise)
            else:
                param.copy_(0.1 * noise)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(0.2 * torch.randn(module.running_mean.shape, generator=g))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(module.running_var.shape, generator=g))
                module.num_batches_tracked.fill_(3)
    return model.eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """An XXS classifier (7 labels) and an XXS backbone without classifier whose config departs from the defaults
    (heads, MLP ratio, LayerNorm epsilon, patch size), saved with save_pretrained."""
    root = tmp_path_factory.mktemp("mobilevit")
    labels = {i: f"label{i}" for i in range(7)}
    classifier = randomize_(MobileViTForImageClassification(hf_config(num_labels=7, id2label=labels)), 1)
    backbone_config = hf_config(num_attention_heads=2, mlp_ratio=3.0, layer_norm_eps=1e-6, patch_size=3)
    backbone = randomize_(MobileViTModel(backbone_config), 2)
    classifier.save_pretrained(root / "classifier")
    backbone.save_pretrained(root / "backbone")
    return {
        "classifier": (classifier, vitviz.load_model(root / "classifier", device="cpu")),
        "backbone": (backbone, vitviz.load_model(root / "backbone", device="cpu")),
    }


def pixels(*size: int, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(sum(size)))


@pytest.mark.parametrize("name", ["classifier", "backbone"])
@pytest.mark.parametrize("size", [(64, 64), (100, 76), (33, 47)])
def test_outputs_match_transformers(checkpoints, name, size):
    reference, ours = checkpoints[name]
    x = pixels(*size)
    with torch.no_grad():
        backbone = reference.mobilevit if name == "classifier" else reference
        expected = backbone(x)
        got = ours(x, output_attentions=False)
    assert got.attentions is None
    assert got.last_hidden_state.std() > 0.1  # real activations, not a collapsed network
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, rtol=RTOL, atol=ATOL)
    if name == "classifier":
        with torch.no_grad():
            logits = reference(x).logits
        assert logits.std() > 0.1
        torch.testing.assert_close(got.logits, logits, rtol=RTOL, atol=ATOL)
        assert ours.config.labels == tuple(f"label{i}" for i in range(7))
    else:
        assert got.logits is None and ours.config.labels == ()
        cfg = ours.config
        assert (cfg.heads, cfg.mlp_ratio, cfg.layer_norm_eps, cfg.patch_size) == (2, 3.0, 1e-6, 3)


def test_block_maps_at_100x76_are_not_multiples_of_the_patch(checkpoints):
    """The parity sizes above really exercise the bilinear resize inside the MobileViT blocks."""
    trace = vitviz.trace(checkpoints["classifier"][1], pixels(100, 76), "*.block.input")
    sizes = [tuple(trace[f"stages.{i}.block.input"].shape[-2:]) for i in MOBILEVIT_STAGES]
    assert sizes == [(13, 10), (7, 5), (4, 3)]


def hf_attention_probs(reference: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """transformers' attention probabilities, read where they enter the attention dropout (identity in eval)."""
    probs, handles = {}, []
    for name, module in reference.named_modules():
        if name.endswith("attention.attention.dropout"):
            stage, layer = int(name.split(".")[2]), int(name.split(".")[5])
            key = f"stages.{stage}.block.layers.{layer}.attn.probs"
            handles.append(module.register_forward_hook(lambda m, a, out, key=key: probs.__setitem__(key, out)))
    try:
        with torch.no_grad():
            reference(x)
    finally:
        for handle in handles:
            handle.remove()
    return probs


@pytest.mark.parametrize("size", [(64, 64), (100, 76)])
def test_every_attention_map_matches_transformers(checkpoints, size):
    reference, ours = checkpoints["classifier"]
    x = pixels(*size)
    expected = hf_attention_probs(reference.mobilevit, x)
    trace = vitviz.trace(ours, x, "*.probs")
    with torch.no_grad():
        returned = ours(x, output_attentions=True).attentions
    assert len(expected) == len(trace.records) == len(returned) == sum(DEPTHS)
    for (name, probs), from_output in zip(trace.records.items(), returned):
        n = probs.shape[-1]
        assert n == 1 or probs.amax(-1).mean() > 1.5 / n  # peaked maps, not near-uniform ones
        torch.testing.assert_close(probs, expected[name], rtol=RTOL, atol=ATOL)
        torch.testing.assert_close(from_output, probs, rtol=RTOL, atol=ATOL)


def test_attention_rows_sum_to_one(checkpoints):
    trace = vitviz.trace(checkpoints["classifier"][1], pixels(96, 80), "*.probs")
    for probs in trace.records.values():
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]), rtol=0, atol=1e-5)
        assert probs.min() >= 0


@pytest.mark.parametrize("patch", [(1, 1), (4, 4), (2, 4), (3, 2)])
def test_patch_size_override_matches_transformers(checkpoints, patch):
    """The weights do not depend on the patch: transformers with its blocks set to (ph, pw) agrees."""
    reference, ours = checkpoints["classifier"]
    ph, pw = patch
    x = pixels(64, 96)
    blocks = [reference.mobilevit.encoder.layer[i] for i in MOBILEVIT_STAGES]
    try:
        for block in blocks:
            block.patch_height, block.patch_width = ph, pw
        with torch.no_grad():
            logits = reference(x).logits
    finally:
        for block in blocks:
            block.patch_height = block.patch_width = 2
    shapes, handles = {}, []
    for name, module in ours.named_modules():
        if name.startswith("stages.2.block.") and name.endswith(("unfolded", "folded")):
            handles.append(
                module.register_forward_hook(lambda m, a, out, name=name: shapes.__setitem__(name, out.shape))
            )
    try:
        with torch.no_grad():
            got = ours(x, patch_size=patch)
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        default = ours(x).logits
    torch.testing.assert_close(got.logits, logits, rtol=RTOL, atol=ATOL)
    assert not torch.allclose(got.logits, default, rtol=1e-3, atol=1e-3)  # the patch changes what attention mixes
    assert got.last_hidden_state.shape == (2, 320, 2, 3)
    maps = {0: (8, 12), 2: (4, 6), 6: (2, 3)}  # first layer of stages 2–4 -> its map for a 64×96 input
    for layer, (h, w) in maps.items():
        n = -(-h // ph) * -(-w // pw)  # patches after resizing up to multiples of the patch
        assert got.attentions[layer].shape == (2 * ph * pw, 4, n, n)
    n = -(-8 // ph) * -(-12 // pw)
    assert shapes == {"stages.2.block.unfolded": (2 * ph * pw, n, 64), "stages.2.block.folded": (2, 64, 8, 12)}


def test_patch_size_default_is_the_checkpoint_patch(checkpoints):
    ours = checkpoints["classifier"][1]
    x = pixels(64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, patch_size=(2, 2)).logits, ours(x).logits, rtol=0, atol=0)
        torch.testing.assert_close(ours(x, patch_size=2).logits, ours(x).logits, rtol=0, atol=0)


def test_traced_shapes_at_256_match_the_reference_and_transformers():
    """REFERENCE.md: stage 2 is a 32×32 map with d = 64 unfolded to (4, 256, 64) for b = 1, patch 2; stage 3
    16×16, d = 80, (4, 64, 80); stage 4 8×8, d = 96, (4, 16, 96). transformers gives the same stage outputs."""
    ours = MobileViT(PRESETS["mobilevit-xxs"]).eval()
    x = torch.rand(1, 3, 256, 256)
    trace = vitviz.trace(ours, x)
    reference = MobileViTModel(hf_config(image_size=256)).eval()
    with torch.no_grad():
        hidden = reference(x, output_hidden_states=True).hidden_states
    expected = {2: (32, 64, (4, 256, 64)), 3: (16, 80, (4, 64, 80)), 4: (8, 96, (4, 16, 96))}
    for i, (side, d, unfolded) in expected.items():
        block = f"stages.{i}.block"
        channels = reference.encoder.layer[i].conv_1x1.convolution.out_channels
        assert d == channels
        assert trace[f"{block}.local"].shape == (1, d, side, side)
        assert trace[f"{block}.unfolded"].shape == unfolded
        assert trace[f"{block}.global_"].shape == unfolded
        assert trace[f"{block}.layers.0.attn.probs"].shape == (4, 4, unfolded[1], unfolded[1])
        assert trace[f"{block}.layers.0.attn.q"].shape == (4, 4, unfolded[1], d // 4)
        assert trace[f"{block}.folded"].shape == (1, d, side, side)
        assert trace[f"{block}.fused"].shape == hidden[i].shape == trace[f"{block}.input"].shape
        assert trace[f"{block}.projected"].shape == hidden[i].shape
    assert trace["stages.0.out"].shape == hidden[0].shape and trace["stages.1.out"].shape == hidden[1].shape
    assert trace.output.last_hidden_state.shape == (1, 320, 8, 8)


@pytest.mark.parametrize("name, count", [("mobilevit-xxs", 1_272_024), ("mobilevit-s", 5_578_632)])
def test_preset_parameter_counts(name, count):
    ours = sum(p.numel() for p in MobileViT(PRESETS[name]).parameters())
    assert ours == count


def test_preset_counts_equal_transformers_for_the_same_config():
    reference = MobileViTForImageClassification(hf_config(num_labels=1000))
    assert sum(p.numel() for p in reference.parameters()) == 1_272_024


@settings(max_examples=60, deadline=None)
@given(
    b=st.integers(1, 2), d=st.integers(1, 5), nh=st.integers(1, 5), nw=st.integers(1, 5),
    ph=st.integers(1, 4), pw=st.integers(1, 4),
)
def test_fold_inverts_unfold(b, d, nh, nw, ph, pw):
    x = torch.randn(b, d, nh * ph, nw * pw)
    patches = unfold(x, ph, pw)
    assert patches.shape == (b * ph * pw, nh * nw, d)
    assert torch.equal(fold(patches, ph, pw, nh * ph, nw * pw), x)


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 2), nh=st.integers(1, 4), nw=st.integers(1, 4), ph=st.integers(1, 3), pw=st.integers(1, 3))
def test_unfold_layout(b, nh, nw, ph, pw):
    """Pixel (r, c) lands in sequence offset p = (r % ph)·pw + c % pw at patch n = (r // ph)·nw + c // pw."""
    h, w = nh * ph, nw * pw
    x = torch.arange(b * 2 * h * w, dtype=torch.float32).reshape(b, 2, h, w)
    patches = unfold(x, ph, pw)
    for i in range(b):
        for r in range(h):
            for c in range(w):
                p, n = (r % ph) * pw + c % pw, (r // ph) * nw + c // pw
                assert torch.equal(patches[i * ph * pw + p, n], x[i, :, r, c])


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 11), w=st.integers(1, 11), ph=st.integers(1, 4), pw=st.integers(1, 4))
def test_block_unfold_and_fold_match_transformers(h, w, ph, pw):
    """Including the resize for maps that are not multiples of the patch, and ph != pw."""
    reference = MobileViTLayer(hf_config(num_attention_heads=2), in_channels=4, out_channels=4, stride=1,
                               hidden_size=4, num_stages=1)
    reference.patch_height, reference.patch_width = ph, pw
    block = MobileViTBlock(4, 4, 1, MobileViTConfig(heads=2))
    x = torch.randn(2, 3, h, w)
    expected, info = reference.unfolding(x)
    patches = block.unfold(x, (ph, pw))
    assert torch.equal(patches, expected)
    y = torch.randn_like(patches)
    assert torch.equal(block.fold(y, (ph, pw), (h, w)), reference.folding(y, info))


def test_tracing_leaves_no_hooks_and_does_not_change_outputs(checkpoints):
    ours = checkpoints["classifier"][1]
    x = pixels(64, 64)
    with torch.no_grad():
        before = ours(x, output_attentions=False)
    trace = vitviz.trace(ours, x)
    assert len(trace.records) == len(vitviz.tap_names(ours))
    with pytest.raises(RuntimeError):
        vitviz.trace(ours, torch.rand(1, 5, 64, 64))  # fails inside forward: the recording must still end
    assert recording_ended(ours)
    with torch.no_grad():
        after = ours(x, output_attentions=False)
    assert torch.equal(before.last_hidden_state, after.last_hidden_state) and torch.equal(before.logits, after.logits)
    torch.testing.assert_close(trace.output.logits, before.logits, rtol=RTOL, atol=ATOL)


def test_tap_names_are_the_documented_ones():
    names = set(vitviz.tap_names(MobileViT(PRESETS["mobilevit-xxs"])))
    block = {"input", "local", "unfolded", "global_", "folded", "projected", "fused"}
    per_layer = {"attn.q", "attn.k", "attn.v", "attn.probs", "out"}
    expected = {"stem_out", "stages.0.out", "stages.1.out", "features"}
    for i, depth in zip(MOBILEVIT_STAGES, DEPTHS):
        expected |= {f"stages.{i}.block.{t}" for t in block}
        expected |= {f"stages.{i}.block.layers.{k}.{t}" for k in range(depth) for t in per_layer}
    assert names == expected


def test_config_from_hf():
    cfg = hf_config(num_labels=3).to_dict()
    assert config_from_hf(cfg).labels == ()  # no "Classification" architecture: a backbone
    cfg["architectures"] = ["MobileViTForImageClassification"]
    ours = config_from_hf(cfg)
    assert ours.labels == ("LABEL_0", "LABEL_1", "LABEL_2")
    assert (ours.neck_sizes, ours.hidden_sizes, ours.expand_ratio) == ((16, 16, 24, 48, 64, 80, 320), (64, 80, 96), 2.0)
    with pytest.raises(ValueError, match="output_stride"):
        config_from_hf({**cfg, "output_stride": 16})
    with pytest.raises(ValueError, match="hidden_act"):
        config_from_hf({**cfg, "hidden_act": "gelu"})


def test_loading_is_strict(checkpoints, tmp_path):
    """A checkpoint without one BatchNorm's running variance does not load silently."""
    from safetensors.torch import load_file, save_file

    reference = checkpoints["backbone"][0]
    reference.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    key = next(k for k in state if k.endswith("running_var"))
    save_file({k: v for k, v in state.items() if k != key}, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(vitviz.ModelLoadError, match="running_var"):
        vitviz.load_model(tmp_path, device="cpu")


# ---- The page's run (vitviz.mobilevit_blocks): every number the MobileViT page quotes -----------------------------

@pytest.fixture(scope="module")
def xxs_preset():
    return vitviz.load_model("mobilevit-xxs", device="cpu")


def page_run(model, size: tuple[int, int], patch: tuple[int, int], seed: int = 5):
    from vitviz import mobilevit_blocks as mb

    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed))
    return x, mb.run_blocks(model, mb.trunk(model, x), patch)


@pytest.mark.parametrize("size", [(256, 256), (100, 76), (72, 200), (97, 33)])
def test_run_stage_sizes_and_input_numbers(xxs_preset, size):
    """Stage sizes: every stride-2 conv rounds up, so stage i's map is ⌈H/2^(i+1)⌉ × ⌈W/2^(i+1)⌉ with the config's
    token width d; the input's numbers are the preset's."""
    _x, run = page_run(xxs_preset, size, (2, 3))
    h, w = size
    expected = [(i, math.ceil(h / 2 ** (i + 1)), math.ceil(w / 2 ** (i + 1)), d, 2 ** (i + 1))
                for i, d in zip(MOBILEVIT_STAGES, (64, 80, 96))]
    assert [(s.stage, s.height, s.width, s.dim, s.stride) for s in run.stage_sizes] == expected
    assert run.input_shape == (1, 3, h, w) and run.input_size == size
    assert run.trained_size == 256 and run.at_trained_size == (size == (256, 256))
    assert run.patch == (2, 3) and run.native_patch == 2 and not run.at_native_patch
    assert not run.trained  # a preset: deterministic random weights


def test_a_run_is_read_only_and_counts_its_bytes(xxs_preset):
    """The page keeps runs in a store shared by every session (ui.store.RunStore): no array of a run can be written,
    and `nbytes` (the store's budget) is every array it holds. Reading it still works: attention rows and predictions
    from the read-only q, k and logits."""
    _x, run = page_run(xxs_preset, (128, 128), (2, 3))
    arrays = [run.logits]
    for block in run.blocks.values():
        arrays += [*block.taps.values(), block.conv3, block.resized, *block.q, *block.k]
    assert all(isinstance(a, np.ndarray) and not a.flags.writeable for a in arrays)
    assert run.nbytes == sum(a.nbytes for a in arrays) > 1_000_000
    with pytest.raises(ValueError):
        run.blocks[2].q[0][0, 0, 0, 0] = 1.0
    rows = run.blocks[2].attention_rows(0, 1, 2)
    np.testing.assert_allclose(rows.sum(-1), 1, atol=1e-5)
    assert len(run.predictions) == 5


def test_run_at_the_checkpoints_own_setting():
    _x, run = page_run(MobileViT(PRESETS["mobilevit-xxs"]).eval(), (256, 256), (2, 2))
    assert [(s.height, s.width, s.dim) for s in run.stage_sizes] == [(32, 32, 64), (16, 16, 80), (8, 8, 96)]
    assert run.at_trained_size and run.at_native_patch


def test_run_predictions_are_the_models_top5(xxs_preset):
    x, run = page_run(xxs_preset, (128, 96), (3, 3))
    with torch.inference_mode():
        probs = xxs_preset(x, output_attentions=False, patch_size=(3, 3)).logits[0].softmax(-1)
    top = probs.topk(5)
    labels, values = zip(*run.predictions)
    assert list(labels) == [xxs_preset.config.labels[i] for i in top.indices.tolist()]
    torch.testing.assert_close(torch.tensor(values), top.values, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("size, patch", [((256, 256), (2, 2)), ((100, 76), (3, 5)), ((64, 64), (8, 8))])
def test_block_numbers_against_the_traced_model(xxs_preset, size, patch):
    """Each block's quoted numbers: its prefix, stride, head width, the concatenation's shape (what `fuse` reads),
    and the selected pixel's place in X_U with its numbers before and after unfold (from an independent trace)."""
    x, run = page_run(xxs_preset, size, patch)
    ph, pw = patch
    ref = vitviz.trace(xxs_preset, x, include=["stages.*.block.local", "stages.*.block.unfolded",
                                              "stages.*.block.input"], patch_size=patch)
    for i, depth in zip(MOBILEVIT_STAGES, DEPTHS):
        block, module = run.blocks[i], xxs_preset.stages[i].block
        local = ref[f"stages.{i}.block.local"]
        h, w = local.shape[-2:]
        assert block.prefix == f"stages.{i}.block" and block.stride == 2 ** (i + 1)
        assert block.depth == depth and block.head_dim == block.dim // 4
        assert module.layers[0].attn.scale == block.head_dim ** -0.5
        assert block.concatenated == (1, module.fuse.conv.in_channels, h, w)
        assert block.concatenated[1] == 2 * ref[f"stages.{i}.block.input"].shape[1]
        hr, wr = math.ceil(h / ph) * ph, math.ceil(w / pw) * pw
        resized = torch.nn.functional.interpolate(local, size=(hr, wr), mode="bilinear", align_corners=False)
        unfolded = ref[f"stages.{i}.block.unfolded"]
        for r, c in {(0, 0), (hr - 1, wr - 1), (hr // 2, wr // 3), (min(1, hr - 1), wr - 1)}:
            s = block.select(r, c)
            p, n = (r % ph) * pw + c % pw, (r // ph) * (wr // pw) + c // pw
            assert (s.r, s.c, s.p, s.n) == (r, c, p, n)
            assert (s.offset_row, s.offset_col, s.patch_row, s.patch_col) == (r % ph, c % pw, r // ph, c // pw)
            assert s.before == tuple(resized[0, :3, r, c].tolist())
            assert s.after == tuple(unfolded[p, n, :3].tolist()) == s.before  # unfold only moves numbers


def test_attention_numbers_are_the_traced_probabilities(xxs_preset):
    """Each head's smallest and largest weight and 1/N, against the model's own probabilities."""
    x, run = page_run(xxs_preset, (100, 76), (3, 5))
    ref = vitviz.trace(xxs_preset, x, include=["stages.*.block.layers.*.attn.probs"], patch_size=(3, 5))
    for i, depth in zip(MOBILEVIT_STAGES, DEPTHS):
        block = run.blocks[i]
        for layer in range(depth):
            probs = ref[f"stages.{i}.block.layers.{layer}.attn.probs"]  # (P, heads, N, N)
            p, n = block.unfolding.p - 1, block.unfolding.n // 2
            attention = block.attention(layer, p, n)
            assert attention.layer == layer and attention.query == (p, n)
            torch.testing.assert_close(torch.tensor(attention.lows), probs[p, :, n].min(-1).values, rtol=0, atol=1e-6)
            torch.testing.assert_close(torch.tensor(attention.highs), probs[p, :, n].max(-1).values, rtol=0, atol=1e-6)
            assert attention.uniform == 1 / probs.shape[-1]


def _gradient_count(block, x: torch.Tensor, patch, pixel) -> int:
    """Input pixels with a nonzero gradient of output pixel (r, c) of the real block (random weights)."""
    x = x.clone().requires_grad_(True)
    out, _ = block(x, patch)
    (grad,) = torch.autograd.grad(out[0, :, pixel[0], pixel[1]].sum(), x)
    return int((grad[0].abs().sum(0) > 0).sum())


@pytest.mark.parametrize("h, w, patch, pixel, everyone, complete", [
    (16, 16, (2, 2), (8, 8), True, True),
    (20, 20, (4, 4), (10, 10), False, True),  # only the border misses pixels
    (16, 16, (8, 8), (0, 0), False, False),
    (13, 13, (3, 5), (14, 14), True, True),  # resized to 15 × 15: the pixel past the edge is the edge's
])
def test_receptive_field_numbers_against_the_blocks_gradient(h, w, patch, pixel, everyone, complete):
    from vitviz import mobilevit_blocks as mb

    block = MobileViT(PRESETS["mobilevit-xxs"]).eval().stages[2].block
    field = mb.receptive_field(mb.Unfolding(h, w, *patch), pixel)
    at = (min(pixel[0], h - 1), min(pixel[1], w - 1))
    assert field.pixel == at
    x = torch.randn(1, 48, h, w, generator=torch.Generator().manual_seed(3))
    seen = _gradient_count(block, x, patch, at)
    assert field.seen == seen and field.total == h * w and field.missing == h * w - seen
    assert field.share == seen / (h * w)
    assert field.everyone == everyone and field.complete == complete == (seen == h * w)
    r, c = at
    assert field.conv_seen == (min(h, r + 3) - max(0, r - 2)) * (min(w, c + 3) - max(0, c - 2))  # 5 × 5, clipped


def test_attention_cost_numbers():
    """32 × 32 map, 2 × 2 patches, d = 64, L = 2 (XXS stage 2 at 256 px): P = 4, N = 256, H'W' = 1024."""
    from vitviz import mobilevit_blocks as mb

    u = mb.Unfolding(32, 32, 2, 2)
    cost = mb.attention_cost(u, 64, layers=2)
    assert u.pixels == 1024
    assert (cost.mobilevit, cost.vit_patches, cost.vit_pixels) == (33_554_432, 8_388_608, 134_217_728)
    assert (cost.mobilevit_layers, cost.vit_patches_layers, cost.vit_pixels_layers) == (67_108_864, 16_777_216,
                                                                                          268_435_456)
    assert cost.pixels_ratio == 4.0
    u = mb.Unfolding(13, 13, 3, 5)  # resized to 15 × 15: P = 15, N = 15
    cost = mb.attention_cost(u, 80, layers=4)
    assert (cost.mobilevit, cost.vit_pixels) == (2 * 15 * 15**2 * 80, 2 * 225**2 * 80)
    assert cost.pixels_ratio == 15 and cost.mobilevit_layers == 4 * cost.mobilevit
