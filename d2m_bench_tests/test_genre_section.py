"""The genre section end to end: `d2m-bench eval` on a tiny dataset with a known answer.

Predictions are byte copies of chosen train clips, so each query's nearest database clip is
known whatever the network weights (distance exactly 0): three copies of a clip of the dance's
genre and one of another genre give accuracy 3/4; gt copies give the ceiling 4/4.
"""
import csv
import json
import shutil

import numpy as np
import pytest

from d2m_bench.data.dataset import GENRES, Dataset
from d2m_bench.errors import UserError
from d2m_bench.evaluation import EvalContext
from d2m_bench.io.pairing import Pair
from d2m_bench.protocol import load_protocol
from d2m_bench.synth.synthetic import make_tiny_dataset
from d2m_bench_tests.helpers import save_random_vggish, score_section


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("genre")
    root = make_tiny_dataset(tmp / "ds", n_train=10, n_test=4)  # train genre i = GENRES[i]; test 3..6
    data = Dataset(root)
    train = {s.genre: root / s.audio for s in data.segments("train")}
    test = data.segments("test")
    pred = tmp / "pred"
    pred.mkdir()
    for s in test:
        shutil.copy(train[s.genre], root / s.audio)  # gt test audio = the train clip of its genre
        # predictions: the same, except the last one, a copy of the gBR clip
        shutil.copy(train["gBR"] if s is test[-1] else train[s.genre], pred / f"{s.segment_id}.wav")
    weights = save_random_vggish(tmp / "vggish-random.pth", seed=0)
    return {"root": root, "pred": pred, "weights": weights, "test": test, "train": train, "tmp": tmp}


def _check_known(res, suffix, test):
    agg = res["aggregate"]
    acc, ceil = agg[f"genre_accuracy{suffix}"], agg[f"genre_accuracy_gt_ceiling{suffix}"]
    assert acc["value"] == 0.75 and acc["n"] == 4 and acc["unit"] == "fraction"
    assert ceil["value"] == 1.0 and acc["chance"] == 0.1
    last = test[-1].genre
    assert acc["per_genre"] == {s.genre: (0.0 if s.genre == last else 1.0) for s in test}
    m = np.array(acc["confusion"]["matrix"])
    assert m.sum() == 4 and m[GENRES.index(last), GENRES.index("gBR")] == 1 and np.trace(m) == 3
    rows = {r["id"]: r for r in res["per_clip"]}
    assert rows[test[-1].segment_id]["genre_retrieved"] == "gBR"
    assert rows[test[-1].segment_id]["genre_correct"] == 0 and rows[test[-1].segment_id]["genre_correct_gt"] == 1
    assert all(r["genre_nn_distance"] == 0.0 for r in rows.values())
    assert rows[test[0].segment_id]["genre_nn_id"] == f"{test[0].genre}_sBM_c01_d04_m{test[0].genre[1:]}3_ch01_seg1"
    fad = agg[f"fad{suffix or '_vggish'}"]
    assert fad["higher_is_better"] is False and fad["unit"] == "score" and fad["value"] > 0
    # Beat metrics sit in the same result file.
    assert "beats_coverage" in agg


def test_eval_cli_vggish_known_answer(known, cli, tmp_path):
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", known["pred"], "--gt", known["root"] / "audio/test", "--data", known["root"],
               "--vggish-weights", known["weights"], "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    _check_known(res, "", known["test"])
    meta = res["sections"]["genre"]["meta"]
    assert meta["embedder"] == "vggish" and meta["weights_official"] is False
    assert meta["weights_sha256"] == __import__("hashlib").sha256(known["weights"].read_bytes()).hexdigest()
    assert meta["database_size"] == 10 and meta["k"] == 1 and meta["postprocess"] == "none"


def test_eval_cli_mfcc_chroma_is_labelled_and_hashed_apart(known, cli, tmp_path):
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", known["pred"], "--gt", known["root"] / "audio/test", "--data", known["root"],
               "--embedder", "mfcc-chroma", "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    _check_known(res, "_mfcc_chroma", known["test"])
    assert "genre_accuracy" not in res["aggregate"] and "fad_mfcc_chroma" in res["aggregate"]
    assert res["sections"]["genre"]["meta"]["embedder"] == "mfcc-chroma"
    assert res["protocol"]["params"]["genre"]["embedder"] == "mfcc-chroma"
    assert res["protocol"]["hash"] != load_protocol("d2m-aistpp-2s").hash


def _pairs(folder_pred, folder_gt, ids):
    return [Pair(i, folder_gt / f"{i}.wav", folder_pred / f"{i}.wav") for i in ids]


def test_pred_equal_gt_gives_zero_fad_and_k3_majority(known):
    proto = load_protocol("d2m-aistpp-2s").with_overrides({"genre.embedder": "mfcc-chroma", "genre.k": 3})
    gt = known["root"] / "audio/test"
    ids = [s.segment_id for s in known["test"]]
    res = score_section("genre", _pairs(gt, gt, ids), proto, EvalContext(data=Dataset(known["root"])))
    assert res["aggregate"]["fad_mfcc_chroma"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert res["meta"]["k"] == 3 and res["meta"]["vote"] == "majority"
    # One genre per train clip: the 3 nearest all differ, so the vote falls back to the nearest.
    assert res["aggregate"]["genre_accuracy_mfcc_chroma"]["value"] == 1.0


def test_genre_db_folder_labels_csv_and_self_exclusion(known, tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    # Database files under neutral names, labelled by CSV; includes the queries' own gt ids.
    labels = [("id", "genre")]
    for g, src in known["train"].items():
        shutil.copy(src, db / f"clip_{g}.wav")
        labels.append((f"clip_{g}", g[1:]))  # "BR" form is accepted too
    test = known["test"]
    for s in test:
        shutil.copy(known["root"] / s.audio, db / f"{s.segment_id}.wav")
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(labels)
    proto = load_protocol("d2m-aistpp-2s").with_overrides({"genre.embedder": "mfcc-chroma"})
    ctx = EvalContext(options={"genre_db": str(db), "labels": str(tmp_path / "labels.csv")})
    res = score_section("genre", _pairs(known["pred"], known["root"] / "audio/test", [s.segment_id for s in test]), proto, ctx)
    assert res["status"] == "ok" and res["meta"]["database_size"] == 14
    # Each query's own gt entry is left out, so the twin train copy is retrieved: same answer.
    assert res["meta"]["self_matches_excluded"] == 4
    assert res["aggregate"]["genre_accuracy_mfcc_chroma"]["value"] == 0.75
    assert res["per_clip"][test[0].segment_id]["genre_nn_id"] == f"clip_{test[0].genre}"


def test_skips_and_errors(known, tmp_path):
    proto = load_protocol("d2m-aistpp-2s")
    gt = known["root"] / "audio/test"
    pairs = _pairs(gt, gt, [s.segment_id for s in known["test"]])
    res = score_section("genre", pairs, proto, EvalContext())
    assert res["status"] == "skipped" and "no genre database" in res["reason"]
    # Ids that carry no genre anywhere are excluded, not guessed.
    plain = [Pair(f"clip{i}", p.gt, p.pred) for i, p in enumerate(pairs)]
    res = score_section("genre", plain, proto.with_overrides({"genre.embedder": "mfcc-chroma"}),
                        EvalContext(data=Dataset(known["root"])))
    assert res["status"] == "skipped" and len(res["excluded"]) == 4
    tiktok = make_tiny_dataset(tmp_path / "tt", kind="tiktok", n_train=2, n_test=1)
    res = score_section("genre", pairs, proto, EvalContext(data=Dataset(tiktok)))
    assert res["status"] == "skipped" and "no genre labels" in res["reason"]
    with pytest.raises(UserError, match="genre.distance"):
        score_section("genre", pairs, proto.with_overrides({"genre.distance": "manhattan"}), EvalContext())
    bad = tmp_path / "bad.csv"
    bad.write_text("name,label\na,gBR\n")
    with pytest.raises(UserError, match="id,genre"):
        score_section("genre", pairs, proto, EvalContext(options={"labels": str(bad)}))
