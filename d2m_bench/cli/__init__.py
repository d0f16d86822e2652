"""Command-line entry point.

Sub-commands live in their own modules and are imported only when invoked, so that
`d2m-bench --help` never imports librosa or torch.
"""
import sys

import click

from .. import __version__
from ..errors import UserError

# name -> (module, attribute, one-line help). Modules are relative to this package.
COMMANDS = {
    "eval": ("eval_cmd", "eval_cmd", "Score generated music against ground truth under a protocol."),
    "protocols": ("protocols_cmd", "protocols_cmd", "List the available evaluation protocols."),
    "leaderboard": ("leaderboard_cmd", "leaderboard_cmd", "Build results/leaderboard.csv from reported numbers and runs."),
    "demo": ("demo_cmd", "demo_cmd", "Make the synthetic demo set."),
    "data": ("data_cmd", "data_cmd", "Build, synthesise and inspect datasets (AIST++, TikTok, D2M-GAN release)."),
    "cache": ("cache_cmd", "cache_cmd", "Inspect or clear the per-file cache (onsets, embeddings)."),
    "train": ("train_cmd", "train_cmd", "Train the reference D2M-GAN (VQ-VAE, d2m-low, d2m-high)."),
    "generate": ("generate_cmd", "generate_cmd", "Write gt / reconstruction / generated wavs from a D2M-GAN checkpoint."),
    "import": ("import_cmd", "import_cmd", "Turn released D2M-GAN / Jukebox weights into runs generate and train accept."),
    "survey": ("survey_cmd", "survey_cmd", "Build and serve the MOS listening test; export its ratings."),
    "weights": ("weights_cmd", "weights_cmd", "Locate or download embedder weights (VGGish, its PCA)."),
    "mos": ("mos_cmd", "mos_cmd", "Aggregate MOS ratings: rater screening, CIs, pairwise tests, agreement."),
    "report": ("report_cmd", "report_cmd", "Write a static HTML report (figures, CIs, audio) of eval and MOS results."),
    "compare": ("compare_cmd", "compare_cmd", "Paired comparison of eval results: CIs, Wilcoxon, Holm, effect sizes."),
    "baseline": ("baseline_cmd", "baseline_cmd", "Run baselines (Dance2Music, CMT, Foley Music) and reference systems."),
    "validity": ("validity_cmd", "validity_cmd", "Measure what each metric can and cannot see: a battery of gt transformations."),
    "fad": ("fad_cmd", "fad_cmd", "FD, FAD-inf, KID and IS of an evaluation folder against a background folder or stats file."),
    "stats": ("stats_cmd", "stats_cmd", "Write the reference statistics file of a folder (for fad --background)."),
    "selftest": ("selftest_cmd", "selftest_cmd", "Check this install against the published scripts on a fixed battery."),
    "cite": ("cite_cmd", "cite_cmd", "Print the BibTeX of d2m-bench and of the papers a protocol or result relies on."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        from importlib import import_module

        from .style import apply_style

        return apply_style(getattr(import_module(f"{__name__}.{module}"), attr))

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="d2m-bench")
def cli():
    """d2m-bench: benchmark and evaluation toolkit for dance-to-music generation."""


def main(argv=None):
    try:
        cli.main(args=argv, prog_name="d2m-bench", standalone_mode=False)
    except UserError as exc:
        click.echo(f"d2m-bench: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        from .style import usage_error_line

        if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):  # a bare group: its help
            exc.show()
        else:
            click.echo(usage_error_line(exc), err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("d2m-bench: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    return 0
