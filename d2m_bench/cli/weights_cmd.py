import click

from ..embedders.weights import KNOWN

_NAMES = list(KNOWN)  # files (vggish, panns-*, encodec-24k, ...) and Hugging Face folders (mert-*, ...)


@click.group("weights")
def weights_cmd():
    """Locate or download embedder weights: files (VGGish and its PCA, PANNs, EnCodec, ...) and Hugging
    Face repository folders (MERT, the tokenizers and text model laion_clap loads)."""


@weights_cmd.command("list")
@click.option("--vggish-weights", type=click.Path(), default=None, help="An explicit VGGish path to check first.")
@click.option("--weights", "explicit", multiple=True, metavar="NAME=PATH",
              help="An explicit path to check first for NAME (repeatable), as eval's --weights.")
def list_cmd(vggish_weights, explicit):
    """Where each file is looked for, and whether it is there."""
    from ..embedders.weights import candidates, digest, is_folder, is_official, parse_assignments

    paths = parse_assignments(explicit)
    if vggish_weights:
        paths.setdefault("vggish", vggish_weights)
    for name in _NAMES:
        spec = KNOWN[name]
        pin = spec["sha256"] or (spec["sha256_prefix"] and spec["sha256_prefix"] + "...") or "not pinned"
        click.echo(f"{name}: {spec['filename']} (sha256 {pin}, {spec['url']})")
        for origin, path in candidates(name, paths.get(name)):
            if path.is_dir() if is_folder(name) else path.is_file():
                sha = digest(name, path)
                if is_official(name, sha):
                    tag = "published file"
                elif spec["sha256"] is None and not spec["sha256_prefix"]:
                    tag = "no published hash pinned here: recorded by its own hash"
                elif spec["sha256"] is None and sha.startswith(spec["sha256_prefix"]):
                    tag = "name prefix matches; no full hash pinned, so not verified"
                else:
                    tag = "NOT the published file"
                click.echo(f"  found    {path}  [{origin}] sha256 {sha[:16]}... ({tag})")
            else:
                click.echo(f"  missing  {path}  [{origin}]")


@weights_cmd.command("download")
@click.argument("name", metavar="NAME")
@click.option("--dir", "dest_dir", type=click.Path(file_okay=False), default=None,
              help="Destination folder (default: the torch hub cache, $TORCH_HOME/hub/checkpoints; for Hugging "
                   "Face entries, the Hugging Face cache root).")
@click.option("--url", default=None, help="Another source (http(s):// or file://); NAME 'all' uses the defaults.")
@click.option("--expect-sha256", default=None,
              help="Required SHA-256 (default: the published one for the default URL); a full 64-hex digest "
                   "is required for files without a pinned hash (the PANNs checkpoints); for a Hugging Face entry, "
                   "its folder digest.")
@click.option("--revision", default=None,
              help="Hugging Face entries: the full 40-hex commit to fetch (pins the snapshot).")
@click.option("--force", is_flag=True, help="Download even if the file is already there.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def download_cmd(name, dest_dir, url, expect_sha256, revision, force, quiet):
    """Fetch NAME (or all) once, for machines with internet access; verified by SHA-256.

    NAME is one of `d2m-bench weights list`'s names (vggish, vggish-pca, panns-cnn14, ...) or all.
    """
    from ..embedders.weights import download
    from ..errors import UserError
    from ..names import unknown

    if name not in _NAMES + ["all"]:
        raise UserError(unknown("weights", name, _NAMES + ["all"]))

    if name == "all" and (url or revision):
        raise UserError("--url and --revision need a single NAME")
    for item in [n for n in _NAMES if KNOWN[n]["sha256"] or KNOWN[n]["sha256_prefix"]] if name == "all" else [name]:
        info = download(item, dest_dir=dest_dir, url=url, expect_sha256=expect_sha256, force=force,
                        progress=not quiet, revision=revision)
        state = "already present" if info.get("existing") else f"downloaded {info['bytes']} bytes"
        check = "sha256 verified" if info["verified"] else "sha256 not verified against a full published value"
        click.echo(f"{item}: {state} -> {info['path']} (sha256 {info['sha256']}; {check})")
