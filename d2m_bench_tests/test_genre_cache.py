"""Embedding cache: hits, invalidation on content and configuration, two writers at once."""
import subprocess
import sys
import textwrap

import numpy as np

from d2m_bench.io.audio import write_audio
from d2m_bench.io.cache import FileCache, cache_info
from d2m_bench.embedders import embed_files


class CountingEmbedder:
    """Embeds each clip to one vector (its mean and length); counts the clips it embedded."""

    name = "counting"
    sample_rate = 8000
    dim = 2
    weights_sha256 = "w1"

    def __init__(self):
        self.calls = 0

    def cache_config(self):
        return {"embedder": self.name, "weights_sha256": self.weights_sha256}

    def embed_waveforms(self, waves):
        self.calls += len(waves)
        return [np.array([[float(np.mean(y)), float(len(y))]], np.float32) for y in waves]


def _wavs(tmp_path, n=3):
    paths = []
    for i in range(n):
        p = tmp_path / f"c{i}.wav"
        write_audio(p, np.full(800, 0.1 * (i + 1), np.float32), 8000)
        paths.append(p)
    return paths


def test_hits_and_content_invalidation(tmp_path):
    paths = _wavs(tmp_path)
    cache = FileCache("counting", tmp_path / "cache")
    emb = CountingEmbedder()
    first = embed_files(paths, emb, cache=cache)
    assert emb.calls == 3
    again = embed_files(paths + paths[:1], emb, cache=cache)  # duplicates are embedded once
    assert emb.calls == 3
    for p in paths:
        np.testing.assert_array_equal(first[str(p)], again[str(p)])
    # Same name, new content: a miss, and the new value.
    write_audio(paths[1], np.full(800, -0.5, np.float32), 8000)
    after = embed_files(paths, emb, cache=cache)
    assert emb.calls == 4
    assert after[str(paths[1])][0, 0] == np.float32(-0.5)
    # New weights: every entry is a miss.
    emb.weights_sha256 = "w2"
    embed_files(paths, emb, cache=cache)
    assert emb.calls == 7
    # Disabled cache (--no-cache): always computed, nothing written.
    off = FileCache("counting", tmp_path / "cache2", enabled=False)
    embed_files(paths, emb, cache=off)
    embed_files(paths, emb, cache=off)
    assert emb.calls == 13 and not (tmp_path / "cache2").exists()
    assert cache_info(tmp_path / "cache")["counting"]["entries"] == 7


def test_cache_cli_lists_and_clears_an_embedder_namespace(tmp_path, cli):
    cache = FileCache("mfcc-chroma", tmp_path / "c")
    cache.put(cache.key("abc", {"x": 1}), np.zeros((2, 62), np.float32))
    out = cli("cache", "--root", tmp_path / "c", "info")
    assert out.returncode == 0 and "mfcc-chroma" in out.stdout and "1 entries" in out.stdout
    out = cli("cache", "--root", tmp_path / "c", "clear", "mfcc-chroma")
    assert "removed 1 entries" in out.stdout and cache_info(tmp_path / "c") == {}


WRITER = textwrap.dedent("""
    import sys, time, pathlib
    from d2m_bench.io.cache import FileCache
    from d2m_bench.embedders import embed_files
    from d2m_bench.embedders.handcrafted import MfccChromaEmbedder
    root, me, other, *paths = sys.argv[1:]
    emb = MfccChromaEmbedder()
    emb.embed_waveforms([__import__("numpy").zeros(22050, "float32")])  # warm librosa before the race
    pathlib.Path(me).touch()
    while not pathlib.Path(other).exists():
        time.sleep(0.01)
    out = embed_files(paths, emb, cache=FileCache(emb.name, root))
    import numpy as np
    np.save(me + ".npy", np.concatenate([out[p] for p in paths]))
""")


def test_two_processes_write_the_same_entries(tmp_path):
    from d2m_bench.embedders.handcrafted import MfccChromaEmbedder

    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        p = tmp_path / f"a{i}.wav"
        write_audio(p, rng.uniform(-0.5, 0.5, 22050 * 2).astype(np.float32), 22050)
        paths.append(str(p))
    root = tmp_path / "cache"
    a, b = str(tmp_path / "ready-a"), str(tmp_path / "ready-b")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), me, other, *paths],
                              stderr=subprocess.PIPE, text=True) for me, other in ((a, b), (b, a))]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    ra, rb = np.load(a + ".npy"), np.load(b + ".npy")
    np.testing.assert_array_equal(ra, rb)
    # Every entry is complete and readable, no temporary file is left behind.
    files = list((root / "mfcc-chroma").rglob("*"))
    assert not [f for f in files if f.name.startswith(".tmp-")]
    assert cache_info(root)["mfcc-chroma"]["entries"] == 12
    emb = MfccChromaEmbedder()
    emb.embed_waveforms = None  # any miss would now fail: all 12 must come from the cache
    cached = embed_files(paths, emb, cache=FileCache(emb.name, root))
    np.testing.assert_array_equal(np.concatenate([cached[p] for p in paths]), ra)


def test_resampler_upgrade_invalidates_embeddings(tmp_path, monkeypatch):
    # Files are resampled by librosa with soxr before embedding: a new soxr (or librosa)
    # may change the samples, so its version is part of every embedder's cache key.
    import types

    import librosa
    import soxr

    from d2m_bench.embedders.handcrafted import MfccChromaEmbedder
    from d2m_bench.embedders.vggish import VGGishEmbedder

    vgg = VGGishEmbedder.cache_config(types.SimpleNamespace(name="vggish", weights_sha256="w"))
    assert vgg["audio"]["soxr"] == soxr.__version__ and vgg["audio"]["librosa"] == librosa.__version__
    emb = MfccChromaEmbedder()
    calls = []
    real = emb.embed_waveforms
    emb.embed_waveforms = lambda waves: calls.append(len(waves)) or real(waves)
    paths = _wavs(tmp_path, n=2)
    cache = FileCache(emb.name, tmp_path / "cache")
    embed_files(paths, emb, cache=cache)
    embed_files(paths, emb, cache=cache)
    assert calls == [2]  # second run: all hits
    monkeypatch.setattr(soxr, "__version__", soxr.__version__ + ".post-upgrade")
    embed_files(paths, emb, cache=cache)
    assert calls == [2, 2]  # every entry is a miss after the upgrade
    monkeypatch.setattr(librosa, "__version__", librosa.__version__ + ".post-upgrade")
    embed_files(paths, emb, cache=cache)
    assert calls == [2, 2, 2]


def test_unreadable_file_is_one_error_naming_it(tmp_path, monkeypatch):
    # Hashing for the cache key is the first read of a genre database file (the beat metrics
    # never read those): refused there, it must be the audio reader's one-line error, not an
    # OSError traceback.
    import builtins

    import pytest

    import d2m_bench.io.cache
    from d2m_bench.errors import AudioError

    paths = _wavs(tmp_path, n=2)
    real_open = builtins.open

    def refusing_open(file, *a, **kw):
        if str(file) == str(paths[1]):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr(d2m_bench.io.cache, "open", refusing_open, raising=False)
    with pytest.raises(AudioError) as err:
        embed_files(paths, CountingEmbedder(), cache=FileCache("counting", tmp_path / "cache"))
    assert str(err.value) == f"{paths[1]}: cannot read file (Permission denied)"
