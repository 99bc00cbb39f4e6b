"""vitviz.trace: records the real intermediates, only where asked, and leaves the model untouched."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import vitviz
from vitviz.models import common
from vitviz.models.vit import ViT, ViTConfig

from .helpers import recording_ended


@pytest.fixture(scope="module")
def model():
    return common.init_random(ViT(ViTConfig(image_size=32, patch_size=8, dim=24, depth=3, heads=3, mlp_dim=48)), "t").eval()


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_records_every_vit_stage_with_real_values(model):
    x = torch.randn(1, 3, 40, 24)
    t = vitviz.trace(model, x)
    assert t["patches"].shape == (1, 5, 3, 8, 8, 3)
    assert t["flat"].shape == (1, 15, 192)
    assert t["embeddings"].shape == (1, 15, 24)
    assert t["tokens"].shape == t["position"].shape == (1, 16, 24)
    torch.testing.assert_close(t["tokens"][:, 0], model.cls_token[:, 0])
    torch.testing.assert_close(t["position"], t["tokens"] + model.position_embeddings((5, 3)))
    torch.testing.assert_close(t["embeddings"], model.patch_embed(x).flatten(2).transpose(1, 2), rtol=1e-4, atol=1e-5)
    for i in range(3):
        q, k = t[f"blocks.{i}.attn.q"], t[f"blocks.{i}.attn.k"]
        assert q.shape == (1, 3, 16, 8)
        torch.testing.assert_close(t[f"blocks.{i}.attn.probs"], (q @ k.transpose(-2, -1) * 8**-0.5).softmax(-1))


def test_traced_forward_returns_what_untraced_returns(model):
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(vitviz.trace(model, x).output.last_hidden_state, model(x, output_attentions=False).last_hidden_state)
    full, plain = vitviz.trace(model, x, output_attentions=True).output, model(x)
    assert torch.equal(full.last_hidden_state, plain.last_hidden_state)
    assert all(torch.equal(a, b) for a, b in zip(full.attentions, plain.attentions))


def test_a_trace_changes_nothing_on_the_shared_model(model):
    """Recording is the tracing thread's state: no hook is added to the model, even during the forward (where
    another session's forward of the same model would meet it)."""
    during = []
    handle = model.patches.register_forward_hook(lambda *a: during.append(hook_count(model)))
    try:
        vitviz.trace(model, torch.ones(1, 3, 32, 32))
    finally:
        handle.remove()
    assert during == [1]  # the test's own hook, nothing else


def test_recording_ends_even_when_the_forward_fails(model):
    before = model(torch.ones(1, 3, 32, 32), output_attentions=False).last_hidden_state
    vitviz.trace(model, torch.ones(1, 3, 32, 32))
    with pytest.raises(ValueError):
        vitviz.trace(model, torch.ones(1, 3, 4, 4))
    assert recording_ended(model)
    assert torch.equal(model(torch.ones(1, 3, 32, 32), output_attentions=False).last_hidden_state, before)


def test_a_trace_inside_a_trace_gives_each_its_own_records(model):
    """A nested trace (a stage method traced while a forward is being traced) records its own taps, and the outer
    trace goes on recording after it."""
    inner = {}

    def nested(*_):
        if not inner:  # the nested trace meets this hook too
            inner["t"] = None
            inner["t"] = vitviz.trace(model, torch.zeros(1, 3, 32, 32), include="position", method="embed")

    handle = model.patches.register_forward_hook(nested)
    try:
        outer = vitviz.trace(model, torch.ones(1, 3, 32, 32), include=["patches", "blocks.2.out"])
    finally:
        handle.remove()
    assert list(inner["t"].records) == ["position"] and sorted(outer.records) == ["blocks.2.out", "patches"]
    alone = vitviz.trace(model, torch.ones(1, 3, 32, 32), include=["patches", "blocks.2.out"])
    assert torch.equal(outer["blocks.2.out"], alone["blocks.2.out"])


def test_only_requested_layers_materialise_attention(model, monkeypatch):
    """Tracing one layer runs fused attention in the others: no layers × heads × N × N allocation."""
    fused = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(common.F, "scaled_dot_product_attention", lambda *a, **k: fused.append(1) or real(*a, **k))
    t = vitviz.trace(model, torch.randn(1, 3, 32, 32), include="blocks.1.*")
    assert [n for n in t.records if n.endswith("probs")] == ["blocks.1.attn.probs"]
    assert len(fused) == 2


def test_unknown_pattern_is_an_error(model):
    with pytest.raises(KeyError, match="no tap matches"):
        vitviz.trace(model, torch.randn(1, 3, 32, 32), include="blocks.9.attn.probs")
    assert recording_ended(model)


def test_tap_names_lists_every_tap_once(model):
    names = vitviz.tap_names(model)
    per_layer = {f"blocks.{i}.{t}" for i in range(3) for t in ("attn_input", "attn.q", "attn.k", "attn.v", "attn.probs", "out")}
    assert sorted(names) == sorted({"patches", "flat", "embeddings", "tokens", "e_pos", "position", "sequence"} | per_layer)


def test_method_traces_one_stage_without_the_encoder(model, monkeypatch):
    calls = []
    monkeypatch.setattr(type(model.blocks[0]), "forward", lambda *a, **k: calls.append(1))
    x = torch.randn(1, 3, 32, 40)
    t = vitviz.trace(model, x, include=["patches", "position"], method="embed")
    assert not calls and t["patches"].shape == (1, 4, 5, 8, 8, 3)
    assert torch.equal(t.output, t["position"])


def test_a_concurrent_session_neither_leaks_into_nor_reads_a_trace(model):
    """App sessions share one model in different threads: a forward in another thread during a trace must not
    be recorded, and must take its own (fused) path."""
    import threading

    mine, theirs = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    seen = {}

    def other_session(*_):
        if not seen:  # the hook also fires inside the other session's own forward: start it only once
            seen["started"] = True
            worker = threading.Thread(target=lambda: seen.setdefault("out", model(theirs, output_attentions=False)))
            worker.start()
            worker.join()

    handle = model.patches.register_forward_hook(other_session)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two OpenMP teams spinning on a 2-core machine take minutes instead of milliseconds
    try:
        t = vitviz.trace(model, mine)
    finally:
        handle.remove()
        torch.set_num_threads(threads)
    expected = vitviz.trace(model, mine)
    assert torch.equal(t["position"], expected["position"]) and torch.equal(t["blocks.2.attn.probs"], expected["blocks.2.attn.probs"])
    torch.testing.assert_close(seen["out"].last_hidden_state, model(theirs, output_attentions=False).last_hidden_state)
