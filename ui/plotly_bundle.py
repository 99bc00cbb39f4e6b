"""Plotly's *cartesian* bundle in place of the full one in Streamlit's chart chunk: 496 kB gzipped instead of 1.42 MB.

Streamlit 1.67 ships plotly.js 4.2.0 complete (maps, 3-D, WebGL, sankey, parcoords …: 4.7 MB, 1.42 MB gzipped) inside
its `static/js/PlotlyChart.<hash>.js` chunk, and the first page with a chart makes every student download it. vitviz
draws only cartesian traces (scatter, heatmap, image, bar, with shapes, annotations and layout images), all of
which Plotly's own partial bundle `plotly.js-cartesian-dist-min` holds (plotly.js's README, "Partial bundles").
The chunk wraps plotly.js as one CommonJS module (`W=n(((e,t,n)=>{ <plotly's UMD> }))`) that Streamlit's React
component then imports; `patch` swaps that module's body for the cartesian bundle's UMD and leaves Streamlit's code
around it, byte for byte, as it was.

`python -m ui.plotly_bundle` (run by `tasks.py` on first use and by deploy/Dockerfile's build) fetches the pinned
version once from the npm registry (`NPM_CONFIG_REGISTRY`, else the one npm is configured for, else
registry.npmjs.org), checks npm's sha512, and keeps the file in `.cache/plotly/`. `ui/serving.py` serves the patched chunk, gzipped, to every browser that accepts
gzip. Where the file is missing (an offline machine that never fetched it) or a Streamlit upgrade changed the
chunk's shape, Streamlit's own chunk is served: the full Plotly, never a broken chart.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "plotly.js-cartesian-dist-min"
VERSION = "4.1.1"  # the newest cartesian bundle on npm; Streamlit's full one is 4.2.0 (the same figure schema)
INTEGRITY = "sha512-o8GrFeusncwBIxbBynRJpY4pkgVB6caM+JLpwrLYbbsO7dZ8FJ+SVN2Fr+L7kiG/Z6w4P5O0Jus/Qr5EefHVeg=="
MEMBER = "package/plotly-cartesian.min.js"
ASSET = ROOT / ".cache" / "plotly" / f"plotly-cartesian-{VERSION}.min.js"
CHUNK_GLOB = "PlotlyChart.*.js"  # Streamlit's chart chunk, under static/js/

# The module that holds plotly.js in Streamlit 1.67's chunk: `W=n(((e,t,n)=>{` + UMD + `}))`, t being `module`.
MODULE_OPEN = "W=n(((e,t,n)=>{"
UMD_OPEN = "(function(e,n){typeof t==`object`&&t.exports?t.exports=n():e.moduleName=n()})(typeof self<`u`?self:n,()=>"
UMD_CLOSE = "return window.Plotly=e,e})}))"


def say(text: str) -> None:
    print(f"vitviz plotly: {text}", file=sys.stderr, flush=True)


def patch(chunk: str, bundle: str) -> str | None:
    """Streamlit's chart chunk with plotly.js's module body replaced by `bundle` (a plotly.js UMD that assigns
    `module.exports`); None when the chunk does not have the expected shape (exactly one such module)."""
    if chunk.count(MODULE_OPEN + UMD_OPEN) != 1 or chunk.count(UMD_CLOSE) != 1 or "module.exports" not in bundle:
        return None
    start = chunk.index(MODULE_OPEN + UMD_OPEN)
    end = chunk.index(UMD_CLOSE) + len(UMD_CLOSE)
    if end < start:
        return None
    # the bundle's UMD reads the free names `module` and `exports`: the CommonJS wrapper's first two parameters
    return chunk[:start] + "W=n(((exports,module)=>{" + bundle + "\n}))" + chunk[end:]


def registry() -> str:
    """NPM_CONFIG_REGISTRY, else the registry this machine's npm is configured for (a school's or CI's mirror in its
    .npmrc), else npm's public one."""
    found = os.environ.get("NPM_CONFIG_REGISTRY", "")
    if not found and shutil.which("npm"):
        try:
            found = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True,
                                   timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
    return (found if found.startswith(("http://", "https://")) else "https://registry.npmjs.org/").rstrip("/")


def verified(tarball: bytes) -> bool:
    algorithm, _, digest = INTEGRITY.partition("-")
    return base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode() == digest


def fetch(timeout_s: float = 20) -> Path:
    """The cartesian bundle in `ASSET`, downloaded once and checked against npm's integrity hash. Raises OSError
    (no network, a wrong hash) and leaves nothing half-written."""
    if ASSET.exists():
        return ASSET
    url = f"{registry()}/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
    with urllib.request.urlopen(url, timeout=timeout_s) as answer:
        tarball = answer.read()
    if not verified(tarball):
        raise OSError(f"{url} does not match npm's {INTEGRITY[:20]}… hash")
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        bundle = tar.extractfile(MEMBER).read()
    ASSET.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=ASSET.parent, delete=False) as tmp:
        tmp.write(bundle)
    os.chmod(tmp.name, 0o644)  # read by the app's processes, whoever fetched it (a container's build is root)
    os.replace(tmp.name, ASSET)
    return ASSET


def ensure() -> bool:
    """Fetch the bundle unless it is here or a fetch already failed on this machine (an offline school waits for
    no network at every start); says what happened. True when the bundle is here."""
    failed = ASSET.with_suffix(".failed")
    if ASSET.exists():
        return True
    if failed.exists():
        return False
    try:
        fetch()
        say(f"{PACKAGE} {VERSION} fetched: charts load 0.5 MB of Plotly instead of 1.4 MB")
        return True
    except (OSError, KeyError, tarfile.TarError) as exc:
        ASSET.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(str(exc))
        say(f"Plotly's full bundle is served ({type(exc).__name__}: {exc}); `python3 -m ui.plotly_bundle` "
            "fetches the smaller one")
        return False


def main() -> int:
    try:
        print(fetch())
    except (OSError, KeyError, tarfile.TarError) as exc:
        say(f"not fetched: {type(exc).__name__}: {exc}")
        return 1
    ASSET.with_suffix(".failed").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
