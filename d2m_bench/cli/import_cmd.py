"""`d2m-bench import {d2m-gan,vqvae}`: released weights -> files that generate / train accept."""
import json

import click

from .grammar import out_dir
from .train_cmd import TRUST_HELP

_FILE = click.Path(dir_okay=False, exists=True, path_type=str)


@click.group("import")
def import_cmd():
    """Turn released D2M-GAN / Jukebox weights into d2m-bench runs and VQ-VAE files."""


@import_cmd.command("d2m-gan")
@click.option("--mencoder", required=True, type=_FILE, help="Released mencoder.pt (motion encoder state dict).")
@click.option("--netg", "netg", required=True, type=_FILE, help="Released netG.pt (the level's code generator).")
@click.option("--vqvae", required=True, type=_FILE,
              help="The level's VQ-VAE: vqvae_high.pt for high, vqvae_low.pt for low (TikTok: vqvae_*_tk.pt).")
@click.option("--level", required=True, type=click.Choice(["high", "low"]), help="Which released model this is.")
@click.option("--dataset", required=True, type=click.Choice(["aistpp", "tiktok"]),
              help="Dataset the model was trained on (AIST++ models take genres, TikTok ones do not).")
@click.option("--netd", "netd", type=_FILE, help="netD.pt from a training log folder (default: fresh discriminator).")
@click.option("--optg", "optg", type=_FILE, help="optG.pt (default: fresh Adam state).")
@click.option("--optd", "optd", type=_FILE, help="optD.pt (default: fresh Adam state).")
@click.option("--step", type=click.IntRange(min=0), default=0, show_default=True,
              help="Step count to record (the released files do not store it).")
@out_dir("New run folder: checkpoint.pt, config.json, vqvae.pt.", path_type=str)
@click.option("--trust-checkpoint", is_flag=True, help=TRUST_HELP)
def d2m_gan_cmd(mencoder, netg, vqvae, level, dataset, netd, optg, optd, step, out, trust_checkpoint):
    """Build a run folder from the released D2M-GAN weights; then
    `d2m-bench generate --checkpoint OUT/checkpoint.pt ...` or `d2m-bench train d2m-LEVEL --out-dir OUT --resume`."""
    from ..io.outputs import check_output_folder
    from ..training.released import import_d2m_gan

    # --out the folder of the released files: its vqvae.pt (config.json, ...) would be replaced.
    check_output_folder("--out", out, {"--mencoder": mencoder, "--netg": netg, "--vqvae": vqvae, "--netd": netd,
                                       "--optg": optg, "--optd": optd},
                        claims=("checkpoint.pt", "config.json", "vqvae.pt"))
    summary = import_d2m_gan(mencoder=mencoder, netg=netg, vqvae=vqvae, out=out, level=level, dataset=dataset,
                             netd=netd, optg=optg, optd=optd, step=step, trust=trust_checkpoint)
    click.echo(json.dumps(summary))


@import_cmd.command("vqvae")
@click.argument("src", type=_FILE)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Output VQ-VAE file (d2m-bench format, for --vqvae of train and generate).")
@click.option("--trust-checkpoint", is_flag=True, help=TRUST_HELP)
def vqvae_cmd(src, out, trust_checkpoint):
    """Convert SRC, a Jukebox-layout VQ-VAE (D2M-GAN vqvae_high.pt / vqvae_low.pt, Jukebox vqvae.pth.tar)."""
    from pathlib import Path

    from ..errors import UserError
    from ..training.released import import_vqvae

    if Path(out).resolve() == Path(src).resolve():
        raise UserError("--out is the input file", out)
    from ..io.outputs import check_outputs

    check_outputs({"--out": out}, {"SRC": src})  # a hard link to SRC; an unwritable folder, before loading
    click.echo(json.dumps(import_vqvae(src, out, trust=trust_checkpoint)))
