"""`d2m-bench mos aggregate`: screen ratings and compute MOS statistics."""
from pathlib import Path

import click


@click.group("mos")
def mos_cmd():
    """Aggregate subjective ratings (MOS) with screening and statistics."""


@mos_cmd.command("aggregate")
@click.argument("ratings", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="A .json file: mos.json's content there, the CSVs beside it (STEM_systems.csv, ...).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for mos.json and the CSVs; default: RATINGS_STEM-mos/ beside the CSV.")
@click.option("--protocol", "-p", default="mos-p808", show_default=True, help="MOS protocol name or TOML file.")
@click.option("--seed", type=int, default=None, help="Bootstrap seed (default: the protocol's).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=1), default=None,
              help="Bootstrap replicates (default: the protocol's).")
def aggregate_cmd(ratings, out, out_dir, protocol, seed, n_boot):
    """Screen raters and compute MOS per system x aspect from RATINGS, a long-format ratings CSV.

    RATINGS is what `d2m-bench survey export` writes (one row per rating).
    """
    from ..mos.aggregate import aggregate, output_paths, write_outputs
    from ..io.outputs import check_outputs
    from ..errors import UserError
    from ..results.tables import format_table

    if out is not None and out_dir is not None:
        raise UserError("give --out FILE.json or --out-dir DIR, not both")
    if out is not None and out.suffix.lower() != ".json":  # the old spelling of --out-dir
        click.echo("d2m-bench mos aggregate: warning: --out for a folder is deprecated; use --out-dir", err=True)
        out, out_dir = None, out
    out = out or out_dir or ratings.parent / f"{ratings.stem}-mos"
    # before any rating is read: never the ratings CSV or the protocol file, in a writable folder
    check_outputs({f"output {p.name}": p for p in output_paths(out)},
                  {"RATINGS": ratings, "--protocol": protocol if Path(protocol).is_file() else None})
    doc = aggregate(ratings, protocol=protocol, seed=seed, n_boot=n_boot)
    paths = write_outputs(doc, out)
    s = doc["screening"]["summary"]
    click.echo(f"raters kept {s['raters_kept']}/{s['raters']}, ratings kept {s['ratings_kept']}/{s['ratings']} "
               f"(checks {s['check_ratings']}, incomplete {s['ratings_dropped_incomplete']}, "
               f"outliers {s['ratings_dropped_outlier']})")
    for r in doc["screening"]["raters"]:
        if not r["kept"]:
            click.echo(f"  dropped {r['rater']}: {'; '.join(r['reasons'])}")
    from ..results.units import format_value

    fmt = lambda v: "n/a" if v is None else format_value(v, "score")  # noqa: E731 (MOS: on its scale)
    rows = [[r["aspect"], r["system"] + (" *" if r["is_reference"] else ""), fmt(r["mean"]),
             f"[{fmt(r['ci_t_low'])},{fmt(r['ci_t_high'])}]", f"[{fmt(r['ci_boot_low'])},{fmt(r['ci_boot_high'])}]",
             fmt(r["z_mos"]), r["n_ratings"], r["n_raters"], r["n_items"]] for r in doc["systems"]]
    click.echo(format_table(rows, ["aspect", "system", "MOS", "95% CI (t)", "95% CI (boot)", "zMOS", "n", "raters",
                                   "items"], align=["left", "left"] + ["right"] * 7))
    for p in doc["pairwise"]:
        if p["significant"]:
            click.echo(f"  {p['aspect']}: {p['system_a']} vs {p['system_b']} differ (p_holm={p['p_holm']:.3g}, {p['test']})")
    click.echo(f"protocol {doc['protocol']['name']} ({doc['protocol']['hash'][:12]}); wrote {', '.join(map(str, paths))}")
