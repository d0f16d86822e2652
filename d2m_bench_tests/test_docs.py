"""The README and the docs site: the README's opening and length, every relative link and
anchor, the site navigation, and the generated protocol reference.

`make docs` (run by CI) builds the whole site with --strict; these tests are the fast part that
needs neither MkDocs nor a build.
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
import unicodedata
from pathlib import Path

import pytest

from d2m_bench.protocol_reference import (REFERENCE_PAGE, file_comments, protocol_reference,
                                          protocol_section)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PROTOCOL_FILES = sorted((ROOT / "protocols").glob("*.toml"))
NON_PARAMETERS = {"name", "description", "citation", "command"}

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _prose(text: str) -> str:
    """Markdown without fenced code blocks and code spans (links there are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """The id Python-Markdown's toc extension gives a heading (its default slugify)."""
    text = re.sub(r"[`*_]", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(markdown: str) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", markdown), re.M)}


def _generated_reference() -> str:
    return protocol_reference(PROTOCOL_FILES)


def _page_text(path: Path) -> str | None:
    if path == DOCS / REFERENCE_PAGE:
        return _generated_reference()
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _markdown_files() -> list[Path]:
    return [README] + sorted(DOCS.glob("**/*.md"))


# --- README ---------------------------------------------------------------------------------

def test_readme_opens_with_the_two_fresh_machine_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    body = [ln for ln in lines if ln.strip()]
    assert body[0].startswith("# "), "the README starts with its title"
    assert body[1].startswith("```"), "the first thing after the title is the command block"
    end = next(i for i in range(2, len(body)) if body[i].startswith("```"))
    commands = [ln.split("#")[0].strip() for ln in body[2:end]]
    assert commands == ["make demo", "make test"]


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= 170, f"README has {n} lines; the detail belongs in docs/"


def test_readme_links_every_command_page():
    targets = {t.split("#")[0] for t in LINK.findall(_prose(README.read_text(encoding="utf-8")))}
    for page in ("quickstart", "install", "eval", "genre-fad", "alignment", "data", "baselines",
                 "train", "mos", "leaderboard", "deviations", "bad-input", "api"):
        assert f"docs/{page}.md" in targets, page


# --- links ----------------------------------------------------------------------------------

def _relative_links():
    for source in _markdown_files():
        for target in LINK.findall(_prose(source.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            yield source, target


def test_every_relative_link_resolves():
    broken = []
    for source, target in _relative_links():
        path, _, anchor = target.partition("#")
        dest = (source.parent / path).resolve() if path else source
        text = _page_text(dest)
        if text is None and not dest.exists():
            broken.append(f"{source.relative_to(ROOT)}: {target} (no such file)")
        elif anchor and text is not None and anchor not in _anchors(text):
            broken.append(f"{source.relative_to(ROOT)}: {target} (no heading with that anchor)")
    assert not broken, "\n".join(broken)


def test_link_checker_finds_a_broken_link_and_anchor(tmp_path):
    """The checker's own pieces on a page written here: one good link, one bad file, one bad anchor."""
    page = "# Top\n\n## The `eval` page: scoring\n\n[a](#the-eval-page-scoring) [b](#nope) [c](x.md) `[d](y.md)`\n"
    links = LINK.findall(_prose(page))
    assert links == ["#the-eval-page-scoring", "#nope", "x.md"]
    assert _anchors(page) == {"top", "the-eval-page-scoring"}


# --- site navigation ------------------------------------------------------------------------

def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_pages(item)]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _nav_pages(value)]
    return []


def test_nav_lists_every_page_and_only_existing_ones():
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the docs extra (mkdocs)")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    assert len(nav) == len(set(nav)), "a page is listed twice"
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.glob("**/*.md") if "hooks" not in p.parts}
    assert REFERENCE_PAGE not in pages, "the protocol reference is generated, never a file in docs/"
    assert sorted(set(nav) - pages - {REFERENCE_PAGE}) == [], "nav names pages that do not exist"
    assert sorted(pages - set(nav)) == [], "pages in docs/ missing from mkdocs.yml nav"
    assert REFERENCE_PAGE in nav


# --- protocol reference ---------------------------------------------------------------------

def _flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _section_of(page: str, name: str) -> str:
    start = page.index(f"## `{name}`")
    nxt = page.find("\n## ", start + 1)
    return page[start:] if nxt < 0 else page[start:nxt]


def test_every_protocol_file_is_in_the_reference_with_every_parameter():
    assert len(PROTOCOL_FILES) >= 7
    page = _generated_reference()
    for path in PROTOCOL_FILES:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        section = _section_of(page, data["name"])
        assert data["description"] in section
        assert data["citation"] in section
        assert f"`d2m-bench {data['command']}`" in section
        assert f"`protocols/{path.name}`" in section
        rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([^`]+)` \| `([^`]*)` \|", section, re.M)}
        params = _flatten({k: v for k, v in data.items() if k not in NON_PARAMETERS})
        assert rows == {k: json.dumps(v) for k, v in params.items()}, path.name
        # The summary table links the section.
        assert f"[`{data['name']}`](#{_slug('`' + data['name'] + '`')})" in page


def test_reference_shows_the_hash_over_the_parameters(tmp_path):
    """A protocol written here: its hash is the SHA-256 of the canonical JSON of its parameters
    (name, description, citation and command left out), computed by hand in this test."""
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\ndescription = "d"\ncitation = "c"\ncommand = "eval"\n'
                    '[audio]\nsample_rate = 16000\n[beats]\nvariant = "d2m"\nbin_seconds = 1.0\n')
    params = {"audio": {"sample_rate": 16000}, "beats": {"variant": "d2m", "bin_seconds": 1.0}}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    section = protocol_section(path)
    assert f"`{digest}`" in section
    assert f"`{digest[:12]}`" in section


def test_comments_become_notes():
    text = "\n".join([
        'name = "x"   # not a parameter',
        "[audio]",
        "# Read before resampling.",
        "sample_rate = 22050",
        '# pred_to_gt: trim or pad.',
        '# strict: error.',
        'length_policy = "pred_to_gt"  # how lengths are reconciled',
        'label = "a # b"   # the hash sign above is inside a string',
        "",
        "# a comment after a blank line belongs to nothing",
        "",
        "[beats.onset]              # peak picking",
        "wait = 1",
    ])
    keys, tables = file_comments(text)
    assert tables == {"audio": "Read before resampling.", "beats.onset": "peak picking"}
    assert keys["audio.sample_rate"] == ""
    assert keys["audio.length_policy"] == "pred_to_gt: trim or pad. strict: error. \u2014 how lengths are reconciled"
    assert keys["audio.label"] == "the hash sign above is inside a string"
    assert keys["beats.onset.wait"] == ""
    assert keys["name"] == "not a parameter"


def test_a_pipe_in_a_value_keeps_the_table_intact(tmp_path):
    path = tmp_path / "pipe.toml"
    path.write_text('name = "pipe"\n[pairing]\nrule = "a|b"   # note with | a pipe\n')
    row = next(ln for ln in protocol_section(path).splitlines() if "pairing.rule" in ln)
    cells = re.split(r"(?<!\\)\|", row)[1:-1]
    assert len(cells) == 3, row
    assert "a&#124;b" in cells[1]


# --- issue 23: citable, navigable docs ---------------------------------------------------------

def _table_cells(text: str):
    for i, line in enumerate(FENCE.sub("", text).splitlines(), 1):
        if line.lstrip().startswith("|"):
            for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]:
                yield i, cell.strip()


def test_no_table_cell_over_200_characters():
    long = [f"{p.relative_to(ROOT)}:{i}: {len(c)} characters: {c[:60]}..." for p in _markdown_files()
            for i, c in _table_cells(_page_text(p) or "") if len(c) > 200]
    long += [f"protocol reference:{i}: {len(c)}" for i, c in _table_cells(_generated_reference()) if len(c) > 200
             and not c.startswith("`")]  # parameter values are code, shown whole
    assert long == [], "\n".join(long)


def test_install_page_lists_every_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    page = (DOCS / "install.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z-]+)` \|", page, re.M))
    assert sorted(set(extras) - listed) == []


def test_eval_page_lists_every_protocol_from_the_files():
    from d2m_bench.protocol_reference import protocol_table, update_eval_page

    page = (DOCS / "eval.md").read_text(encoding="utf-8")
    assert update_eval_page(DOCS / "eval.md", PROTOCOL_FILES) == page, \
        "regenerate the table: python -m d2m_bench.protocol_reference"
    table = protocol_table(PROTOCOL_FILES)
    for path in PROTOCOL_FILES:
        name = tomllib.loads(path.read_text(encoding="utf-8"))["name"]
        assert f"| [`{name}`](protocol-reference.md#" in table


def test_cite_page_is_generated_from_the_citations():
    from d2m_bench.citations import PAPERS, docs_page

    page = (DOCS / "cite.md").read_text(encoding="utf-8")
    assert page == docs_page(), "regenerate: python -m d2m_bench.citations > docs/cite.md"
    for p in PAPERS.values():
        assert (p.bibtex or p.text) in page


def test_citation_cff_names_this_version():
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the docs extra (mkdocs)")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert cff["cff-version"] == "1.2.0" and cff["version"] == project["version"]
    assert cff["license"] == project["license"] and cff["authors"] and cff["title"].startswith("d2m-bench")


def test_docs_link_the_paper_the_code_and_the_dataset():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for url in ("https://arxiv.org/abs/2204.00604", "https://github.com/L-YeZhu/D2M-GAN",
                "https://google.github.io/aistplusplus_dataset/download.html"):
        assert f"]({url})" in index, url
    assert "https://google.github.io/aistplusplus_dataset/download.html" in (DOCS / "data.md").read_text()


def test_code_blocks_wrap_and_make_docs_installs_only_the_docs_extra():
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the docs extra (mkdocs)")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace("!!python", "#"))
    css = "".join((DOCS / c).read_text() for c in config.get("extra_css", []))
    assert re.search(r"pre > code\s*\{[^}]*white-space:\s*pre-wrap", css)
    make = (ROOT / "Makefile").read_text()
    target = re.search(r"^docs: (.*)$", make, re.M).group(1).split()
    stamp = re.search(r"^\$\(DOCS_STAMP\):.*\n((?:\t.*\n)+)", make, re.M).group(1)
    assert target == ["$(DOCS_STAMP)"] and "'.[docs]'" in stamp and "torch" not in stamp


def test_readme_python_example_prints_the_table_it_promises(tmp_path, capsys):
    import contextlib
    import io

    from d2m_bench.synth.demo import make_demo

    demo = make_demo(tmp_path / "demo", n=2)
    (tmp_path / "results" / "runs").mkdir(parents=True)
    block = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    code = (block.replace('"out/mine"', repr(str(demo / "generated")))
            .replace('"data/aistpp/audio/test"', repr(str(demo / "gt")))
            .replace('"results/runs/mine.json"', repr(str(tmp_path / "results" / "runs" / "mine.json"))))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    doc = json.loads((tmp_path / "results" / "runs" / "mine.json").read_text())
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("protocol d2m-aistpp-2s (")  # eval's table, as the comment says
    cov = doc["aggregate"]["beats_coverage"]["value"]
    row = next(line for line in lines if line.startswith("beats_coverage "))
    assert f"{100 * cov:.1f}%" in row.split()
    assert float(lines[-1]) == cov  # and the raw number behind it
