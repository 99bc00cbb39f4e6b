"""Before class: fetch the trained weights of the supported checkpoints, verify each one, and optionally write a
portable copy for machines without network.

    python3 tasks.py download                  # every supported checkpoint but the large downloads
    python3 tasks.py download deit-tiny swin-tiny
    python3 tasks.py download --all            # the large downloads too
    python3 tasks.py download --to /media/usb/vitviz-weights   # also one folder per preset, for VITVIZ_WEIGHTS_DIR

Files go into the standard Hugging Face cache (HF_HUB_CACHE / HF_HOME), from the hub or the mirror in HF_ENDPOINT.
A checkpoint already on this machine is not fetched again, so a second run, online or offline, only verifies.
Verified means: loaded strictly into vitviz's module, one forward pass on a sample photo, every output finite.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from . import hub
from .images import load_sample
from .preprocess import preprocess
from .weights import HUB_IDS, LARGE_DOWNLOADS, PRESET_OF, ModelLoadError, load_model, read_state_dict, trained_checkpoint


def verify(repo_id: str) -> str:
    """Load the local checkpoint strictly and run it once on a sample photo; '' if every output is finite, else
    what is wrong."""
    model = load_model(repo_id, device="cpu", download=False)
    with torch.inference_mode():
        out = model(preprocess(load_sample("cat"), model.preprocessing))
    outputs = {"last_hidden_state": getattr(out, "last_hidden_state", None), "logits": getattr(out, "logits", None)}
    bad = [name for name, t in outputs.items() if t is not None and not torch.isfinite(t).all()]
    return f"non-finite {', '.join(bad)}" if bad else ""


def write_portable(checkpoint: hub.LocalCheckpoint, folder: Path) -> None:
    """config.json, one model.safetensors (shards merged) and preprocessor_config.json in `folder`, each written
    atomically, so an interrupted copy never leaves a file that looks complete."""
    from safetensors.torch import save_file

    for name in ("config.json", "preprocessor_config.json"):
        if (checkpoint.folder / name).is_file():
            hub.write_atomically(folder / name, lambda tmp, name=name: shutil.copyfile(checkpoint.folder / name, tmp))
    if len(checkpoint.weights) == 1:
        hub.write_atomically(folder / "model.safetensors", lambda tmp: shutil.copyfile(checkpoint.weights[0], tmp))
    else:
        hub.write_atomically(folder / "model.safetensors", lambda tmp: save_file(read_state_dict(checkpoint), str(tmp)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tasks.py download", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"presets or hub ids (default: all but {sorted(LARGE_DOWNLOADS) or 'none'})")
    parser.add_argument("--all", action="store_true", help="also the checkpoints marked as large downloads")
    parser.add_argument("--to", type=Path, help="also write a portable copy here, one folder per preset")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in HUB_IDS and n not in PRESET_OF]
    if unknown:
        parser.error(f"unknown checkpoint {', '.join(unknown)}; choose among {', '.join(HUB_IDS)}")
    presets = [PRESET_OF.get(n, n) for n in args.names] or [p for p in HUB_IDS if args.all or p not in LARGE_DOWNLOADS]
    s = hub.settings()
    print(f"cache: {s.cache_dir} · hub: {s.endpoint}{' (offline)' if s.offline else ''}", flush=True)
    rows, problems = [], []
    for preset in presets:
        repo = HUB_IDS[preset]
        try:
            checkpoint = trained_checkpoint(repo)  # local first: a second run does not touch the network
            problem = verify(repo)
            if not problem and args.to is not None:
                write_portable(checkpoint, args.to / preset)
        except ModelLoadError as err:
            checkpoint, problem = None, str(err)
        if problem:
            problems.append(f"{preset}: {problem}")
        files = (len(checkpoint.weights) + sum((checkpoint.folder / n).is_file() for n in
                                               ("config.json", "preprocessor_config.json"))) if checkpoint else 0
        rows.append((preset, repo, str(files), f"{checkpoint.megabytes:.0f}" if checkpoint else "-",
                     "yes" if not problem else "NO", checkpoint.layout if checkpoint else "-"))
    header = ("name", "repo", "files", "MB", "verified", "layout")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5])
    if args.to is not None:
        (args.to / "README.txt").write_text(
            "Trained weights for vitviz, one folder per preset. On the classroom machine:\n"
            f"    VITVIZ_WEIGHTS_DIR={args.to.resolve()} python3 tasks.py run\n"
            "(or wherever this folder is mounted there).\n" + json.dumps({r[0]: r[1] for r in rows}, indent=1) + "\n")
        print(f"portable copy: {args.to} (set VITVIZ_WEIGHTS_DIR to it on the machine that runs the app)")
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
