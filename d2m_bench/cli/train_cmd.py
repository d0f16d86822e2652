"""`d2m-bench train {vqvae,d2m-low,d2m-high}`: the reference D2M-GAN trainer."""
import json

import click

from .grammar import out_dir

TRUST_HELP = ("Allow the VQ-VAE file to hold pickled Python objects besides tensors (e.g. a Jukebox vqvae.pth.tar "
              "that stores its hparams object); they load as inert stubs and never run. D2M-GAN vqvae_*.pt and "
              "d2m-bench files never need it. Only for files you trust.")

_COMMON = [
    click.option("--data", "data", required=True, type=click.Path(file_okay=False, path_type=str),
                 help="Built dataset folder (dataset.json + manifest.csv)."),
    out_dir("Run folder: config.json, losses.csv, checkpoint.pt, samples/.", path_type=str),
    click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True, path_type=str),
                 help="TOML or JSON file with any settings (see docs/train.md)."),
    click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.pt."),
    click.option("--size", type=click.Choice(["paper", "tiny"]), help="Model size preset (default: paper)."),
    click.option("--steps", "max_steps", type=int, help="Stop after this many optimiser steps (>= 1)."),
    click.option("--epochs", type=int, help="Stop after this many epochs (>= 1)."),
    click.option("--batch-size", type=int,
                 help="Global batch size; under torchrun it is split evenly across the ranks (default 16 / 4)."),
    click.option("--seed", type=int, help="Seed for initialisation, data order and augmentation (default 0)."),
    click.option("--device", help="auto (default), cpu, cuda or cuda:N; under torchrun each rank takes its LOCAL_RANK GPU."),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any setting (repeatable)."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
]


def _common(fn):
    for opt in reversed(_COMMON):
        fn = opt(fn)
    return fn


def _overrides(sets, **named):
    from ..errors import UserError
    from ..training.config import parse_override

    if named.get("max_steps") is not None and named["max_steps"] < 1:
        # max_steps = 0 means "by epochs" in a config file; on the command line it would be a surprise.
        raise UserError(f"--steps must be >= 1, got {named['max_steps']}")
    out = {k: v for k, v in named.items() if v is not None}
    out.update(dict(parse_override(s) for s in sets))
    return out


# What a run writes in --out; an input there (or --out the dataset itself) would be overwritten.
_RUN_NAMES = ("config.json", "losses.csv", "checkpoint.pt", "vqvae.pt", "samples", "tb")


def _check_run_folder(out, resume, **inputs):
    from ..io.outputs import check_output_folder

    if resume:
        inputs.pop("config", None)  # --resume reads and rewrites OUT/config.json by design
    check_output_folder("--out", out, {f"--{k}": v for k, v in inputs.items()}, claims=_RUN_NAMES)


def _file(path):
    from ..training.config import read_config_file

    return read_config_file(path) if path else None


@click.group("train")
def train_cmd():
    """Train the reference D2M-GAN model (VQ-VAE first, then the low- or high-level GAN)."""


@train_cmd.command("vqvae")
@_common
def vqvae_cmd(data, out, config_path, resume, size, max_steps, epochs, batch_size, seed, device, sets, quiet):
    """Train a Jukebox-layout VQ-VAE from scratch on the dataset's train music."""
    from ..training.train_vqvae import train_vqvae

    _check_run_folder(out, resume, data=data, config=config_path)
    summary = train_vqvae(data, out, config_file=_file(config_path), resume=resume, progress=not quiet,
                          overrides=_overrides(sets, size=size, max_steps=max_steps, epochs=epochs,
                                               batch_size=batch_size, seed=seed, device=device))
    click.echo(json.dumps({k: summary[k] for k in ("step", "epoch", "vqvae")}))


def _d2m(level):
    @_common
    @click.option("--vqvae", "vqvae", type=click.Path(dir_okay=False, path_type=str),
                  help="Frozen VQ-VAE (from `train vqvae`, or a Jukebox / D2M-GAN vqvae_*.pt).")
    @click.option("--straight-through/--no-straight-through", default=None,
                  help="Pass the wav/mel loss gradient through the codebook lookup, scaled by st_grad_scale "
                       "(0.01; at 1 it diverged in tests). Default off = released behaviour (docs/train.md).")
    @click.option("--trust-checkpoint", is_flag=True, default=None, help=TRUST_HELP)
    def cmd(data, out, config_path, resume, size, max_steps, epochs, batch_size, seed, device, sets, quiet,
            vqvae, straight_through, trust_checkpoint):
        from ..training.train_d2m import train_d2m

        _check_run_folder(out, resume, data=data, config=config_path, vqvae=vqvae)
        summary = train_d2m(data, out, config_file=_file(config_path), resume=resume, progress=not quiet,
                            overrides=_overrides(sets, level=level, size=size, max_steps=max_steps, epochs=epochs,
                                                 batch_size=batch_size, seed=seed, device=device, vqvae=vqvae,
                                                 straight_through=straight_through,
                                                 trust_checkpoint=trust_checkpoint))
        click.echo(json.dumps({k: summary[k] for k in ("step", "epoch", "checkpoint")}))

    cmd.__doc__ = (f"Train the {level}-level D2M-GAN (VQ-VAE level {2 if level == 'high' else 1}) "
                   "on the dataset's train split (AIST++ or TikTok, from dataset.json).")
    return cmd


train_cmd.command("d2m-low")(_d2m("low"))
train_cmd.command("d2m-high")(_d2m("high"))
