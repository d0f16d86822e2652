import click

from .grammar import workers as workers_opt
from .set_options import DEVICE_HELP


@click.command("eval")
@click.option("--pred", type=click.Path(), help="Folder of generated clips.")
@click.option("--gt", type=click.Path(), help="Folder of ground-truth clips.")
@click.option("--manifest", type=click.Path(), help="CSV with columns id,gt,pred (instead of --pred/--gt).")
@click.option("--protocol", "-p", default="d2m-aistpp-2s", show_default=True, help="Protocol name or path to a TOML file.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the JSON result here.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), help="Write the per-clip table as CSV here.")
@click.option("--system", help="System name: recorded in the result and used by the leaderboard.")
@workers_opt("Processes")
@click.option("--allow-missing", is_flag=True, help="Score the gt ids that have a prediction; list the others as excluded.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the per-file cache.")
@click.option("--data", type=click.Path(), help="A built dataset (genre labels, genre database, motion).")
@click.option("--split", default="test", show_default=True, help="Split of --data the clips belong to.")
@click.option("--embedder", default=None, help="Genre embedder (overrides the protocol's genre.embedder).")
@click.option("--vggish-weights", type=click.Path(), default=None, help="Path to vggish-10086976.pth.")
@click.option("--weights", "weights", multiple=True, metavar="NAME=PATH",
              help="Weights file of an embedder, e.g. panns-cnn14=Cnn14_mAP=0.431.pth (repeatable).")
@click.option("--trust-remote-code", "trust_remote_code", multiple=True, metavar="NAME",
              help="Let the weights folder of embedder NAME run the model code it ships (MERT's modeling_MERT.py); "
                   "read that code first (repeatable).")
@click.option("--genre-db", type=click.Path(), default=None, help="Folder of gt audio named by AIST++ sequence (genre database).")
@click.option("--labels", type=click.Path(), default=None, help="CSV id,genre for the genre database.")
@click.option("--prompts", type=click.Path(), default=None,
              help="CSV id,text: the text prompt of each clip for the CLAP score ([clap] prompts = \"csv\").")
@click.option("--motion", type=click.Path(), default=None, help="Folder of <id>.npy 3-D joints at 60 fps (alignment metrics).")
@click.option("--device", default="cpu", show_default=True, help=DEVICE_HELP)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table.")
def eval_cmd(pred, gt, manifest, protocol, out, csv_out, system, workers, allow_missing, no_cache, data,
             split, embedder, vggish_weights, weights, trust_remote_code, genre_db, labels, prompts, motion, device,
             quiet):
    """Score generated music against ground truth under a protocol.

    An existing --out or --csv file is deleted before the run starts, so that a failed run
    never leaves an earlier result behind looking like this one's; an --out or --csv that is
    one of the inputs, or both the same file, or in a folder that cannot be written, is
    refused before that.
    """
    import warnings
    from pathlib import Path

    from ..errors import UserError
    from ..embedders.weights import parse_assignments, weights_inputs
    from ..evaluation import evaluate
    from ..io.cache import CacheWarning
    from ..io.lookalike import LookalikeWarning
    from ..io.outputs import check_outputs

    _check_names(protocol, embedder)
    if out and not system and _under_results(out):
        click.echo(f"d2m-bench: warning: no --system: {out} will be left off the leaderboard (it ranks only "
                   "results with a system name); add --system NAME", err=True)
    weights = parse_assignments(weights)
    check_outputs({"--out": out, "--csv": csv_out},
                  {**_inputs(pred, gt, manifest, protocol, data, genre_db, labels, motion, vggish_weights, prompts),
                   **weights_inputs(weights, vggish_weights)})
    for stale in (out, csv_out):
        if stale:
            try:
                Path(stale).unlink(missing_ok=True)
            except OSError as exc:
                raise UserError(f"cannot remove the earlier result file ({exc.strerror})", stale) from None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exclusions are listed in the table and the JSON
        warnings.simplefilter("always", LookalikeWarning)  # swapped or copied folders: said before the run
        # ... and a cache entry that was not used (tampered, damaged), in one line.
        warnings.simplefilter("always", CacheWarning)
        warnings.showwarning = _show_now
        result = evaluate(pred, gt, protocol=protocol, manifest=manifest, allow_missing=allow_missing,
                          workers=workers, cache=not no_cache, progress=not quiet, system=system,
                          data=data, split=split, overrides={"genre.embedder": embedder},
                          options={"vggish_weights": vggish_weights, "genre_db": genre_db,
                                   "labels": labels, "prompts": prompts, "motion": motion, "embedder": embedder, "weights": weights,
                                   "trust_remote_code": list(trust_remote_code), "device": device})
    from ..distributed import is_writer

    if not is_writer():  # under torchrun: rank 0 writes and prints
        return
    if out:
        result.write_json(out)
    if csv_out:
        result.write_csv(csv_out)
    if not quiet:
        click.echo(result.table())
        if out:
            click.echo(f"wrote {out}")
    else:
        for w in result.warnings:
            if w not in _SHOWN:
                click.echo(f"d2m-bench: warning: {w}", err=True)


def _inputs(pred, gt, manifest, protocol, data, genre_db, labels, motion, vggish_weights, prompts) -> dict:
    """Every file eval reads, by option, for the output-path check (folders count as all their files)."""
    from pathlib import Path

    from ..io.pairing import is_media

    found = {"--protocol": protocol if Path(protocol).is_file() else None, "--manifest": manifest,
             "--data": data, "--genre-db": genre_db, "--labels": labels, "--motion": motion,
             "--vggish-weights": vggish_weights, "--prompts": prompts}
    for option, folder in (("--pred", pred), ("--gt", gt)):
        if folder and Path(folder).is_dir():
            found[option] = [p for p in Path(folder).iterdir() if is_media(p)]
            found[f"{option} provenance.json"] = Path(folder) / "provenance.json"
    if manifest and Path(manifest).is_file():
        found["a file the manifest lists"] = _manifest_paths(Path(manifest))
    return found


def _manifest_paths(manifest) -> list:
    """Every gt/pred path a manifest names, read leniently: a manifest that eval will refuse
    (reported after the stale result is removed) still protects the files it lists."""
    import csv
    import io

    try:
        text = manifest.read_text(encoding="utf-8-sig", errors="replace")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except (OSError, csv.Error):
        return []
    return [manifest.parent / str(v).strip() for r in rows for k, v in r.items()
            if isinstance(k, str) and k.strip() in ("gt", "pred") and isinstance(v, str) and v.strip()]


_SHOWN: set = set()  # notes said at once, not repeated under -q


def _show_now(message, category, *args, **kwargs):
    from ..io.text import one_line

    _SHOWN.add(str(message))
    click.echo(f"d2m-bench: warning: {one_line(message)}", err=True)


def _check_names(protocol, embedder) -> None:
    """Unknown protocol and embedder names are errors with "did you mean", also when the section
    the name feeds is off for this run (a typo must not pass silently)."""
    from ..protocol import load_protocol

    load_protocol(protocol)
    if embedder is not None:
        from ..embedders import EMBEDDERS
        from ..errors import UserError
        from ..names import unknown

        if embedder not in EMBEDDERS:
            raise UserError("--embedder: " + unknown("embedder", embedder, EMBEDDERS))


def _under_results(path) -> bool:
    """An output under a results/ or runs/ folder: meant for the leaderboard."""
    from pathlib import Path

    return any(part in ("results", "runs") for part in Path(path).resolve().parent.parts)
