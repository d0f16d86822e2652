"""`d2m-bench survey build|serve|export`: the MOS listening test."""
from pathlib import Path

import click

from .grammar import out_dir


@click.group("survey")
def survey_cmd():
    """Build, serve and export a MOS listening test (coherence with the dance; music quality)."""


@survey_cmd.command("build")
@click.option("--systems", "systems", multiple=True, required=True, metavar="NAME=DIR",
              help="A system's audio folder (files named by segment id). Repeat per system.")
@click.option("--videos", type=click.Path(path_type=Path), default=None,
              help="Dance videos named by segment id (needed for the coherence aspect).")
@out_dir("Survey folder to create.", path_type=Path)
@click.option("--raters", "n_raters", type=click.IntRange(min=1), default=20, show_default=True,
              help="Number of raters (one link each).")
@click.option("--items-per-rater", "per_rater", type=click.IntRange(min=1), default=None,
              help="Stimuli per rater per aspect (default: all system x segment pairs, at most 20).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the stimulus assignment and order (same seed, same survey).")
@click.option("--reference", default=None, help="System flagged as hidden reference (default: 'gt' if present).")
@click.option("--traps-per-rater", type=click.IntRange(min=0, max=5), default=1, show_default=True,
              help="Trapping clips per rater per aspect.")
@click.option("--trap-method", type=click.Choice(["auto", "espeak-ng", "beep"]), default="auto", show_default=True,
              help="How trapping clips say the expected answer: spoken by espeak-ng, or a count of beeps "
                   "(auto: espeak-ng if installed).")
@click.option("--aspects", default="coherence,quality", show_default=True, help="Comma-separated, in page order.")
@click.option("--force", is_flag=True,
              help="Replace an existing survey (refused while it is served; its ratings.sqlite is moved aside, "
                   "never deleted).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def build_cmd(systems, videos, out, n_raters, per_rater, seed, reference, traps_per_rater, trap_method, aspects, force,
              quiet):
    """Make stimuli, the rater assignment and the web page."""
    from ..errors import UserError
    from ..survey.build import build_survey

    aspects = tuple(a.strip() for a in aspects.split(",") if a.strip())
    if "coherence" in aspects and videos is None:
        raise UserError("--videos is needed for the coherence aspect")
    doc = build_survey(systems, videos, out, n_raters=n_raters, per_rater=per_rater, seed=seed,
                       reference=reference, traps_per_rater=traps_per_rater, aspects=aspects,
                       trap_method=trap_method, force=force, progress=not quiet)
    click.echo(f"{len(doc['stimuli'])} stimuli for {len(doc['items'])} segments x {len(doc['systems'])} systems, "
               f"{len(doc['raters'])} raters x {doc['items_per_rater']} per aspect (+{doc['traps_per_rater']} traps, "
               f"{doc['trap_method']}); reference: {doc['reference'] or 'none'}")
    if doc["items_left_out"]:
        click.echo(f"left out {len(doc['items_left_out'])} segment(s) missing somewhere: "
                   f"{', '.join(doc['items_left_out'][:8])}{' ...' if len(doc['items_left_out']) > 8 else ''}")
    for a, b in doc["balance"].items():
        click.echo(f"{a}: {b['stimuli_used']}/{b['stimuli_possible']} stimuli used, "
                   f"{b['ratings_per_stimulus_min']}..{b['ratings_per_stimulus_max']} ratings each")
    for name in doc.get("replaced_ratings", []):
        click.echo(f"kept the ratings of the replaced survey: moved ratings.sqlite to {out / name}")
    click.echo(f"wrote {out}/survey.json; rater links: `d2m-bench survey serve {out}`")


@survey_cmd.command("serve")
@click.argument("survey", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--verbose", is_flag=True, help="Log every request (rater tokens are redacted).")
@click.option("--idle-timeout", type=click.FloatRange(min=0.1, max=3600), default=20.0, show_default=True,
              help="Seconds a connection may wait for a request or stall within one before it is closed.")
@click.option("--max-connections", type=click.IntRange(min=1, max=65536), default=512, show_default=True,
              help="Open connections at once (lowered to fit the open-file limit); beyond it the longest-idle "
                   "connection is closed.")
def serve_cmd(survey, host, port, verbose, idle_timeout, max_connections):
    """Serve the page and record ratings into SURVEY/ratings.sqlite (Ctrl-C stops; ratings are kept)."""
    from ..errors import UserError
    from ..survey.server import make_server, raise_descriptor_limit

    raise_descriptor_limit()
    try:
        server = make_server(survey, host=host, port=port, quiet=not verbose, idle_timeout=idle_timeout,
                             max_connections=max_connections)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    h, p = server.server_address[:2]
    for rater, info in server.RequestHandlerClass.survey.doc["raters"].items():
        click.echo(f"{rater}: http://{h}:{p}/?rater={rater}&token={info['token']}")
    click.echo(f"serving {survey} on http://{h}:{p}/ (at most {server.max_connections} connections; "
               "Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()  # closes the store and releases the survey's lock


@survey_cmd.command("export")
@click.argument("survey", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Ratings CSV to write.")
def export_cmd(survey, out):
    """Write the long-format ratings CSV (input of `d2m-bench mos aggregate`) from folder SURVEY."""
    from ..io.outputs import check_outputs
    from ..survey.export import export_ratings

    check_outputs({"--out": out}, {"SURVEY": survey})  # --out SURVEY/ratings.sqlite would replace the ratings

    n = export_ratings(survey, out)
    click.echo(f"wrote {n} ratings to {out}")
