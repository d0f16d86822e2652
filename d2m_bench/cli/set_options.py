"""Options that `fad` and `stats` share: the embedder, its layer, weights and device."""
import click

LOADINGS = ("d2m", "audioldm-eval", "fadtk")
DEVICE_HELP = "Where the embedder runs: cpu, cuda (cuda:N), mps, or auto (a GPU when present)."


def embedder_options(f):
    for option in reversed([
        click.option("--embedder", "-e", default="vggish", show_default=True, help="A registered embedder."),
        click.option("--layer", default=None, help="The embedder's output to compare (default: its first)."),
        click.option("--device", default="cpu", show_default=True, help=DEVICE_HELP),
        click.option("--weights", "weights", multiple=True, metavar="NAME=PATH",
                     help="Weights file of an embedder (repeatable), as eval's --weights."),
        click.option("--vggish-weights", type=click.Path(), default=None, help="Path to vggish-10086976.pth."),
        click.option("--trust-remote-code", "trust_remote_code", multiple=True, metavar="NAME",
                     help="Let the weights folder of embedder NAME run the model code it ships (MERT)."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the per-file cache."),
        click.option("--loading", default="d2m", show_default=True, type=click.Choice(LOADINGS),
                     help="How files are read and resampled: d2m-bench's own (d2m), or as a peer tool does "
                          "(audioldm-eval: first channel, DC removed, torchaudio's sinc; fadtk: sox to 16 bits)."),
    ]):
        f = option(f)
    return f


def loading_preset(name: str) -> dict | None:
    """The ``loading`` table of a ``--loading`` name (None: d2m-bench's own)."""
    from ..io.loading import PRESETS

    return None if name == "d2m" else dict(PRESETS[name])


def set_options(device, weights, vggish_weights, trust_remote_code) -> dict:
    """The ``options`` dict of ``score_sets`` / ``make_stats`` / ``evaluate``."""
    from ..embedders.weights import parse_assignments

    return {"device": device, "weights": parse_assignments(weights), "vggish_weights": vggish_weights,
            "trust_remote_code": list(trust_remote_code)}
