import click

from .set_options import embedder_options, loading_preset, set_options


@click.command("fad")
@click.option("--background", "-b", required=True, type=click.Path(),
              help="Folder of reference audio, or a statistics file from `d2m-bench stats`.")
@click.option("--eval", "evaluation", required=True, type=click.Path(), help="Folder of the audio to score.")
@embedder_options
@click.option("--kid-subsets", type=int, default=100, show_default=True, help="KID: random subset pairs.")
@click.option("--kid-subset-size", type=int, default=1000, show_default=True,
              help="KID: vectors per subset (cut to the smaller set's size).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the JSON result here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table.")
def fad_cmd(background, evaluation, embedder, layer, device, weights, vggish_weights, trust_remote_code, no_cache,
            loading, kid_subsets, kid_subset_size, out, quiet):
    """FD, FAD-inf, KID, IS and per-file FD of an evaluation folder against a background folder
    or statistics file: unpaired, any set sizes (as `fadtk MODEL background/ eval/`).

    Runs under torchrun too: every rank embeds its share of the files, rank 0 writes."""
    import json

    from ..distributed import is_writer
    from ..io.outputs import check_outputs
    from ..sets import score_sets

    check_outputs({"--out": out}, {"--background": background, "--eval": evaluation})
    result = score_sets(background, evaluation, embedder=embedder, layer=layer, cache=not no_cache,
                        progress=not quiet, options=set_options(device, weights, vggish_weights, trust_remote_code),
                        kid={"subsets": kid_subsets, "subset_size": kid_subset_size}, loading=loading_preset(loading))
    if not is_writer():
        return
    if out:
        from pathlib import Path

        from ..io.atomic import write_text

        write_text(Path(out), json.dumps(result, indent=1, allow_nan=False) + "\n")
    if not quiet:
        from ..sets.score import table

        click.echo(table(result))
        if out:
            click.echo(f"wrote {out}")
