"""Safety of the zip-based formats: zip bombs and XML entity expansion, on crafted files."""

from __future__ import annotations

import io
import time
import zipfile

import docx
import openpyxl
import pptx
import pytest
from lxml import etree

from data.types import ErrorCode
from ingest.errors import ParseError, UnsafeArchiveError
from ingest.parsers import docx as docx_parser
from ingest.parsers import ooxml
from ingest.parsers import pptx as pptx_parser
from ingest.parsers import xlsx as xlsx_parser

PARSERS = {"docx": docx_parser.parse, "pptx": pptx_parser.parse, "xlsx": xlsx_parser.parse}
LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]>\n"
)


def _office_file(kind: str) -> bytes:
    """A small valid file of `kind` with the words "safe words"."""
    buffer = io.BytesIO()
    if kind == "docx":
        document = docx.Document()
        document.add_paragraph("safe words")
        document.save(buffer)
    elif kind == "pptx":
        deck = pptx.Presentation()
        deck.slides.add_slide(deck.slide_layouts[0]).shapes.title.text = "safe words"
        deck.save(buffer)
    else:
        book = openpyxl.Workbook()
        book.active.append(["safe words"])
        book.save(buffer)
    return buffer.getvalue()


def _rewritten(data: bytes, extra: dict[str, bytes], edit: dict[str, bytes] | None = None) -> bytes:
    """`data` with members added (`extra`) or replaced (`edit`)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, (edit or {}).get(item.filename, src.read(item)))
        for name, blob in extra.items():
            dst.writestr(name, blob)
    return out.getvalue()


@pytest.mark.parametrize("kind", sorted(PARSERS))
def test_zip_bomb_member_is_refused_before_parsing(kind: str) -> None:
    # 64 MiB of zeros deflate to ~64 KB: 1000:1, where real Office parts stay under 40:1.
    bomb = _rewritten(_office_file(kind), {"customXml/item9.xml": b"\0" * (64 << 20)})
    assert len(bomb) < 200_000
    started = time.perf_counter()
    with pytest.raises(UnsafeArchiveError, match="compressed 1,0[0-9]{2}:1") as info:
        PARSERS[kind](bomb)
    assert info.value.code is ErrorCode.UNSAFE_ARCHIVE
    assert time.perf_counter() - started < 1.0  # decided from the directory, not by inflating


def test_total_size_and_member_count_limits() -> None:
    data = _office_file("docx")
    total = sum(m.file_size for m in zipfile.ZipFile(io.BytesIO(data)).infolist())
    with pytest.raises(UnsafeArchiveError, match="unpacks to"):
        ooxml.check_package(data, max_total_bytes=total - 1)
    ooxml.check_package(data, max_total_bytes=total)  # at the limit is fine
    many = _rewritten(data, {f"media/x{i}.bin": b"x" for i in range(ooxml.MAX_MEMBERS)})
    with pytest.raises(UnsafeArchiveError, match="members; the limit is 10,000"):
        docx_parser.parse(many)


@pytest.mark.parametrize(
    ("kind", "part", "root"),
    [
        ("docx", "word/document.xml", b"<w:document"),
        ("pptx", "ppt/slides/slide1.xml", b"<p:sld"),
        ("xlsx", "xl/worksheets/sheet1.xml", b"<worksheet"),
    ],
)
def test_billion_laughs_is_not_expanded(kind: str, part: str, root: bytes) -> None:
    data = _office_file(kind)
    xml = zipfile.ZipFile(io.BytesIO(data)).read(part)
    body = xml[xml.index(root) :]
    # 10^9 "lol"s (3 GB) if expanded, put where the text is.
    body = body.replace(b"safe words", b"safe words &lol9;", 1) if b"safe words" in body else body
    laughing = _rewritten(data, {}, {part: LAUGHS.encode() + body})
    started = time.perf_counter()
    try:
        text = PARSERS[kind](laughing).text
    except ParseError as exc:  # refusing the part outright is as good
        assert exc.code in (ErrorCode.CORRUPT, ErrorCode.NO_TEXT), exc.message
    else:
        assert "lol" not in text
    assert time.perf_counter() - started < 5.0


def test_parse_xml_does_not_expand_entities_or_read_files() -> None:
    external = b'<!DOCTYPE r [<!ENTITY f SYSTEM "file:///etc/hostname">]><r>x&f;</r>'
    assert ooxml.parse_xml(external).xpath("string()") == "x"
    try:
        root = ooxml.parse_xml(LAUGHS.encode() + b"<r>&lol9;</r>")
    except etree.XMLSyntaxError as exc:  # libxml2 2.12+ also stops at its amplification cap
        assert "amplification" in str(exc)
    else:
        assert "lol" not in root.xpath("string()")
