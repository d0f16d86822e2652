"""`survey export`: the stored ratings as the long-format CSV that `mos aggregate` reads."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import UserError
from ..mos.ratings import COLUMNS
from ..io.atomic import write_text
from .build import load_survey
from .store import RatingStore


def export_ratings(survey_dir, out) -> int:
    """Write ``out`` (CSV, columns ``mos.ratings.COLUMNS``); returns the number of ratings."""
    survey_dir = Path(survey_dir)
    doc = load_survey(survey_dir)
    db = survey_dir / "ratings.sqlite"
    if not db.is_file():
        raise UserError("no ratings yet (ratings.sqlite is missing; run `survey serve` first)", survey_dir)
    store = RatingStore(db)  # not mode=ro: reading a WAL database may need to create its -shm file
    try:
        rows = store.all()
    finally:
        store.close()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        st = doc["stimuli"].get(r["stimulus"])
        if st is None:
            raise UserError(f"rating of unknown stimulus '{r['stimulus']}' in the database", db)
        w.writerow({"rater": r["rater"], "item": st["item"], "system": st["system"], "aspect": r["aspect"],
                    "score": r["score"], "stimulus": r["stimulus"], "is_trap": int(st["kind"] == "trap"),
                    "expected_score": "" if st["expected_score"] is None else st["expected_score"],
                    "is_reference": int(st["kind"] == "reference"), "playback_complete": int(r["playback_complete"]),
                    "played_fraction": "" if r["played_fraction"] is None else r["played_fraction"],
                    "listen_seconds": "" if r["listen_seconds"] is None else r["listen_seconds"],
                    "response_seconds": "" if r["response_seconds"] is None else r["response_seconds"],
                    "submitted_at": r["submitted_at"]})
    write_text(Path(out), buf.getvalue())
    return len(rows)
