"""MkDocs hook: adds protocol-reference.md, generated from the shipped protocols/*.toml.

The page is built from the files at build time (never committed), so it cannot drift from
them; the generator is d2m_bench.protocol_reference (tested in test_docs.py).
"""
from mkdocs.structure.files import File

from d2m_bench.protocol_reference import REFERENCE_PAGE, protocol_reference
from d2m_bench.resources import shipped_dir


def on_files(files, config):
    paths = sorted(shipped_dir("protocols").glob("*.toml"))
    files.append(File.generated(config, REFERENCE_PAGE, content=protocol_reference(paths)))
    return files
