"""Memory stays bounded in a classroom (issue 8): every cache that grows with inputs has a bound, per-session state
is small, and the byte-budgeted trace stores evict."""
from __future__ import annotations

import ast
from pathlib import Path

from .apptest import app, photo, upload

ROOT = Path(__file__).resolve().parent.parent
APP_SOURCES = [ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py")), *sorted((ROOT / "pages").glob("*.py"))]


def _cache_decorators():
    """(file, function, decorator call) for every st.cache_data / st.cache_resource in the app."""
    for path in APP_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for dec in node.decorator_list:
                    call = dec if isinstance(dec, ast.Call) else None
                    target = call.func if call else dec
                    if isinstance(target, ast.Attribute) and target.attr in {"cache_data", "cache_resource"}:
                        yield path.relative_to(ROOT), node, call


def test_every_cache_keyed_on_inputs_has_max_entries():
    """A cache without max_entries grows with every new image; only argument-less singletons may omit it."""
    found = list(_cache_decorators())
    assert len(found) > 20
    unbounded = [f"{path}:{fn.lineno} {fn.name}" for path, fn, call in found
                 if (fn.args.args or fn.args.kwonlyargs)
                 and not (call and any(k.arg in {"max_entries", "ttl"} for k in call.keywords))]
    assert not unbounded, unbounded


def _leaves(value, depth=0):
    """Every object reachable from a session-state value through dataclasses, tuples, lists and dicts."""
    import dataclasses

    if depth > 4:
        return
    yield value
    if dataclasses.is_dataclass(value):
        children = [getattr(value, f.name) for f in dataclasses.fields(value)]
    elif isinstance(value, (tuple, list)):
        children = list(value)
    elif isinstance(value, dict):
        children = list(value.values())
    else:
        children = []
    for child in children:
        yield from _leaves(child, depth + 1)


def test_session_state_holds_one_image_and_no_arrays():
    """Per-session state is the current upload (one ≤ 1024 px image, shared by `ctx` and `photo`) and
    settings: tensors, arrays and traces live in the bounded shared caches, never per session."""
    import numpy as np
    import torch
    from PIL import Image

    at = upload(app(), "big.jpg", photo(1600, 1200, seed=9))
    for page in ["pages/attention.py", "pages/swin.py", "pages/mobilevit.py", "pages/projection.py"]:
        at.switch_page(page).run()
    leaves = [leaf for value in at.session_state.to_dict().values() for leaf in _leaves(value)]
    images = {id(leaf): leaf for leaf in leaves if isinstance(leaf, Image.Image)}
    assert len(images) == 1, [im.size for im in images.values()]
    assert max(next(iter(images.values())).size) == 1024  # downscaled from 1600 px on upload
    heavy = [type(leaf).__name__ for leaf in leaves if isinstance(leaf, (torch.Tensor, np.ndarray, bytes))]
    assert not heavy, heavy
