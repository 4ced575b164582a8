"""The Word content beyond paragraphs and tables: text boxes, equations, notes, comments,
Strict Open XML. Documents are built with python-docx plus the raw XML Word writes."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
import pytest
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.oxml import parse_xml

from data.types import Section
from ingest.parsers.docx import COMMENTS_PATH, ENDNOTES_PATH, FOOTNOTES_PATH, parse

FIXTURES = Path(__file__).parent.parent / "fixtures"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = (
    f'xmlns:w="{W_NS}" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
    'xmlns:v="urn:schemas-microsoft-com:vml" '
    'xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math"'
)


def _box(text: str) -> str:
    return f"<w:txbxContent><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:txbxContent>"


# A shape as Word 2010+ writes it: DrawingML first, the same text again as VML fallback.
SHAPE_PARAGRAPH = (
    f"<w:p {NS}><w:r><w:t>Anchor line.</w:t></w:r><w:r><mc:AlternateContent>"
    f'<mc:Choice Requires="wps"><w:drawing><wps:wsp><wps:txbx>{_box("Boxed words")}'
    "</wps:txbx></wps:wsp></w:drawing></mc:Choice>"
    f"<mc:Fallback><w:pict><v:shape><v:textbox>{_box('Boxed words')}</v:textbox></v:shape>"
    "</w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>"
)
# An old VML-only text box holding a nested box.
VML_PARAGRAPH = (
    f"<w:p {NS}><w:r><w:pict><v:shape><v:textbox><w:txbxContent><w:p><w:r><w:t>Outer box"
    f"</w:t></w:r><w:r><w:pict><v:shape><v:textbox>{_box('Inner box')}</v:textbox></v:shape>"
    "</w:pict></w:r></w:p></w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>"
)
# E = mc^2 and x = (-b ± √(b²-4ac)) / 2a as Word stores them.
MATH_PARAGRAPH = (
    f"<w:p {NS}><w:r><w:t xml:space='preserve'>Energy: </w:t></w:r><m:oMath>"
    "<m:r><m:t>E=m</m:t></m:r><m:sSup><m:e><m:r><m:t>c</m:t></m:r></m:e>"
    "<m:sup><m:r><m:t>2</m:t></m:r></m:sup></m:sSup></m:oMath></w:p>"
)
QUADRATIC = (
    f"<w:p {NS}><m:oMathPara><m:oMath><m:r><m:t>x=</m:t></m:r><m:f><m:num><m:r><m:t>-b±"
    "</m:t></m:r><m:rad><m:radPr><m:degHide m:val='1'/></m:radPr><m:deg/><m:e><m:sSup><m:e>"
    "<m:r><m:t>b</m:t></m:r></m:e><m:sup><m:r><m:t>2</m:t></m:r></m:sup></m:sSup><m:r><m:t>-4ac"
    "</m:t></m:r></m:e></m:rad></m:num><m:den><m:r><m:t>2a</m:t></m:r></m:den></m:f>"
    "</m:oMath></m:oMathPara></w:p>"
)


def _notes_part(document: docx.document.Document, kind: str, texts: list[str]) -> None:
    """Add a footnotes/endnotes part with separators and the given notes."""
    notes = "".join(
        f'<w:{kind} w:id="{i}"><w:p><w:r><w:t>{t}</w:t></w:r></w:p></w:{kind}>'
        for i, t in enumerate(texts, start=1)
    )
    separator = (
        f'<w:{kind} w:type="separator" w:id="0"><w:p><w:r><w:t>----</w:t></w:r></w:p></w:{kind}>'
    )
    blob = f'<w:{kind}s xmlns:w="{W_NS}">{separator}{notes}</w:{kind}s>'.encode()
    content_type = f"application/vnd.openxmlformats-officedocument.wordprocessingml.{kind}s+xml"
    part = Part(PackURI(f"/word/{kind}s.xml"), content_type, blob, document.part.package)
    document.part.relate_to(part, RT.FOOTNOTES if kind == "footnote" else RT.ENDNOTES)


def _built() -> bytes:
    document = docx.Document()
    document.add_paragraph("Opening.")
    body = document.element.body
    for xml in (SHAPE_PARAGRAPH, VML_PARAGRAPH, MATH_PARAGRAPH, QUADRATIC):
        body.insert(len(body) - 1, parse_xml(xml))  # before the final w:sectPr
    _notes_part(document, "footnote", ["First footnote.", "Second footnote."])
    _notes_part(document, "endnote", ["The endnote."])
    paragraph = document.add_paragraph("Reviewed text.")
    document.add_comment(paragraph.runs, text="Check this figure.", author="Ann")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_boxes_once_equations_and_notes_in_order() -> None:
    parsed = parse(_built())
    assert parsed.text == (
        "Opening.\n\nAnchor line.\n\nBoxed words\n\nOuter box\n\nInner box\n\n"
        "Energy: E=mc^2\n\nx=(-b±√(b^2-4ac))/(2a)\n\nReviewed text.\n\n"
        "First footnote.\n\nSecond footnote.\n\nThe endnote."
    )
    assert parsed.sections == [
        Section(parsed.text.index("First footnote"), FOOTNOTES_PATH),
        Section(parsed.text.index("The endnote"), ENDNOTES_PATH),
    ]


def test_comments_only_when_asked() -> None:
    parsed = parse(_built(), comments=True)
    assert parsed.text.endswith("The endnote.\n\nAnn: Check this figure.")
    assert parsed.sections[-1] == Section(parsed.text.index("Ann:"), COMMENTS_PATH)
    assert "Check this figure" not in parse(_built()).text


def test_real_shapes_document_gives_each_box_once() -> None:
    text = parse((FIXTURES / "docx" / "docx-shapes.docx").read_bytes()).text
    for label in ("<inline-image>", "<inline-image1>", "<inline-image2>", "<floating-shape>"):
        assert text.count(label) == 1, label


def _to_strict(data: bytes) -> bytes:
    """The package with Strict Open XML names, as Word's "Strict Open XML Document" saves."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            blob = src.read(item)
            for area in (b"wordprocessingml", b"officeDocument", b"drawingml"):
                blob = blob.replace(
                    b"http://schemas.openxmlformats.org/" + area + b"/2006/",
                    b"http://purl.oclc.org/ooxml/" + area + b"/",
                )
            dst.writestr(item, blob)
    return out.getvalue()


def test_strict_open_xml_reads_like_transitional() -> None:
    data = _built()
    strict = _to_strict(data)
    assert b"purl.oclc.org/ooxml/officeDocument/relationships/officeDocument" in (
        zipfile.ZipFile(io.BytesIO(strict)).read("_rels/.rels")
    )
    with pytest.raises(Exception, match="officeDocument"):  # what python-docx alone says
        docx.Document(io.BytesIO(strict))
    assert parse(strict).text == parse(data).text
