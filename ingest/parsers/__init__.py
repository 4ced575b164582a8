"""One parser module per format; `PARSERS` maps a format to its `module:function` path."""

from __future__ import annotations

# Dotted paths, not imports: loading the registry must not import any parser library.
PARSERS: dict[str, str] = {
    "pdf": "ingest.parsers.pdf:parse",
    "docx": "ingest.parsers.docx:parse",
    "markdown": "ingest.parsers.markdown:parse",
    "html": "ingest.parsers.html:parse",
    "text": "ingest.parsers.text:parse",
}
