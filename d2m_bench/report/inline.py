"""`report --self-contained`: the written report as one HTML file, every image, figure file and
audio clip it links embedded as a data: URI, so that the page can be mailed or archived alone.

A post-processing step over the page `report` wrote: only relative links to files inside the
report folder are embedded (img/, audio/); anything else is left as it is.
"""
from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path

from ..io.atomic import write_text

TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".pdf": "application/pdf", ".wav": "audio/wav",
         ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".m4a": "audio/mp4",
         ".aac": "audio/aac"}
_LINK = re.compile(r'\b(src|href)="([^"#:?]+)"')


def data_uri(path: Path) -> str:
    mime = TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def inline_html(text: str, folder: Path) -> str:
    """``text`` with every relative src/href to a file under ``folder`` replaced by its data: URI."""
    import html

    root = folder.resolve()

    def swap(m):
        target = (root / html.unescape(m.group(2))).resolve()
        if not target.is_file() or not target.is_relative_to(root):
            return m.group(0)
        return f'{m.group(1)}="{data_uri(target)}"'

    return _LINK.sub(swap, text)


def inline_report(index, dest=None) -> Path:
    """Write ``dest`` (default: report.html beside ``index``) with everything embedded."""
    index = Path(index)
    dest = Path(dest) if dest else index.with_name("report.html")
    write_text(dest, inline_html(index.read_text(encoding="utf-8"), index.parent))
    return dest
