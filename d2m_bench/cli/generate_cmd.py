"""`d2m-bench generate`: gt / VQ-VAE reconstruction / generated wavs from a D2M-GAN checkpoint."""
import click

from .grammar import out_dir
from .train_cmd import TRUST_HELP


@click.command("generate")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="checkpoint.pt of a `train d2m-low/high` run or of `import d2m-gan`.")
@click.option("--data", required=True, type=click.Path(file_okay=False, path_type=str), help="Built dataset folder.")
@click.option("--split", default="test", show_default=True, help="Dataset split to generate.")
@out_dir("Writes OUT_DIR/gt, /recon, /generated (<segment id>.wav) and OUT_DIR/provenance.json.", path_type=str)
@click.option("--vqvae", type=click.Path(dir_okay=False, path_type=str),
              help="VQ-VAE file (default: the one recorded in the checkpoint).")
@click.option("--denoise/--no-denoise", default=True, show_default=True,
              help="noisereduce the generated audio, as the released script always did (needs the 'denoise' extra); "
                   "recorded in provenance.json.")
@click.option("--limit", type=int, help="Only the first N segments of the split.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--trust-checkpoint", is_flag=True, help=TRUST_HELP)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def generate_cmd(checkpoint, data, split, out, vqvae, denoise, limit, device, trust_checkpoint, quiet):
    """Generate music for every segment of a split; then score with
    `d2m-bench eval --pred OUT/generated --gt OUT/gt`."""
    from ..io.outputs import check_output_folder
    from ..training.generate import generate

    check_output_folder("--out", out, {"--checkpoint": checkpoint, "--data": data, "--vqvae": vqvae},
                        claims=("gt", "recon", "generated", "provenance.json"))
    prov = generate(checkpoint, data, out, split=split, vqvae_path=vqvae, denoise=denoise, limit=limit,
                    device=device, trust=trust_checkpoint, progress=not quiet)
    click.echo(f"wrote {prov['n_clips']} clips x (gt, recon, generated) to {out}")
