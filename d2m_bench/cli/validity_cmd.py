"""`d2m-bench validity`: what each metric of a protocol can and cannot see, measured."""
import click

from .grammar import out_dir, workers


@click.command("validity")
@click.option("--gt", "gt", type=click.Path(file_okay=False), default=None, help="Folder of ground-truth clips.")
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="A built dataset instead of --gt: its audio/<split>/ folder is the gt.")
@click.option("--split", default="test", show_default=True, help="Split of --data.")
@click.option("--protocol", "-p", default="d2m-aistpp-2s", show_default=True, help="Protocol name or TOML file.")
@out_dir("Folder for validity.json, validity.csv, index.html and results/<transformation>.json.")
@click.option("--only", multiple=True, help="Run only these transformations (identity is always run). Repeatable.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise and the shuffle.")
@workers("Processes for the worker pass")
@click.option("--quiet", "-q", is_flag=True, help="No cards; only the paths written.")
def validity_cmd(gt, data, split, protocol, out, only, seed, workers, quiet):
    """Score a fixed, versioned battery of transformations of the gt (identity, shuffled gt, time
    shifts, tempo stretches, metronomes, noise, silence, gain, low-pass, mp3, reversal) against
    the gt under a protocol; test each against identity (Wilcoxon, Holm per metric, p < 0.01)
    and write a metric card per metric: what it detects, what it rewards, what it cannot see.
    """
    from pathlib import Path

    from ..errors import UserError
    from ..io.outputs import check_output_folder
    from ..validity.page import write_page
    from ..validity.run import card_lines, run_validity

    if (gt is None) == (data is None):
        raise UserError("give --gt DIR or --data DIR (one of them)")
    if data is not None:
        from ..data.dataset import Dataset

        gt = str(Dataset(data).root / "audio" / split)
    check_output_folder("--out-dir", out, {"--gt": [Path(gt)]},
                        claims=("validity.json", "validity.csv", "index.html", "results"))
    doc = run_validity(gt, protocol=protocol, out=out, seed=seed, workers=workers, progress=not quiet,
                       only=list(only) or None)
    page = write_page(doc, out)
    if not quiet:
        for line in card_lines(doc) + [f"note: {n}" for n in doc.get("notes", [])]:
            click.echo(line)
    click.echo(f"wrote {Path(out) / 'validity.json'}, {Path(out) / 'validity.csv'}, {page}")
