"""Where embedder weights live, and how to fetch them once (never at evaluation time).

Lookup order for the VGGish state dict: an explicit path (``--vggish-weights``), the
environment variable ``D2M_BENCH_VGGISH_WEIGHTS``, then the torch hub cache
(``torch.hub.get_dir()/checkpoints/<filename>``, i.e. ``$TORCH_HOME/hub/checkpoints``),
where the public PyTorch port's own loader also puts it. The PCA file is looked up beside
the weights, then in ``D2M_BENCH_VGGISH_PCA``, then in the hub cache.
The file names carry the first 8 hex digits of the file's SHA-256 (torch hub convention);
downloads are checked against that prefix.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..atomic import replacing
from ..errors import UserError

_RELEASE = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
KNOWN = {
    "vggish": {"filename": "vggish-10086976.pth", "sha256_prefix": "10086976",
               "url": _RELEASE + "vggish-10086976.pth", "env": "D2M_BENCH_VGGISH_WEIGHTS"},
    "vggish-pca": {"filename": "vggish_pca_params-970ea276.pth", "sha256_prefix": "970ea276",
                   "url": _RELEASE + "vggish_pca_params-970ea276.pth", "env": "D2M_BENCH_VGGISH_PCA"},
}


def hub_checkpoints() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def candidates(name: str, explicit=None) -> list[tuple[str, Path]]:
    """(origin, path) in lookup order for a known file."""
    spec = KNOWN[name]
    out = []
    if explicit:
        out.append(("option", Path(explicit).expanduser()))
    if os.environ.get(spec["env"]):
        out.append((f"${spec['env']}", Path(os.environ[spec["env"]]).expanduser()))
    out.append(("torch hub cache", hub_checkpoints() / spec["filename"]))
    return out


def _how_to_get(name: str) -> str:
    spec = KNOWN[name]
    option = "pass --vggish-weights PATH" if name == "vggish" else "put it beside the VGGish weights"
    offline = "; offline alternative: --embedder mfcc-chroma" if name == "vggish" else ""
    return (f"{option}, set ${spec['env']}, or put {spec['filename']} in {hub_checkpoints()} "
            f"(`d2m-bench weights download {name}` fetches it from {spec['url']}){offline}")


def resolve(name: str, explicit=None) -> Path:
    """Path of a known weights file, or UserError in one line saying where to put it."""
    if explicit and not Path(explicit).expanduser().is_file():
        raise UserError(f"{name} weights not found (no such file): {_how_to_get(name)}", explicit)
    for _, path in candidates(name, explicit):
        if path.is_file():
            return path
    raise UserError(f"{name} weights not found: {_how_to_get(name)}")


def resolve_pca(weights_path) -> Path:
    beside = Path(weights_path).parent / KNOWN["vggish-pca"]["filename"]
    if beside.is_file():
        return beside
    return resolve("vggish-pca")


def download(name: str, *, dest_dir=None, url=None, expect_sha256=None, force=False, progress=False) -> dict:
    """Fetch a known file into ``dest_dir`` (default: the torch hub cache), atomically.

    The SHA-256 must start with ``expect_sha256`` (default: the prefix in the published file
    name when the default URL is used; no check for another URL unless one is given).
    Returns ``{"path", "sha256", "bytes", "verified"}``.
    """
    if name not in KNOWN:
        raise UserError(f"unknown weights '{name}' (known: {', '.join(KNOWN)})")
    spec = KNOWN[name]
    url = url or spec["url"]
    if expect_sha256 is None and url == spec["url"]:
        expect_sha256 = spec["sha256_prefix"]
    dest_dir = Path(dest_dir) if dest_dir else hub_checkpoints()
    dest = dest_dir / spec["filename"]
    if dest.is_file() and not force:
        from ..cache import file_digest

        digest = file_digest(dest)
        return {"path": str(dest), "sha256": digest, "bytes": dest.stat().st_size,
                "verified": bool(expect_sha256) and digest.startswith(expect_sha256.lower()), "existing": True}
    h = hashlib.sha256()
    size = 0
    try:
        from tqdm import tqdm

        with replacing(dest, suffix=".part") as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=spec["filename"], disable=not progress,
                          leave=False) as bar:
                    while block := resp.read(1 << 20):
                        out.write(block)
                        h.update(block)
                        size += len(block)
                        bar.update(len(block))
            digest = h.hexdigest()
            if expect_sha256 and not digest.startswith(expect_sha256.lower()):
                raise UserError(f"download from {url} has sha256 {digest[:16]}..., expected a prefix of "
                                f"{expect_sha256}; not installed")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"could not download {url} ({reason}); fetch it elsewhere and copy it to {dest}") from None
    return {"path": str(dest), "sha256": digest, "bytes": size, "verified": bool(expect_sha256), "existing": False}
