"""Weights that live as Hugging Face model repositories (MERT; the tokenizers and text model that
laion_clap loads by repo name): a folder, not one file.

Lookup order, offline: an explicit folder (``--weights NAME=DIR``), the entry's environment
variable, then the local Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``), where ``transformers`` itself keeps what it downloaded, read through
``huggingface_hub.snapshot_download(local_files_only=True)``. Nothing is fetched at evaluation
time; ``d2m-bench weights download NAME`` fetches a snapshot into that cache once.

A folder's identity is ``folder_digest``: the SHA-256 of the sorted lines ``<file sha256>  <name>``
over every file of the folder that a loader may read: all top-level files except documentation
(``*.md``, ``LICENSE*``) and hidden ones. transformers picks its weights by what is present
(a ``model.safetensors.index.json`` and its shards beat ``pytorch_model.bin``), so a digest over
a fixed list of names once gave two folders with different weights the same identity.
Downloads need a pin: a commit ``revision`` (40 hex; git object names cover the files' contents,
large files through their SHA-256 pointers) or the folder digest (``--expect-sha256``). No
revision of these repositories is pinned in d2m-bench (none could be read offline), so nothing
fetched here is called "official".
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from ..errors import UserError

HEX40 = re.compile(r"^[0-9a-f]{40}$")


def hub_cache() -> Path:
    """The Hugging Face hub cache, as huggingface_hub computes it from the environment, read now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _documentation(name: str) -> bool:
    return name.lower().endswith(".md") or name.upper().startswith("LICENSE")


def folder_files(spec, folder) -> list[Path]:
    """Every file of ``folder`` a loader may read (top level; links followed, as in HF snapshots):
    all but documentation and hidden files, whatever the entry's download patterns."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and not _documentation(p.name))


def folder_digest(spec, folder) -> str:
    """SHA-256 over ``<file sha256>  <name>`` lines of the entry's files in ``folder`` (module doc)."""
    from ..io.cache import file_digest

    lines = "".join(f"{file_digest(p)}  {p.name}\n" for p in folder_files(spec, folder))
    return hashlib.sha256(lines.encode()).hexdigest()


def _check_folder(name, spec, folder: Path, origin: str) -> Path:
    if not folder.is_dir():
        raise UserError(f"{name} weights must be a folder ({origin}): {how_to_get(name, spec)}", folder)
    present = {p.name for p in folder_files(spec, folder)}
    missing = [" or ".join(alts) for alts in spec["hf_required"] if not present.intersection(alts)]
    if missing:
        raise UserError(f"not a {name} folder: {', '.join(missing)} missing ({origin})", folder)
    return folder


def cached_snapshot(spec) -> Path | None:
    """The cached snapshot folder of the entry's repo (pinned revision, else refs/main), or None."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        path = snapshot_download(spec["hf_repo"], revision=spec.get("revision"),
                                 cache_dir=str(spec.get("cache") or hub_cache()), local_files_only=True)
    except Exception:  # noqa: BLE001 - huggingface_hub raises several kinds for "not in the cache"
        return None
    return Path(path)


def candidates(name, spec, explicit=None) -> list[tuple[str, Path]]:
    """(origin, folder) in lookup order; the cache entry is the snapshot when one is cached."""
    out = []
    if explicit:
        out.append(("option", Path(explicit).expanduser()))
    if os.environ.get(spec["env"]):
        out.append((f"${spec['env']}", Path(os.environ[spec["env"]]).expanduser()))
    snap = cached_snapshot(spec)
    out.append(("Hugging Face cache", snap or hub_cache() / f"models--{spec['hf_repo'].replace('/', '--')}"))
    return out


def how_to_get(name, spec) -> str:
    return (f"pass --weights {name}=DIR, set ${spec['env']}, or have {spec['hf_repo']} in the Hugging Face cache "
            f"{hub_cache()} (`d2m-bench weights download {name} --revision COMMIT` fetches it from {spec['url']})")


def resolve(name, spec, explicit=None) -> Path:
    """The entry's folder, checked for its required files; UserError in one line otherwise. An
    explicit folder or the environment variable is used as given (no fallback past a wrong one)."""
    if explicit:
        return _check_folder(name, spec, Path(explicit).expanduser(), "option")
    if os.environ.get(spec["env"]):
        return _check_folder(name, spec, Path(os.environ[spec["env"]]).expanduser(), f"${spec['env']}")
    snap = cached_snapshot(spec)
    if snap is not None:
        return _check_folder(name, spec, snap, "Hugging Face cache")
    raise UserError(f"{name} not found: {how_to_get(name, spec)}")


def download(name, spec, *, dest_dir=None, revision=None, expect_sha256=None, force=False, progress=False) -> dict:
    """Fetch the entry's files into the Hugging Face cache (or ``dest_dir`` as a cache root) with
    ``huggingface_hub.snapshot_download``; a revision or a folder digest must pin it (module doc).
    A snapshot whose digest differs from ``expect_sha256`` is removed again."""
    revision = revision or spec.get("revision")
    if revision is not None and not HEX40.match(str(revision)):
        raise UserError(f"--revision must be a full 40-hex commit of {spec['hf_repo']}, got '{revision}'")
    if revision is None and not (expect_sha256 and len(expect_sha256) == 64):
        raise UserError(f"no revision of {spec['hf_repo']} is pinned in d2m-bench: pass --revision with the full "
                        "commit you mean to install, or --expect-sha256 with the folder digest")
    try:
        import huggingface_hub  # noqa: F401  (present before anything is fetched)
    except ImportError:
        raise UserError(f"downloading {name} needs huggingface_hub: pip install 'd2m-bench[mert]'") from None
    cache = Path(dest_dir) if dest_dir else hub_cache()
    existing = None if force else cached_snapshot({**spec, "cache": cache, "revision": revision})
    if existing is not None:
        # The user's snapshot: checked, never deleted (it was not fetched by this command).
        path = existing
        digest = folder_digest(spec, path)
        if expect_sha256 and digest != expect_sha256.lower():
            raise UserError(f"the cached {spec['hf_repo']} snapshot has folder digest {digest[:16]}..., expected "
                            f"{expect_sha256}; left as it is (pass --force to fetch a fresh copy)", path)
    else:
        path, digest = _fetch_verified(name, spec, cache, revision, expect_sha256, force)
    size = sum(p.stat().st_size for p in folder_files(spec, path))
    return {"path": str(path), "sha256": digest, "bytes": size, "existing": existing is not None,
            "verified": bool(expect_sha256) and digest == expect_sha256.lower(), "revision": revision}


def _fetch_verified(name, spec, cache: Path, revision, expect_sha256, force) -> tuple[Path, str]:
    """Download into a fresh cache folder beside ``cache``, check the digest there, and only then
    move the new blobs, snapshot links and refs into ``cache``: a mismatch deletes only what this
    download fetched."""
    import tempfile

    from huggingface_hub import snapshot_download

    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".d2m-bench-download-", dir=cache))
    except OSError as exc:
        raise UserError(f"cannot write the Hugging Face cache ({exc.strerror})", cache) from None
    try:
        try:
            fetched = Path(snapshot_download(spec["hf_repo"], revision=revision, allow_patterns=list(spec["hf_files"]),
                                             cache_dir=str(tmp), force_download=force))
        except Exception as exc:  # noqa: BLE001 - network, auth and missing-revision errors all end here
            first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
            raise UserError(f"could not download {spec['hf_repo']} ({first}); fetch it elsewhere and pass "
                            f"--weights {name}=DIR") from None
        digest = folder_digest(spec, fetched)
        if expect_sha256 and digest != expect_sha256.lower():
            raise UserError(f"{spec['hf_repo']} snapshot has folder digest {digest[:16]}..., expected {expect_sha256}; "
                            "the download was discarded, not installed")
        _move_into(tmp, cache)
        return cache / fetched.relative_to(tmp), digest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into(src: Path, dest: Path) -> None:
    # Blobs are named by their content, so one already there is the same file and is kept;
    # snapshot links and refs of the fetched revision replace the old ones.
    for top, dirs, files in os.walk(src):
        rel = Path(top).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for fname in files:
            target = dest / rel / fname
            if rel.parts[-1:] == ("blobs",) and (target.exists() or target.is_symlink()):
                continue
            os.replace(Path(top) / fname, target)
