"""Trained weights through the real download code (huggingface_hub against tests/fakehub.py on loopback): every
layout a hub repo has, the order the files are looked for, snapshots other tools downloaded, faults of the network,
and the pickle that is refused."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from huggingface_hub import file_download, snapshot_download
from huggingface_hub.utils import _http
from safetensors.torch import load_file

import vitviz
from vitviz import hub
from vitviz.download import write_portable

from .fakehub import FakeHub, Fault, Repo, Revision, unreachable_url
from .hubrepos import as_sharded_bin, layouts, saved_files, tensors, tiny_vit

ROOT = Path(__file__).resolve().parent.parent
X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    marker = tmp_path_factory.mktemp("pwned") / "PWNED"
    return layouts(marker), marker


@pytest.fixture
def fake_hub(repos):
    with FakeHub({repo: spec for repo, (spec, _) in repos[0].items()}) as server:
        yield server


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Point the process at a hub URL with an empty cache, online (huggingface_hub read HF_HUB_OFFLINE=1 from
    conftest at import: its constant is switched off too)."""
    from huggingface_hub import constants

    def point_at(url: str | None, offline: bool = False) -> None:
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.setenv("VITVIZ_CACHE", str(tmp_path / "vitviz"))
        monkeypatch.delenv("VITVIZ_WEIGHTS_DIR", raising=False)
        if url:
            monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)

    monkeypatch.setattr(hub, "_downloads", {})  # no download of an earlier test is remembered
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    # The client's retry waits (1, 2, 4, 8, 8 s; 1 s before a resume) are not what these tests are about.
    no_waits = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_") and k != "sleep"},
                                     sleep=lambda seconds: None)
    monkeypatch.setattr(_http, "time", no_waits)
    monkeypatch.setattr(file_download, "time", no_waits)
    return point_at


def resolve_gets(server: FakeHub) -> list[str]:
    return [path for method, path, _ in server.requests if method == "GET" and "/resolve/" in path]


LAYOUTS = {
    "facebook/dino-vits16": "model.safetensors",
    "facebook/dino-vits8": "sharded safetensors",
    "facebook/deit-tiny-patch16-224": "safetensors in the conversion pull request refs/pr/3",
    "google/vit-base-patch16-224": "pytorch_model.bin (converted to safetensors)",
}


@pytest.mark.parametrize("repo", LAYOUTS)
def test_every_layout_loads_exactly_what_transformers_computes(repo, repos, fake_hub, env):
    env(fake_hub.url)
    reference = repos[0][repo][1]
    model = vitviz.load_model(repo, device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(model(X).logits, reference(X).logits, rtol=1e-4, atol=1e-4)
    local = hub.find_local(repo)
    assert local.layout == LAYOUTS[repo] and local.origin == "cache"
    assert all(p.suffix == ".safetensors" for p in local.weights)
    assert model.preprocessing.mean == (0.5, 0.5, 0.5)  # the repo's preprocessor_config.json was read
    if repo == "facebook/deit-tiny-patch16-224":  # the open bot PR, not the closed one or another author's
        pr = fake_hub.repos[repo].pulls[2]
        assert any(f"/resolve/{pr.sha}/model.safetensors" in p for p in resolve_gets(fake_hub))


def test_a_second_load_reads_the_cache_and_asks_the_hub_nothing(repos, fake_hub, env):
    env(fake_hub.url)
    for repo in LAYOUTS:
        vitviz.load_model(repo, device="cpu")
    asked = len(fake_hub.requests)
    env(unreachable_url(), offline=True)
    for repo in LAYOUTS:
        model = vitviz.load_model(repo, device="cpu")
        with torch.no_grad():
            torch.testing.assert_close(model(X).logits, repos[0][repo][1](X).logits, rtol=1e-4, atol=1e-4)
    assert len(fake_hub.requests) == asked


def test_a_pickle_that_runs_code_is_refused_and_never_runs(repos, fake_hub, env, tmp_path):
    env(fake_hub.url)
    marker = repos[1]
    with pytest.raises(vitviz.ModelLoadError, match="pytorch_model.bin was refused: it holds more than tensors"):
        vitviz.load_model("microsoft/swin-tiny-patch4-window7-224", device="cpu")
    assert not marker.exists()
    assert hub.find_local("microsoft/swin-tiny-patch4-window7-224") is None
    # The same file handed to the converter directly.
    crafted = tmp_path / "pytorch_model.bin"
    crafted.write_bytes(fake_hub.repos["microsoft/swin-tiny-patch4-window7-224"].main.files["pytorch_model.bin"])
    with pytest.raises(vitviz.ModelLoadError, match="refused"):
        hub.convert_bin([crafted], tmp_path / "out.safetensors")
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize("repo, message", [
    ("apple/mobilevit-xx-small", "apple/mobilevit-xx-small is gated or private on the hub at http://127.0.0.1"),
    ("apple/mobilevit-small", "apple/mobilevit-small was not found on the hub at http://127.0.0.1"),
])
def test_gated_and_missing_repos_are_one_clear_sentence(repo, message, fake_hub, env):
    env(fake_hub.url)
    with pytest.raises(vitviz.ModelLoadError, match=message):
        vitviz.load_model(repo, device="cpu")


def test_a_server_error_is_a_clear_sentence(fake_hub, env):
    env(fake_hub.url)
    fake_hub.set_status(500)
    with pytest.raises(vitviz.ModelLoadError, match=r"answered with a server error \(500\)"):
        vitviz.load_model("facebook/dino-vits16", device="cpu")


def test_an_unreachable_hub_is_a_clear_sentence(env):
    env(unreachable_url())
    with pytest.raises(vitviz.ModelLoadError, match="cannot be reached"):
        vitviz.load_model("facebook/dino-vits16", device="cpu")


def test_a_connection_dropped_mid_file_resumes_and_no_partial_file_is_loaded(repos, fake_hub, env, monkeypatch):
    """huggingface_hub resumes after the last whole chunk it wrote (10 MiB pieces; smaller here so that the resume
    point falls inside this small file); its partial file has its own name (.incomplete) until complete."""
    from huggingface_hub import constants

    env(fake_hub.url)
    chunk = 8192
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", chunk)
    repo = "facebook/dino-vits16"
    size = len(fake_hub.repos[repo].main.files["model.safetensors"])
    fake_hub.faults[(repo, "model.safetensors")] = Fault(drop_after=size // 2, times=1)
    model = vitviz.load_model(repo, device="cpu")
    ranges = [h.get("Range") for method, path, h in fake_hub.requests
              if method == "GET" and path.endswith("/model.safetensors")]
    assert ranges == [None, f"bytes={size // 2 // chunk * chunk}-"], ranges
    with torch.no_grad():
        torch.testing.assert_close(model(X).logits, repos[0][repo][1](X).logits, rtol=1e-4, atol=1e-4)


def test_a_connection_dropped_for_good_leaves_no_checkpoint_behind(fake_hub, env):
    env(fake_hub.url)
    repo = "facebook/dino-vits16"
    size = len(fake_hub.repos[repo].main.files["model.safetensors"])
    fake_hub.faults[(repo, "model.safetensors")] = Fault(drop_after=size // 2, times=1000)
    with pytest.raises(vitviz.ModelLoadError, match="facebook/dino-vits16"):
        vitviz.load_model(repo, device="cpu")
    assert hub.find_local(repo) is None  # the half file is never taken for a checkpoint
    snapshots = list((Path(hub.settings().cache_dir)).rglob("model.safetensors"))
    assert not snapshots, snapshots


def test_a_stalled_download_ends_in_a_clear_sentence(fake_hub, env):
    env(fake_hub.url)
    fake_hub.faults[("facebook/dino-vits16", "model.safetensors")] = Fault(stall_after=1000, times=100)
    with pytest.raises(vitviz.ModelLoadError, match=r"stalled \(no data for 1 s\)"):
        vitviz.load_model("facebook/dino-vits16", device="cpu")
    assert hub.find_local("facebook/dino-vits16") is None


def test_a_background_download_reports_progress_that_advances(fake_hub, env):
    env(fake_hub.url)
    repo = "facebook/dino-vits16"
    size = len(fake_hub.repos[repo].main.files["model.safetensors"])
    fake_hub.faults[(repo, "model.safetensors")] = Fault(bytes_per_s=size / 1.5, times=100)
    download = hub.download_in_background(repo)
    assert hub.download_in_background(repo) is download  # one download per process, whoever asks
    seen = []
    deadline = time.monotonic() + 60
    while download.state not in ("done", "failed") and time.monotonic() < deadline:
        seen.append((download.state, download.done_bytes, download.total_bytes))
        time.sleep(0.05)
    assert download.state == "done", download.error
    totals = {total for state, _, total in seen if state == "downloading"}
    assert len(totals) == 1 and totals.pop() >= size
    done = [d for state, d, _ in seen if state == "downloading"]
    assert done == sorted(done) and any(0 < d < size for d in done)
    assert download.fraction == 1.0 and download.mb_per_s > 0
    assert len([p for p in resolve_gets(fake_hub) if p.endswith("/model.safetensors")]) == 1


def test_a_failed_background_download_is_remembered(env):
    env(unreachable_url())
    download = hub.download_in_background("facebook/dino-vits16")
    deadline = time.monotonic() + 30
    while download.state not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert download.state == "failed" and "cannot be reached" in download.error
    assert hub.download_in_background("facebook/dino-vits16") is download  # not retried at once


def test_the_weights_dir_alone_serves_trained_weights(repos, fake_hub, env, tmp_path, monkeypatch):
    env(fake_hub.url)
    for repo in LAYOUTS:
        vitviz.load_model(repo, device="cpu")
        write_portable(hub.find_local(repo), tmp_path / "usb" / vitviz.weights.PRESET_OF[repo])
    assert sorted(p.name for p in (tmp_path / "usb" / "dino-vits8").iterdir()) == [
        "config.json", "model.safetensors", "preprocessor_config.json"]  # shards merged into one file
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("VITVIZ_CACHE", str(tmp_path / "empty-vitviz"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VITVIZ_WEIGHTS_DIR", str(tmp_path / "usb"))
    for repo in LAYOUTS:
        local = hub.find_local(repo, vitviz.weights.PRESET_OF[repo])
        assert local.origin == "weights dir"
        model = vitviz.load_model(repo, device="cpu")
        with torch.no_grad():
            torch.testing.assert_close(model(X).logits, repos[0][repo][1](X).logits, rtol=1e-4, atol=1e-4)
    assert vitviz.load_model("deit-tiny").source == "deit-tiny"  # a preset by name stays random


def run_download(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vitviz.download", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


def test_download_command_fetches_verifies_and_is_idempotent(fake_hub, tmp_path):
    import os

    env = {**os.environ, "HF_ENDPOINT": fake_hub.url, "HF_HUB_CACHE": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "VITVIZ_CACHE": str(tmp_path / "vitviz")}
    names = ["dino-vits16", "dino-vits8", "deit-tiny", "vit-base-16"]
    first = run_download(*names, "--to", str(tmp_path / "usb"), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    rows = {line.split()[0]: line.split() for line in first.stdout.splitlines() if line.split()[:1] and line.split()[0] in names}
    assert {name: row[4] for name, row in rows.items()} == dict.fromkeys(names, "yes")
    shards = [n for n in fake_hub.repos["facebook/dino-vits8"].main.files if n.endswith(".safetensors")]
    assert len(shards) > 1 and rows["dino-vits8"][2] == str(2 + len(shards))  # with config, preprocessor config
    assert (tmp_path / "usb" / "vit-base-16" / "model.safetensors").is_file()
    asked = len(fake_hub.requests)
    again = run_download(*names, env={**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": unreachable_url()})
    assert again.returncode == 0 and again.stdout.count(" yes ") == 4, again.stdout
    assert len(fake_hub.requests) == asked
    failing = run_download("mobilevit-s", env=env)
    assert failing.returncode == 1 and "was not found on the hub" in failing.stdout


def test_processes_starting_at_once_download_each_file_once_and_read_only_whole_files(repos, fake_hub, tmp_path):
    """Several server processes share one cache (`serve`, compose): two asking for the same checkpoints at the same
    moment get them through one download per file (huggingface_hub locks each blob in the cache while it writes it;
    the other waits), and both load exactly the model. Throttled so that the two downloads overlap."""
    import os

    env = {**os.environ, "HF_ENDPOINT": fake_hub.url, "HF_HUB_CACHE": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "VITVIZ_CACHE": str(tmp_path / "vitviz")}
    weights = {"facebook/dino-vits16": "model.safetensors", "google/vit-base-patch16-224": "pytorch_model.bin"}
    for repo, name in weights.items():
        size = len(fake_hub.repos[repo].main.files[name])
        fake_hub.faults[(repo, name)] = Fault(bytes_per_s=size / 3, times=1000)  # ~3 s a file
    procs = [subprocess.Popen([sys.executable, "-m", "vitviz.download", "dino-vits16", "vit-base-16"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) for _ in range(2)]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    for out in outputs:
        assert out.count(" yes ") == 2, out  # loaded strictly, one forward pass, every output finite
    bodies = [path.rsplit("/", 1)[1] for method, path, headers in fake_hub.requests
              if method == "GET" and "/resolve/" in path and "Range" not in headers]
    for name in weights.values():
        assert bodies.count(name) == 1, bodies
    env["HF_HUB_OFFLINE"] = "1"
    check = subprocess.run([sys.executable, "-c", "import sys, torch, vitviz\n"
                            "m = vitviz.load_model(sys.argv[1], device='cpu')\n"
                            "torch.manual_seed(0); x = torch.randn(2, 3, 32, 32)\n"
                            "torch.save(m(x).logits, sys.argv[2])", "google/vit-base-patch16-224",
                            str(tmp_path / "out.pt")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "out.pt"), repos[0]["google/vit-base-patch16-224"][1](X).logits,
                                   rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------------ the layout chooser

S, SI, B, BI = "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"


@pytest.mark.parametrize("files, pull_request, expected", [
    ({"config.json", S, SI, B, BI}, None, ("model.safetensors", S, False)),
    ({"config.json", SI, "model-00001-of-00002.safetensors", B, BI}, None, ("sharded safetensors", SI, False)),
    ({"config.json", B, BI}, None, ("pytorch_model.bin (converted to safetensors)", B, True)),
    ({"config.json", BI, "pytorch_model-00001-of-00002.bin"}, None,
     ("sharded pytorch_model.bin (converted to safetensors)", BI, True)),
    ({"config.json", "tf_model.h5", "flax_model.msgpack"}, None, None),
    ({"config.json": 10, S: 20, B: 20}, "refs/pr/3", ("safetensors in the conversion pull request refs/pr/3", S, False)),
    ({"config.json", SI, B}, "refs/pr/7", ("safetensors in the conversion pull request refs/pr/7 (sharded)", SI, False)),
    ({"config.json", B, BI}, "refs/pr/3", None),  # in the bot's pull request only its safetensors count
])
def test_choose_layout_takes_transformers_order(files, pull_request, expected):
    layout = hub.choose_layout(files, pull_request)
    if expected is None:
        assert layout is None
    else:
        assert (layout.sentence, layout.weights, layout.converted) == expected
        assert layout.sharded == expected[1].endswith(".index.json")


# ------------------------------------------------------------------------------------------------ other tools' snapshots

BIN_ONLY = {"google/vit-base-patch16-224": "pytorch_model.bin (converted to safetensors)",
            "facebook/dinov2-small": "sharded pytorch_model.bin (converted to safetensors)"}


@pytest.fixture(scope="module")
def sharded_bin():
    model = tiny_vit(6)
    files = as_sharded_bin(saved_files(model))
    assert sum(name.endswith(".bin") for name in files) == 3
    return Repo(Revision(files)), model


@pytest.fixture
def bin_hub(repos, sharded_bin, fake_hub):
    """The test hub with a sharded pytorch_model.bin repo too; the reference model of each repo id."""
    fake_hub.repos["facebook/dinov2-small"] = sharded_bin[0]
    return fake_hub, {**{repo: model for repo, (_, model) in repos[0].items()}, "facebook/dinov2-small": sharded_bin[1]}


def another_tool_downloads(server: FakeHub, repo: str) -> Path:
    """What `huggingface-cli download` does: every file of main into the HF cache (blobs/, snapshots/<rev>/ and
    refs/main), and nothing into vitviz's own folder."""
    return Path(snapshot_download(repo, cache_dir=hub.settings().cache_dir, endpoint=server.url))


@pytest.mark.parametrize("repo", BIN_ONLY)
def test_a_bin_only_snapshot_another_tool_downloaded_loads_offline(repo, bin_hub, env, tmp_path):
    server, references = bin_hub
    env(server.url)
    folder = another_tool_downloads(server, repo)
    assert (tmp_path / "hf" / f"models--{repo.replace('/', '--')}" / "refs" / "main").read_text() == folder.name
    assert not any(p.suffix == ".safetensors" for p in folder.iterdir()) and not (tmp_path / "vitviz").exists()
    asked = len(server.requests)
    # Online the pickle is left to the hub, whose conversion pull request comes first: the lookup converts nothing.
    assert hub.find_local(repo) is None and not (tmp_path / "vitviz").exists()
    env(unreachable_url(), offline=True)
    model = vitviz.load_model(repo, device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(model(X).logits, references[repo](X).logits, rtol=1e-4, atol=1e-4)
    local = hub.find_local(repo)
    assert (local.layout, local.origin, local.folder) == (BIN_ONLY[repo], "cache", folder)
    assert local.weights == (tmp_path / "vitviz" / "converted" / repo.replace("/", "--") / folder.name / S,)
    # The same tensors, bit for bit, as the safetensors file the same model saves, loaded through a folder.
    expected = tensors(saved_files(references[repo]))
    state = vitviz.weights.read_state_dict(local)
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in expected)
    (tmp_path / "st").mkdir()
    for name, content in saved_files(references[repo]).items():
        (tmp_path / "st" / name).write_bytes(content)
    from_safetensors = vitviz.load_model(tmp_path / "st", device="cpu").state_dict()
    assert all(torch.equal(v, from_safetensors[k]) for k, v in model.state_dict().items())
    assert len(server.requests) == asked


@pytest.mark.parametrize("repo", BIN_ONLY)
def test_the_offline_conversion_is_the_one_a_download_makes(repo, bin_hub, env, tmp_path):
    """Same converted file, same record: a download by vitviz, then its own folder removed and the snapshot found
    through refs/main (which another tool wrote) while offline."""
    server, _ = bin_hub
    env(server.url)
    fetched = hub.fetch(repo)
    record_file = tmp_path / "vitviz" / "resolved" / f"{repo.replace('/', '--')}.json"
    record, converted = record_file.read_text(), load_file(fetched.weights[0])
    assert f'"converted": "{fetched.weights[0]}"' in record
    shutil.rmtree(tmp_path / "vitviz")
    assert another_tool_downloads(server, repo) == fetched.folder
    env(unreachable_url(), offline=True)
    local = hub.find_local(repo)
    assert (local.folder, local.weights, local.layout) == (fetched.folder, fetched.weights, BIN_ONLY[repo])
    assert record_file.read_text() == record
    again = load_file(local.weights[0])
    assert again.keys() == converted.keys() and all(torch.equal(again[k], converted[k]) for k in converted)
    written = local.weights[0].stat().st_mtime_ns
    assert hub.find_local(repo).weights == local.weights and local.weights[0].stat().st_mtime_ns == written


def test_a_pickle_that_runs_code_is_refused_offline_too(repos, fake_hub, env, tmp_path):
    repo = "microsoft/swin-tiny-patch4-window7-224"
    env(fake_hub.url)
    another_tool_downloads(fake_hub, repo)
    env(unreachable_url(), offline=True)
    sentence = ("pytorch_model.bin was refused: it holds more than tensors (a pickle that could run code) or is "
                "damaged, so it was not loaded.")
    with pytest.raises(vitviz.ModelLoadError) as err:
        vitviz.load_model(repo, device="cpu")
    assert str(err.value) == sentence
    with pytest.raises(vitviz.ModelLoadError) as err:
        hub.find_local(repo)
    assert str(err.value) == sentence
    assert not repos[1].exists() and not (tmp_path / "vitviz").exists()  # nothing ran, nothing converted or recorded


def test_an_unreadable_weights_folder_gets_a_sentence(tmp_path, monkeypatch):
    """A volume the server's user may not read (root-owned, mounted into the non-root container): one sentence
    naming the folder and the fix, not a PermissionError. Root reads any file, so the refusal is simulated."""
    (tmp_path / "deit-tiny").mkdir()
    (tmp_path / "deit-tiny" / "config.json").write_text("{}")
    monkeypatch.setenv("VITVIZ_WEIGHTS_DIR", str(tmp_path))

    def refuse(folder):
        raise PermissionError(13, "Permission denied", str(folder))

    monkeypatch.setattr(hub, "_files_in", refuse)
    with pytest.raises(hub.ModelLoadError) as err:
        hub.find_local("facebook/deit-tiny-patch16-224", "deit-tiny")
    assert str(err.value) == (f"The weights folder {tmp_path / 'deit-tiny'} cannot be read by this server (permission "
                              "denied): make it readable to every user, e.g. chmod -R a+rX.")
