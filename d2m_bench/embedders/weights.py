"""Where embedder weights live, and how to fetch them once (never at evaluation time).

Lookup order for the VGGish state dict: an explicit path (``--vggish-weights``), the
environment variable ``D2M_BENCH_VGGISH_WEIGHTS``, then the torch hub cache
(``torch.hub.get_dir()/checkpoints/<filename>``, i.e. ``$TORCH_HOME/hub/checkpoints``),
where the public PyTorch port's own loader also puts it. The PCA file is looked up beside
the weights, then in ``D2M_BENCH_VGGISH_PCA``, then in the hub cache.
The file names carry the first 8 hex digits of the file's SHA-256 (torch hub convention).
A file counts as the published one ("official", which decides the comparable key of genre
results) only when its full SHA-256 equals the pinned one: 32 bits of prefix can be matched
by brute force in minutes. The PCA file's full hash is not pinned here (only its name's
prefix is known), so it is never called official; its key is its own hash.

Every weights file is read through d2m_bench.io.safe_pickle (never torch's own pickle), the
published ones too, so no file runs code or exhausts memory however it is named or hashed:
tensors, containers and plain numbers, plus plain numeric numpy arrays (the PCA file holds
pickled numpy arrays).
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from ..io.atomic import replacing
from ..errors import UserError

_RELEASE = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
_ZENODO = "https://zenodo.org/record/3987831/files/"
# sha256: the full digest of the published file (None where it is not known here).
KNOWN = {
    "vggish": {"filename": "vggish-10086976.pth", "sha256_prefix": "10086976",
               "sha256": "10086976245803799d9194e9a73d9b6c1549c71d1b80106f5cade5608a561f4b",
               "url": _RELEASE + "vggish-10086976.pth", "env": "D2M_BENCH_VGGISH_WEIGHTS"},
    "vggish-pca": {"filename": "vggish_pca_params-970ea276.pth", "sha256_prefix": "970ea276", "sha256": None,
                   "url": _RELEASE + "vggish_pca_params-970ea276.pth", "env": "D2M_BENCH_VGGISH_PCA"},
    # PANNs checkpoints (Zenodo record 3987831). Their SHA-256 is not known here (no network to
    # the record): sha256 None, so no file is called official and a download needs
    # --expect-sha256 with a full digest. library_dir: where panns_inference itself looks.
    "panns-cnn14": {"filename": "Cnn14_mAP=0.431.pth", "sha256_prefix": None, "sha256": None,
                    "url": _ZENODO + "Cnn14_mAP%3D0.431.pth?download=1", "env": "D2M_BENCH_PANNS_CNN14_WEIGHTS",
                    "library_dir": "~/panns_data"},
    "panns-cnn14-16k": {"filename": "Cnn14_16k_mAP=0.438.pth", "sha256_prefix": None, "sha256": None,
                        "url": _ZENODO + "Cnn14_16k_mAP%3D0.438.pth?download=1",
                        "env": "D2M_BENCH_PANNS_CNN14_16K_WEIGHTS", "library_dir": "~/panns_data"},
    # EnCodec 24 kHz: the name carries the first 8 hex of the SHA-256 (checked by the library too);
    # the full digest is not known here. The torch hub cache is where the library itself puts it.
    "encodec-24k": {"filename": "encodec_24khz-d7cc33bc.th", "sha256_prefix": "d7cc33bc", "sha256": None,
                    "url": "https://dl.fbaipublicfiles.com/encodec/v0/encodec_24khz-d7cc33bc.th",
                    "env": "D2M_BENCH_ENCODEC_24K_WEIGHTS"},
    # PaSST-S SWA (what hear21passt.base.get_basic_model and stable-audio-metrics' passt_kld load): the
    # library's own download URL for architecture passt_s_swa_p16_128_ap476; no digest known here.
    "passt-s-f128-p16-s10": {"filename": "passt-s-f128-p16-s10-ap.476-swa.pt", "sha256_prefix": None, "sha256": None,
                             "url": "https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/"
                                    "passt-s-f128-p16-s10-ap.476-swa.pt",
                             "env": "D2M_BENCH_PASST_WEIGHTS"},
    # LAION CLAP checkpoints (the files fadtk's clap-laion-music / clap-laion-audio load), from the
    # URLs CLAP_Module.load_ckpt itself uses; no digest known here.
    "clap-laion-music": {"filename": "music_audioset_epoch_15_esc_90.14.pt", "sha256_prefix": None, "sha256": None,
                         "url": "https://huggingface.co/lukewys/laion_clap/resolve/main/"
                                "music_audioset_epoch_15_esc_90.14.pt",
                         "env": "D2M_BENCH_CLAP_LAION_MUSIC_WEIGHTS"},
    "clap-laion-audio": {"filename": "630k-audioset-best.pt", "sha256_prefix": None, "sha256": None,
                         "url": "https://huggingface.co/lukewys/laion_clap/resolve/main/630k-audioset-best.pt",
                         "env": "D2M_BENCH_CLAP_LAION_AUDIO_WEIGHTS"},
}
# Hugging Face repositories (folders; d2m_bench.embedders.hf_weights). hf_files: what a snapshot
# holds and the folder digest covers; hf_required: alternatives of which one must be present.
# The tokenizer/text-model repos are named as laion_clap names them in its from_pretrained calls.
_HF = "https://huggingface.co/"
_WEIGHTS_FILES = ["model.safetensors", "pytorch_model.bin"]
_BPE = ["config.json", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"]
for _name, _repo, _files, _required in (
        ("mert-v1-95m", "m-a-p/MERT-v1-95M", ["config.json", "preprocessor_config.json", "*.py", *_WEIGHTS_FILES],
         [["config.json"], ["preprocessor_config.json"], _WEIGHTS_FILES]),
        ("mert-v1-330m", "m-a-p/MERT-v1-330M", ["config.json", "preprocessor_config.json", "*.py", *_WEIGHTS_FILES],
         [["config.json"], ["preprocessor_config.json"], _WEIGHTS_FILES]),
        ("roberta-base", "roberta-base", [*_BPE, *_WEIGHTS_FILES],
         [["config.json"], ["vocab.json"], ["merges.txt"], _WEIGHTS_FILES]),
        ("bert-base-uncased", "bert-base-uncased", ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json"],
         [["config.json"], ["vocab.txt"]]),
        ("bart-base", "facebook/bart-base", _BPE, [["config.json"], ["vocab.json"], ["merges.txt"]])):
    KNOWN[_name] = {"hf_repo": _repo, "hf_files": _files, "hf_required": _required, "revision": None,
                    "filename": _repo + "/", "sha256_prefix": None, "sha256": None, "url": _HF + _repo,
                    "env": "D2M_BENCH_" + _name.upper().replace("-", "_").replace(".", "_")}


def is_folder(name: str) -> bool:
    """True for entries that are Hugging Face repository folders rather than one file."""
    return "hf_repo" in KNOWN.get(name, {})


def is_official(name: str, sha256) -> bool:
    """True only when ``sha256`` is the full pinned digest of the published file ``name``."""
    pinned = KNOWN.get(name, {}).get("sha256")
    return bool(pinned) and isinstance(sha256, str) and sha256.lower() == pinned


def load_weights(path):
    """A weights file through the restricted, memory-bounded unpickler (tensors, numpy arrays,
    containers; d2m_bench.io.safe_pickle.load_torch); one-line UserError for a file that holds
    anything else (naming the object), asks for more memory than it can hold, or is unreadable."""
    import pickle

    from ..io.safe_pickle import Refused, RefusedGlobal, load_torch

    try:
        return load_torch(path, map_location="cpu")
    except RefusedGlobal as exc:
        raise UserError(f"refusing to unpickle: the file holds objects other than tensors and arrays ({exc})",
                        path) from None
    except Refused as exc:
        raise UserError(f"refusing to unpickle: {str(exc)[:200]}", path) from None
    except pickle.UnpicklingError:  # random bytes or a truncated file
        raise UserError("unreadable weights file (not a torch file)", path) from None
    except MemoryError:
        raise UserError("unreadable weights file (out of memory)", path) from None
    except (OSError, RuntimeError, EOFError, ValueError, TypeError, AttributeError, ImportError, KeyError,
            IndexError, zipfile.BadZipFile) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UserError(f"unreadable weights file ({exc.__class__.__name__}: {first})", path) from None


def load_state_strict(model, state, path, what: str, hint: str = "") -> None:
    """``model.load_state_dict(state, strict=True)``; a layout mismatch becomes one line naming
    the file, ``not <what> state dict (<torch's first line><hint>)``, instead of torch's key dump."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "mismatch"
        raise UserError(f"not {what} state dict ({first}{hint})", path) from None


def hub_checkpoints() -> Path:
    """torch's hub checkpoint folder; without torch installed, the folder torch would use
    (``$TORCH_HOME/hub``, default ``$XDG_CACHE_HOME/torch/hub``), so that ``weights list`` and
    ``weights download`` work before torch is installed."""
    try:
        import torch.hub
    except ImportError:
        home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
        return Path(os.path.expanduser(home)) / "hub" / "checkpoints"
    return Path(torch.hub.get_dir()) / "checkpoints"


def candidates(name: str, explicit=None) -> list[tuple[str, Path]]:
    """(origin, path) in lookup order for a known file (a folder for Hugging Face entries)."""
    spec = KNOWN[name]
    if is_folder(name):
        from . import hf_weights

        return hf_weights.candidates(name, spec, explicit)
    out = []
    if explicit:
        out.append(("option", Path(explicit).expanduser()))
    if os.environ.get(spec["env"]):
        out.append((f"${spec['env']}", Path(os.environ[spec["env"]]).expanduser()))
    out.append(("torch hub cache", hub_checkpoints() / spec["filename"]))
    if spec.get("library_dir"):
        out.append(("library default", Path(spec["library_dir"]).expanduser() / spec["filename"]))
    return out


def _how_to_get(name: str) -> str:
    spec = KNOWN[name]
    if name == "vggish":
        option = "pass --vggish-weights PATH"
    elif name == "vggish-pca":
        option = "put it beside the VGGish weights"
    else:
        option = f"pass --weights {name}=PATH"
    offline = "; offline alternative: --embedder mfcc-chroma" if name == "vggish" else ""
    return (f"{option}, set ${spec['env']}, or put {spec['filename']} in {hub_checkpoints()} "
            f"(`d2m-bench weights download {name}` fetches it from {spec['url']}){offline}")


def resolve(name: str, explicit=None) -> Path:
    """Path of a known weights file (folder for Hugging Face entries), or UserError in one line
    saying where to put it."""
    if is_folder(name):
        from . import hf_weights

        return hf_weights.resolve(name, KNOWN[name], explicit)
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


def digest(name: str, path) -> str:
    """The identity of a resolved weights path: the file's SHA-256, or a folder entry's digest."""
    if is_folder(name):
        from . import hf_weights

        return hf_weights.folder_digest(KNOWN[name], path)
    from ..io.cache import file_digest

    return file_digest(path)


def download(name: str, *, dest_dir=None, url=None, expect_sha256=None, force=False, progress=False,
             revision=None) -> dict:
    """Fetch a known file into ``dest_dir`` (default: the torch hub cache), atomically.

    The SHA-256 must start with ``expect_sha256`` (default: the full pinned digest, or the
    prefix in the published file name where none is pinned, when the default URL is used; no
    check for another URL unless one is given). ``verified`` is true only for a full 64-hex
    match: a prefix catches a broken download, not a forged file.
    Returns ``{"path", "sha256", "bytes", "verified"}``.
    """
    if name not in KNOWN:
        raise UserError(f"unknown weights '{name}' (known: {', '.join(KNOWN)})")
    spec = KNOWN[name]
    if is_folder(name):
        from . import hf_weights

        if url:
            raise UserError(f"{name} comes from the Hugging Face repository {spec['hf_repo']}: --url does not apply")
        return hf_weights.download(name, spec, dest_dir=dest_dir, revision=revision, expect_sha256=expect_sha256,
                                   force=force, progress=progress)
    if revision:
        raise UserError(f"--revision applies to Hugging Face entries only, not {name}")
    url = url or spec["url"]
    if expect_sha256 is None and url == spec["url"]:
        expect_sha256 = spec["sha256"] or spec["sha256_prefix"]
    if not spec["sha256"] and not spec["sha256_prefix"] and (not expect_sha256 or len(expect_sha256) != 64):
        # Nothing pinned in the toolkit: only a full digest the user vouches for is accepted,
        # so that what lands in the cache is exactly the file they meant.
        raise UserError(f"no SHA-256 of {spec['filename']} is pinned in d2m-bench: pass --expect-sha256 with the "
                        "full 64-hex digest of the file you mean to install")
    dest_dir = Path(dest_dir) if dest_dir else hub_checkpoints()
    dest = dest_dir / spec["filename"]
    if dest.is_file() and not force:
        from ..io.cache import file_digest

        digest = file_digest(dest)
        return {"path": str(dest), "sha256": digest, "bytes": dest.stat().st_size,
                "verified": _full_match(digest, expect_sha256), "existing": True}
    h = hashlib.sha256()
    size = 0
    try:
        from ..progress import progress_bar

        with replacing(dest, suffix=".part") as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with progress_bar(total=total, unit="B", unit_scale=True, desc=spec["filename"],
                                  disable=not progress, leave=False) as bar:
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
    return {"path": str(dest), "sha256": digest, "bytes": size, "verified": _full_match(digest, expect_sha256),
            "existing": False}


def weights_inputs(assignments: dict | None = None, vggish_weights=None) -> dict:
    """label -> path of every weights file or folder a command could read, wherever it is found
    (option, environment variable, torch hub or Hugging Face cache, library default, the PCA
    file beside VGGish), for the output check: ``eval --out`` onto the VGGish file in the hub
    cache must be refused like ``--out`` onto ``--vggish-weights``."""
    assignments = dict(assignments or {})
    if vggish_weights:
        assignments["vggish"] = vggish_weights
    out = {}
    for name in KNOWN:
        try:
            found = candidates(name, assignments.get(name))
        except (OSError, RuntimeError, ImportError):
            continue
        for origin, path in found:
            if path.exists():
                out[f"{name} weights ({origin})"] = path
                if name == "vggish" and path.is_file():
                    out["vggish-pca weights (beside VGGish)"] = path.parent / KNOWN["vggish-pca"]["filename"]
    return out


def parse_assignments(items) -> dict:
    """``["panns-cnn14=/p/x.pth", ...]`` (the --weights option) -> {name: path}; names checked."""
    out = {}
    for item in items or ():
        name, sep, path = str(item).partition("=")
        if not sep or not name or not path:
            raise UserError(f"--weights takes NAME=PATH, got '{item}'")
        if name not in KNOWN:
            from ..names import unknown

            raise UserError("--weights: " + unknown("weights", name, KNOWN))
        out[name] = path
    return out


def _full_match(digest: str, expect) -> bool:
    return bool(expect) and len(expect) == 64 and digest == expect.lower()
