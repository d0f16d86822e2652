import click

from .set_options import embedder_options, loading_preset, set_options


@click.command("stats")
@click.argument("folder", type=click.Path())
@embedder_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The statistics file to write (.npz).")
@click.option("--embeddings", is_flag=True,
              help="Store the vectors too (KID, FAD-inf and the bootstrap of a later `fad` need them).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def stats_cmd(folder, embedder, layer, device, weights, vggish_weights, trust_remote_code, no_cache, loading, out,
              embeddings, quiet):
    """Write the reference statistics of FOLDER (mean, covariance, count, embedder key, audio
    settings, the set's fingerprint) for `d2m-bench fad --background STATS.npz`."""
    from ..distributed import is_writer
    from ..io.outputs import check_outputs
    from ..sets import make_stats

    check_outputs({"--out": out}, {"FOLDER": folder})
    info = make_stats(folder, out, embedder=embedder, layer=layer, embeddings=embeddings, cache=not no_cache,
                      progress=not quiet, options=set_options(device, weights, vggish_weights, trust_remote_code),
                      loading=loading_preset(loading))
    if is_writer() and not quiet:
        click.echo(f"wrote {out}: {info['files']} files, {info['vectors']} {info['layer']} vectors of "
                   f"{info['comparable_key']}, fingerprint {info['fingerprint'][:12]}")
