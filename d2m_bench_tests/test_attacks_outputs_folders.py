"""Issue 13, deliverable 1 for the commands that write into an output FOLDER: an OUT that is,
holds or lies inside an input in a way that would overwrite or delete it is a one-line error
(exit 2) before any work, and ``--force`` deletes only what the command itself wrote.

One attack per command; each input is compared byte for byte before and after.
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from d2m_bench.synth.synthetic import click_track, make_tiny_dataset

SR = 22050


def _snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def _refused(proc, *needles):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def raw_aistpp(tmp_path_factory):
    from d2m_bench.data.synth import synth_aistpp

    return synth_aistpp(tmp_path_factory.mktemp("raw") / "aist", n_train=1, n_test=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("ds") / "d", n_train=2, n_test=2)


@pytest.fixture(scope="module")
def vqvae(dataset, tmp_path_factory):
    """A real (tiny, one-step) VQ-VAE, so that the old code got as far as writing the run."""
    from d2m_bench_tests.conftest import run_cli

    run = tmp_path_factory.mktemp("vq")
    proc = run_cli("train", "vqvae", "--data", dataset, "--out-dir", run, "--size", "tiny", "--steps", "1",
                   "--batch-size", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return run / "vqvae.pt"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two eval results of the same protocol on the same two clips (a clean and a shifted pred)."""
    from d2m_bench_tests.conftest import run_cli

    root = tmp_path_factory.mktemp("eval")
    for i in range(2):
        for role, times in (("gt", [0.3, 1.3]), ("a", [0.3, 1.3]), ("b", [0.5])):
            path = root / role / f"clip00{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), click_track(times, sr=SR, duration=2.0), SR)
    out = []
    for system in ("a", "b"):
        proc = run_cli("eval", "--pred", root / system, "--gt", root / "gt", "--system", system,
                       "--out", root / f"{system}.json", "-q")
        assert proc.returncode == 0, proc.stderr
        out.append(root / f"{system}.json")
    return out


def test_data_build_out_is_the_music_folder(raw_aistpp, cli):
    before = _snapshot(raw_aistpp)
    proc = cli("data", "build", "aistpp", "--annotations", raw_aistpp / "annotations", "--music", raw_aistpp / "music",
               "--videos", raw_aistpp / "videos", "--visual", "none", "--out-dir", raw_aistpp / "music", "-q")
    _refused(proc, "--out-dir is the input --music")
    assert _snapshot(raw_aistpp) == before


def test_data_build_out_holding_an_input_where_the_dataset_goes(raw_aistpp, cli, tmp_path):
    """--annotations given as OUT/motion: the build writes OUT/motion/<id>.npy beside, and into, it."""
    (tmp_path / "motion").symlink_to(raw_aistpp / "annotations", target_is_directory=True)
    before = _snapshot(raw_aistpp)
    proc = cli("data", "build", "aistpp", "--annotations", tmp_path / "motion", "--music", raw_aistpp / "music",
               "--videos", raw_aistpp / "videos", "--visual", "none", "--out-dir", tmp_path, "-q")
    _refused(proc, "holds the input --annotations")
    assert _snapshot(raw_aistpp) == before and not (tmp_path / "dataset.json").exists()


def test_data_synth_over_a_real_raw_dataset(tmp_path, cli):
    """The miniature uses real AIST++ names: written into a real raw folder it replaced real files."""
    real = tmp_path / "aistpp"
    (real / "annotations").mkdir(parents=True)
    (real / "annotations" / "ignore_list.txt").write_text("the real ignore list\n")
    proc = cli("data", "synth", "aistpp", real)
    _refused(proc, "not written by `d2m-bench data synth`")
    assert (real / "annotations" / "ignore_list.txt").read_text() == "the real ignore list\n"
    assert sorted(p.name for p in real.rglob("*")) == ["annotations", "ignore_list.txt"]
    # A miniature is refilled, and a new folder filled, as before.
    assert cli("data", "synth", "tiktok", tmp_path / "mini").returncode == 0
    assert cli("data", "synth", "tiktok", tmp_path / "mini").returncode == 0


def test_demo_make_force_on_a_folder_it_did_not_write(tmp_path, cli):
    folder = tmp_path / "mine"
    (folder / "gt").mkdir(parents=True)
    (folder / "notes.txt").write_text("keep me")
    sf.write(str(folder / "gt" / "take1.wav"), np.zeros(100, np.float32), SR)
    before = _snapshot(folder)
    proc = cli("demo", "make", folder, "--force", "--pairs", "2")
    _refused(proc, "not written by `d2m-bench demo make`", "nothing deleted")
    assert _snapshot(folder) == before


def test_demo_make_force_keeps_what_others_wrote(tmp_path, cli):
    """--force replaces the set (manifest and the clips it lists), not eval's results beside it,
    and refuses a gt/ holding a file the demo did not write."""
    demo = tmp_path / "demo"
    assert cli("demo", "make", demo, "--pairs", "4").returncode == 0
    (demo / "result.json").write_text("{}")
    assert cli("demo", "make", demo, "--force", "--pairs", "2").returncode == 0
    assert (demo / "result.json").read_text() == "{}"
    assert sorted(p.name for p in (demo / "gt").iterdir()) == ["clip000.wav", "clip001.wav"]
    sf.write(str(demo / "gt" / "mine.wav"), np.zeros(100, np.float32), SR)
    before = _snapshot(demo)
    _refused(cli("demo", "make", demo, "--force"), "gt/ holds 1 files the demo did not write")
    assert _snapshot(demo) == before


@pytest.mark.parametrize("kind", ["vqvae", "d2m-low"])
def test_train_out_over_its_inputs(dataset, vqvae, tmp_path, cli, kind):
    """vqvae: --out the dataset root (config.json, checkpoint.pt, samples/ would land in it);
    d2m-low: --config OUT/config.json without --resume (the run's first write replaced it)."""
    before = _snapshot(dataset)
    if kind == "vqvae":
        proc = cli("train", "vqvae", "--data", dataset, "--out-dir", dataset, "--size", "tiny", "--steps", "1",
                   "--batch-size", "2", "--quiet")
        _refused(proc, "--out is the input --data")
    else:
        run = tmp_path / "run"
        run.mkdir()
        settings = {"size": "tiny", "max_steps": 1, "batch_size": 2}
        (run / "config.json").write_text(json.dumps(settings))
        proc = cli("train", "d2m-low", "--data", dataset, "--out-dir", run, "--config", run / "config.json",
                   "--vqvae", vqvae, "--quiet")
        _refused(proc, "holds the input --config")
        assert json.loads((run / "config.json").read_text()) == settings
    assert _snapshot(dataset) == before


def test_generate_out_is_the_dataset_root(dataset, tmp_path, cli):
    (tmp_path / "checkpoint.pt").write_bytes(b"never loaded")
    before = _snapshot(dataset)
    proc = cli("generate", "--checkpoint", tmp_path / "checkpoint.pt", "--data", dataset, "--out-dir", dataset,
               "--quiet")
    _refused(proc, "--out is the input --data")
    assert _snapshot(dataset) == before


def test_report_out_whose_img_holds_the_result(results, tmp_path, cli):
    """An earlier report folder (its marker present) with the result saved in img/: the rebuild
    deleted img/ after reading the result, so the input was gone."""
    pytest.importorskip("matplotlib", reason="report extra not installed (pip install 'd2m-bench[report]')")
    from d2m_bench.report.site import MARKER

    out = tmp_path / "report"
    (out / "img").mkdir(parents=True)
    (out / MARKER).write_text("")
    saved = out / "img" / "a.json"
    saved.write_bytes(results[0].read_bytes())
    proc = cli("report", saved, "--out-dir", out, "--worst", "0", "--best", "0", "--random", "0", "-j", "1", "-q")
    _refused(proc, "holds the input INPUTS", "img in it")
    assert saved.read_bytes() == results[0].read_bytes() and not (out / "index.html").exists()


def test_compare_out_holding_a_result_named_compare_json(results, tmp_path, cli):
    out = tmp_path / "cmp"
    out.mkdir()
    mine = out / "compare.json"
    mine.write_bytes(results[0].read_bytes())
    proc = cli("compare", mine, results[1], "--out-dir", out, "--resamples", "50", "-q")
    _refused(proc, "holds the input RESULTS")
    assert mine.read_bytes() == results[0].read_bytes() and not (out / "compare.csv").exists()
    proc = cli("compare", *results, "--out-dir", tmp_path / "fresh", "--resamples", "50", "-q")
    assert proc.returncode == 0 and (tmp_path / "fresh" / "compare.json").is_file(), proc.stderr


def test_baseline_force_on_upstream_given_as_out_midi(dataset, tmp_path):
    """--force deletes OUT/midi/<id>.mid of an earlier run: with --upstream OUT/midi those were the
    upstream system's MIDI files, deleted before being read."""
    from d2m_bench.baselines.base import Baseline, run_baseline
    from d2m_bench.data.dataset import Dataset
    from d2m_bench.errors import UserError

    class FromUpstream(Baseline):
        name = "from-upstream"
        needs_upstream = True

        def upstream_files(self, segment_id):
            return [f"{segment_id}.mid"]

        def segment(self, ctx, seg, length):
            return np.zeros(length, np.float32), {"midi": (ctx.upstream / f"{seg.segment_id}.mid").read_text()}

    out = tmp_path / "out"
    for seg in Dataset(dataset).segments("test"):
        (out / "midi").mkdir(parents=True, exist_ok=True)
        (out / "midi" / f"{seg.segment_id}.mid").write_text("upstream midi")
    before = _snapshot(out)
    with pytest.raises(UserError) as err:
        run_baseline(FromUpstream(), dataset, out, upstream=out / "midi", force=True, progress=False)
    assert "holds the input --upstream" in str(err.value) and "\n" not in str(err.value)
    assert _snapshot(out) == before


def test_survey_build_force_with_a_system_inside_stimuli(tmp_path, cli):
    """--force removes stimuli/ and static/ of the survey it replaces: a system folder kept there
    went with them."""
    from d2m_bench.io.audio import write_audio

    def systems(root):
        t = np.arange(int(0.3 * SR)) / SR
        for j, name in enumerate(("gt", "a")):
            for k in range(2):
                write_audio(root / name / f"seg{k}.wav", 0.3 * np.sin(2 * np.pi * (220 * (j + 1) + 10 * k) * t), SR)
        return [f"{n}={root / n}" for n in ("gt", "a")]

    common = ["--aspects", "quality", "--raters", "2", "--items-per-rater", "2", "--trap-method", "beep", "-q"]
    survey = tmp_path / "survey"
    first = systems(tmp_path / "in")
    proc = cli("survey", "build", *sum((["--systems", s] for s in first), []), "--out-dir", survey, *common)
    assert proc.returncode == 0, proc.stderr
    inside = systems(survey / "stimuli" / "kept")
    before = _snapshot(survey / "stimuli" / "kept")
    proc = cli("survey", "build", *sum((["--systems", s] for s in inside), []), "--out-dir", survey, "--force", *common)
    _refused(proc, "holds the input --systems gt", "stimuli in it")
    assert _snapshot(survey / "stimuli" / "kept") == before


def test_weights_download_onto_its_own_source(tmp_path, cli):
    """Held before this change: `--url file://DEST --force` reads the source whole into a temporary
    file and replaces DEST only once the hash matches, so the file survives either way."""
    dest = tmp_path / "Cnn14_mAP=0.431.pth"
    dest.write_bytes(b"my checkpoint")
    import hashlib

    digest = hashlib.sha256(b"my checkpoint").hexdigest()
    for expect in ("0" * 64, digest):
        cli("weights", "download", "panns-cnn14", "--dir", tmp_path, "--url", dest.as_uri(),
            "--expect-sha256", expect, "--force", "-q")
        assert dest.read_bytes() == b"my checkpoint"
    assert sorted(os.listdir(tmp_path)) == [dest.name]


def test_folder_check_through_links_and_ordinary_use(tmp_path):
    """The helper itself: a claimed name that is a hard link to an input file is refused; an
    output folder beside or inside an input folder, claiming nothing of it, is allowed."""
    from d2m_bench.errors import UserError
    from d2m_bench.io.outputs import check_output_folder

    data = tmp_path / "data"
    data.mkdir()
    (data / "clip.wav").write_bytes(b"x")
    out = tmp_path / "out"
    (out / "gt").mkdir(parents=True)
    os.link(data / "clip.wav", out / "gt" / "clip.wav")
    with pytest.raises(UserError, match="a link"):
        check_output_folder("--out", out, {"--data": data}, claims=("gt",))
    check_output_folder("--out", out, {"--data": data}, claims=("generated", "provenance.json"))
    check_output_folder("--out", data / "run", {"--data": data}, claims=None)
    check_output_folder("--out", tmp_path / "new", {"--data": data}, claims=None)
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="not a folder"):
        check_output_folder("--out", tmp_path / "file", {}, claims=None)


def test_import_d2m_gan_into_the_folder_of_the_released_files(tmp_path, cli):
    """Released files kept as weights/{mencoder,netG,vqvae}.pt and imported with --out weights:
    the import replaced the released vqvae.pt with its converted copy."""
    torch = pytest.importorskip("torch")
    from d2m_bench.models.generator import D2MGenerator, GeneratorConfig
    from d2m_bench.models.vqvae import VQVAE

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(VQVAE().state_dict(), weights / "vqvae.pt")  # a bare Jukebox state dict, as released
    G = D2MGenerator(GeneratorConfig(level="high", width=1 / 32, motion_len=64, motion_feat=64, genre_dim=16,
                                     res_blocks=1, emb_width=64, code_len=344))
    torch.save(G.mencoder.state_dict(), weights / "mencoder.pt")
    torch.save(G.generator.state_dict(), weights / "netG.pt")
    before = _snapshot(weights)
    proc = cli("import", "d2m-gan", "--mencoder", weights / "mencoder.pt", "--netg", weights / "netG.pt",
               "--vqvae", weights / "vqvae.pt", "--level", "high", "--dataset", "aistpp", "--out-dir", weights)
    _refused(proc, "holds the input --vqvae", "vqvae.pt in it")
    assert _snapshot(weights) == before
