"""What the Office Open XML parsers (DOCX, PPTX, XLSX) share: zip limits, safe XML, Strict.

A zip package is checked before any parser library opens it. Python's zipfile never inflates
a member past the size its directory declares, so the declared sizes bound what a parser can
be made to hold: their total, the member count, and each large member's compression ratio
(real Office parts stay under ~40:1, a zip bomb's are in the thousands). XML is parsed
without entity expansion or network access; python-docx and python-pptx parse that way
themselves, and openpyxl uses defusedxml when it is installed (it is a dependency).
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from ingest.errors import CorruptError, UnsafeArchiveError

MAX_TOTAL_BYTES = 1 << 30  # uncompressed; a 100 MB upload of XML at 10:1
MAX_MEMBERS = 10_000  # a 300-slide deck with media has ~1,000
MAX_RATIO = 200.0  # per member, checked for members over RATIO_MIN_BYTES
RATIO_MIN_BYTES = 1 << 20

_STRICT = re.compile(rb"http://purl\.oclc\.org/ooxml/([A-Za-z]+)/")


def check_package(
    data: bytes,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> zipfile.ZipFile:
    """Open `data` as a zip, refusing it (UnsafeArchiveError) when it is over the limits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CorruptError(f"Not a valid Office file (the zip package is damaged: {exc}).") from exc
    members = archive.infolist()
    if len(members) > max_members:
        raise UnsafeArchiveError(
            f"The package has {len(members):,} members; the limit is {max_members:,}."
        )
    total = sum(m.file_size for m in members)
    if total > max_total_bytes:
        raise UnsafeArchiveError(
            f"The package unpacks to {total:,} bytes; the limit is {max_total_bytes:,}."
        )
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size > RATIO_MIN_BYTES and ratio > max_ratio:
            raise UnsafeArchiveError(
                f"The member {m.filename!r} is compressed {ratio:,.0f}:1 (a zip bomb?); "
                f"the limit is {max_ratio:g}:1."
            )
    return archive


def xml_parser() -> Any:
    """An lxml parser that expands no entities, loads no DTD and reaches no network."""
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_xml(blob: bytes) -> Any:
    """Parse one package part with `xml_parser()`."""
    from lxml import etree

    return etree.fromstring(blob, parser=xml_parser())


def is_strict(archive: zipfile.ZipFile) -> bool:
    """True when the package's relationships use Strict Open XML (purl.oclc.org) names."""
    try:
        rels = archive.read("_rels/.rels")
    except KeyError:
        return False
    return _STRICT.search(rels) is not None


def to_transitional(archive: zipfile.ZipFile) -> bytes:
    """The package rewritten with transitional namespace and relationship names.

    Strict Open XML (ISO 29500 Strict) differs from the transitional form the parser
    libraries read mainly in its names: `http://purl.oclc.org/ooxml/<area>/<name>` for
    `http://schemas.openxmlformats.org/<area>/2006/<name>`. Members are copied as they are
    otherwise; the caller's limits were checked before (the output is no larger).
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
        for m in archive.infolist():
            blob = archive.read(m)
            if m.filename.endswith((".xml", ".rels")):
                blob = _STRICT.sub(rb"http://schemas.openxmlformats.org/\1/2006/", blob)
            target.writestr(m.filename, blob)
    return out.getvalue()
