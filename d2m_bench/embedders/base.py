"""Embedder plug-in interface, registry and the cached file -> per-example embeddings step.

Every embedder (VGGish, MFCC/chroma, PANNs CNN14, ...) is an object with

- ``name`` (str), ``sample_rate`` (Hz it is fed at), ``hop`` (seconds between the vectors it
  returns for one clip; ``None`` for one vector per clip), ``dim`` (length of the FD vector),
  ``layers`` (the outputs it offers; the first is its default), ``weights_sha256`` (full hash
  of its weights file, ``None`` when it has none): its identity;
- ``cache_config()``: every setting that changes its cached output, the weights hash included;
- ``meta()``: what a result records (name, weights path and hash, settings);
- ``embed_waveforms(list of mono arrays) -> list of (n_i, cache_dim) float32``: clips are
  passed together so that a backend can batch them;
- ``select(rows, layer)``: one output from the cached rows; ``finalize(vectors)``: the
  protocol's post-processing (identity but for VGGish PCA).

``cache_dim`` (default ``dim``) is the row length of the cached array when several outputs
are cached together (PANNs: embedding and logits). Cached entries are keyed by the file's
SHA-256 plus ``cache_config()``, in the FileCache namespace named after the embedder.
Weights files are found by ``weights.resolve`` (explicit path, environment variable, torch hub
cache, the library's own folder) before anything is loaded.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np

from ..errors import UserError

# name -> (module, class, weights entry in weights.KNOWN or None, pip extra or None)
REGISTRY = {
    "vggish": (".vggish", "VGGishEmbedder", "vggish", None),
    "mfcc-chroma": (".handcrafted", "MfccChromaEmbedder", None, None),
    "panns-cnn14": (".panns", "PannsCnn14Embedder", "panns-cnn14", "panns"),
    "panns-cnn14-16k": (".panns", "PannsCnn14Embedder", "panns-cnn14-16k", "panns"),
    "encodec-24k": (".encodec_emb", "EncodecEmbedder", "encodec-24k", "encodec"),
    "clap-laion-music": (".clap", "ClapEmbedder", "clap-laion-music", "clap"),
    "clap-laion-audio": (".clap", "ClapEmbedder", "clap-laion-audio", "clap"),
    "mert-v1-95m": (".mert", "Mert95mEmbedder", "mert-v1-95m", "mert"),
    "mert-v1-330m": (".mert", "Mert330mEmbedder", "mert-v1-330m", "mert"),
    "passt-s-f128-p16-s10": (".passt", "PasstEmbedder", "passt-s-f128-p16-s10", "passt"),
}
EMBEDDERS = tuple(REGISTRY)
INTERFACE = ("name", "sample_rate", "hop", "dim", "layers", "weights_sha256")


def identity(embedder) -> dict:
    """The interface fields of an embedder (module doc), as a result records them."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k in INTERFACE for v in [getattr(embedder, k)]}


def audio_config() -> dict:
    """How files reach an embedder (``load_audio``: channel mean, librosa.resample with
    soxr_hq). The librosa and soxr versions are part of it because an upgrade of either may
    change the resampled samples, hence the embeddings: cached entries must not survive it."""
    import librosa
    import soxr

    return {"resample": "soxr_hq", "mono": "mean", "librosa": librosa.__version__, "soxr": soxr.__version__}


def resolve_embedder(name: str, *, vggish_weights=None, postprocess=False, weights=None,
                     trust_remote_code=False, hub_weights=None) -> dict:
    """The files an embedder needs, found without loading anything: ``{"weights", "pca"}``
    (paths or None). ``weights``: an explicit path for this embedder's weights file (for
    vggish, ``vggish_weights`` does the same). Unknown names, bad settings, a missing library
    and missing files raise the UserError that building the embedder would raise, so a run
    can fail before any other work. ``trust_remote_code``: the user allows the weights folder
    to run its own model code (embedders with ``remote_code_capable``; MERT). ``hub_weights``:
    explicit folders (``--weights NAME=DIR``) of the Hugging Face repositories a backend loads
    besides its weights, found now as ``"hub"`` (laion_clap's tokenizers and roberta-base)."""
    if name not in REGISTRY:
        from ..names import unknown

        raise UserError(unknown("embedder", name, EMBEDDERS))
    module, _, entry, extra = REGISTRY[name]
    if postprocess and name != "vggish":
        raise UserError(f"genre.postprocess applies to vggish only ({name} has no PCA)")
    import importlib.util

    if entry is not None and importlib.util.find_spec("torch") is None:  # every network runs on torch
        extras = ",".join(["torch"] + ([extra] if extra else []))
        raise UserError(f"the {name} embedder needs torch: pip install 'd2m-bench[{extras}]'"
                        f"{_NO_DEPS.get(extra, '')} (docs/genre-fad.md, Installing the backends)")
    if extra:
        missing = [m for m in _EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]
        if missing:
            raise UserError(f"the {name} embedder needs {', '.join(missing)}: pip install 'd2m-bench[{extra}]'"
                            f"{_NO_DEPS.get(extra, '')} (docs/genre-fad.md, Installing the backends)")
    if entry is None:
        return {"weights": None, "pca": None}
    from .weights import resolve, resolve_pca

    path = resolve(entry, weights or (vggish_weights if name == "vggish" else None))
    check = getattr(embedder_class(name), "check_weights", None)
    if check is not None:  # e.g. a folder that asks to run code the user has not allowed
        check(path, name=name, trust_remote_code=trust_remote_code)
    hub = getattr(embedder_class(name), "resolve_hub", None)
    return {"weights": path, "pca": resolve_pca(path) if postprocess else None,
            "hub": hub(hub_weights or {}) if hub is not None else None}


def embedder_class(name: str):
    """The class registered for ``name``, imported without loading any weights."""
    from importlib import import_module

    module, cls_name, _, _ = REGISTRY[name]
    return getattr(import_module(module, __package__), cls_name)


_EXTRA_MODULES = {"panns": ("panns_inference", "torchlibrosa"), "encodec": ("encodec", "einops"),
                  "clap": ("laion_clap", "transformers", "huggingface_hub", "torchlibrosa", "h5py", "webdataset",
                           "braceexpand", "wget", "ftfy", "PIL"),
                  "mert": ("transformers", "safetensors"),
                  "passt": ("hear21passt",)}
# Libraries that declare a torch build of their own (torchaudio, timm): the extra holds what they
# import, the library itself goes in without its declared dependencies.
_NO_DEPS = {"passt": " and pip install --no-deps hear21passt==0.0.26"}


def get_embedder(name: str, *, vggish_weights=None, postprocess=False, batch_size=None, weights=None, layer=None,
                 trust_remote_code=False, hub_weights=None, device=None):
    """The embedder ``name`` with its weights loaded (``resolve_embedder`` for the arguments).
    ``layer``: the output to compute, for embedders that choose it when built (``layer_at_build``:
    MERT caches one layer); the others compute all their outputs and ignore it. ``device``: see
    ``resolve_device`` (default cpu)."""
    files = resolve_embedder(name, vggish_weights=vggish_weights, postprocess=postprocess, weights=weights,
                             trust_remote_code=trust_remote_code, hub_weights=hub_weights)
    cls = embedder_class(name)
    device = resolve_device(device)
    if name == "mfcc-chroma":  # numpy/librosa features: no network, no device
        return cls()
    # A GPU takes batches 8x larger than the CPU defaults (the numbers change only to float rounding)
    scale = 1 if device == "cpu" else 8
    if name == "vggish":
        return cls(files["weights"], pca=files["pca"], postprocess=postprocess, batch_size=batch_size or 128 * scale,
                   device=device)
    if getattr(cls, "layer_at_build", False):
        return cls(files["weights"], name=name, batch_size=batch_size or 8 * scale, layer=layer, device=device,
                   trust_remote_code=trust_remote_code, **({"hub_folders": files["hub"]} if files["hub"] else {}))
    return cls(files["weights"], name=name, device=device,
               batch_size=batch_size or getattr(cls, "default_batch_size", 16) * scale)


def equal_length_batches(items, batch_size: int, length=len):
    """Index lists of at most ``batch_size`` items of one ``length`` each, in first-seen order:
    the batches a backend stacks into one forward pass. In eval mode the networks have no
    cross-example state, so grouping changes no value beyond float rounding (each backend's
    test compares it with the library's one-clip call)."""
    by_length = {}
    for i, item in enumerate(items):
        by_length.setdefault(length(item), []).append(i)
    for idx in by_length.values():
        for start in range(0, len(idx), batch_size):
            yield idx[start:start + batch_size]


def embed_files(paths, embedder, *, cache=None, progress=False, files_per_batch=None, loading=None) -> dict:
    """``{path: (n_examples, dim) float32}`` for each distinct path, from the cache when possible.

    ``loading``: how files are read and resampled (``d2m_bench.io.loading``; default d2m-bench's
    own, which keeps the cache keys entries always had). Files that miss the cache are decoded
    at the embedder's rate and embedded in groups of
    ``files_per_batch`` (their examples share network batches; default 32, 8x that on a GPU),
    then stored. Under ``torchrun`` the groups are shared out among the ranks and every rank
    returns every array (``d2m_bench.distributed``).
    """
    from ..distributed import gather_dict, shard, world
    from ..progress import progress_bar

    from ..io.audio import media_digest
    from ..io.loading import cache_config as loading_config, load

    device = device_type(getattr(embedder, "device", "cpu"))
    files_per_batch = files_per_batch or (32 if device == "cpu" else 256)
    config = {**cache_config_on(embedder, device), **loading_config(loading)}
    out, todo = {}, []
    for path in dict.fromkeys(map(str, paths)):
        key = cache.key(media_digest(path), config) if cache is not None else None
        hit = cache.get(key, ndim=2) if cache is not None else None
        if hit is not None and hit.ndim == 2 and hit.shape[1] == getattr(embedder, "cache_dim", embedder.dim):
            out[path] = hit
        else:
            todo.append((path, key))
    groups = [todo[start:start + files_per_batch] for start in range(0, len(todo), files_per_batch)]
    rank, size = world()
    if size > 1:  # one grouping for all ranks: a file missed by any rank's cache is embedded once, by one rank
        missing = gather_dict({rank: [p for p, _ in todo]})
        union = set().union(*missing.values())
        keys = {str(p): k for p, k in todo}
        every = [p for p in dict.fromkeys(map(str, paths)) if p in union]
        todo = [(p, keys.get(p) or (cache.key(media_digest(p), config) if cache is not None else None)) for p in every]
        groups = shard([todo[s:s + files_per_batch] for s in range(0, len(todo), files_per_batch)], rank, size)
    mine = {}
    bar = progress_bar(total=sum(map(len, groups)), desc=f"embed ({embedder.name})", unit="file",
                       disable=not progress, leave=False)
    for group in groups:
        waves = [load(p, embedder.sample_rate, loading) for p, _ in group]
        for (path, key), emb in zip(group, embedder.embed_waveforms(waves)):
            mine[path] = emb
            if cache is not None:
                cache.put(key, emb)
        bar.update(len(group))
    bar.close()
    if size > 1:
        from ..distributed import record_shares

        record_shares(len(mine))
        mine = gather_dict(mine)
    out.update(mine)
    return out


def device_type(device) -> str:
    """``cpu``, ``cuda``, ``mps``: the kind of a torch device or device string."""
    return str(device).split(":")[0]


def cache_config_on(embedder, device: str) -> dict:
    """The embedder's cache configuration on ``device``: CPU entries keep the key they always had;
    entries made on another kind of device carry its name, so that CPU and GPU arrays (equal only
    to float tolerance) never stand in for each other (docs/sets.md, Devices)."""
    config = embedder.cache_config()
    return config if device == "cpu" else {**config, "device": device}


DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device=None) -> str:
    """The torch device an embedder runs on: ``cpu`` (default), ``cuda`` / ``cuda:N``, ``mps``,
    or ``auto`` (cuda when present, else mps, else cpu). A GPU that is asked for and absent is a
    UserError: a run never falls back silently to a device other than the one it records."""
    device = str(device or "cpu")
    kind = device_type(device)
    if kind not in DEVICES:
        raise UserError(f"--device {device}: not a device ({', '.join(DEVICES)}, or cuda:N)")
    if kind == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        raise UserError(f"--device {device} needs torch: pip install 'd2m-bench[torch]'") from None
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if kind == "cuda" and not cuda:
        raise UserError(f"--device {device}: torch {torch.__version__} sees no CUDA device "
                        "(a CPU-only build, or no GPU visible); use --device cpu or auto")
    if kind == "cuda" and ":" in device and int(device.split(":")[1] or 0) >= torch.cuda.device_count():
        raise UserError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not mps:
        raise UserError(f"--device {device}: this torch build has no usable MPS (Apple GPU) backend")
    return device


def clip_vectors(per_example: list, *, pooling="mean") -> np.ndarray:
    """(n_clips, dim) float64: each clip's example embeddings pooled (mean)."""
    if pooling != "mean":
        raise UserError(f"unknown genre.pooling '{pooling}' (mean)")
    return np.stack([np.asarray(e, dtype=np.float64).mean(axis=0) for e in per_example])


@contextmanager
def environ_kept(*names: str):
    """Each ``os.environ[name]`` after the block is what it was before it (absent stays absent)."""
    before = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
