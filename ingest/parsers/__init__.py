"""One parser module per format; `PARSERS` maps a format to its `module:function` path."""

from __future__ import annotations

# Dotted paths, not imports: loading the registry must not import any parser library.
PARSERS: dict[str, str] = {
    "pdf": "ingest.parsers.pdf:parse",
    "docx": "ingest.parsers.docx:parse",
    "pptx": "ingest.parsers.pptx:parse",
    "xlsx": "ingest.parsers.xlsx:parse",
    "markdown": "ingest.parsers.markdown:parse",
    "html": "ingest.parsers.html:parse",
    "text": "ingest.parsers.text:parse",
}


def parsers_for(*, docx_comments: bool = False) -> dict[str, str]:
    """PARSERS with the options a deployment chose (Word review comments in the text)."""
    if docx_comments:
        return {**PARSERS, "docx": "ingest.parsers.docx:parse_with_comments"}
    return dict(PARSERS)
