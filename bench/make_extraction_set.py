"""Write the generated part of bench/extraction_set: documents of known text, with references.

    .venv/bin/python bench/make_extraction_set.py

Each document is made from the text below with python-docx, python-pptx, openpyxl or PDFium,
and its reference (`<name>.ref.txt`) is the text a reader sees in it. The Word files carry
what was lost before (text boxes, footnotes, equations); the deck carries tables, groups and
notes; the workbook merged cells and two sheets. The output is committed; rerun only to
change the set.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docx  # noqa: E402
import openpyxl  # noqa: E402
import pptx  # noqa: E402
from docx.oxml import parse_xml  # noqa: E402
from pptx.util import Inches  # noqa: E402

from tests.helpers import make_pdf  # noqa: E402

OUT = ROOT / "bench" / "extraction_set" / "generated"
PARAS = [
    "The harbour office opens at seven and closes when the last ferry has docked.",
    "Visitors must sign the register, wear the orange vest and stay behind the yellow line.",
    "Cargo manifests are checked twice: once by the loader and once by the duty officer.",
    "In winter the north quay is closed because ice makes the crane rails unsafe.",
    "Lost property is kept for ninety days in the cabinet beside the ticket window.",
    "Pilots report wind speeds above forty knots to the tower before leaving the berth.",
]
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
BOX = (
    f'<w:p xmlns:w="{W}" xmlns:v="urn:schemas-microsoft-com:vml"><w:r><w:pict><v:shape>'
    "<v:textbox><w:txbxContent><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:txbxContent>"
    "</v:textbox></v:shape></w:pict></w:r></w:p>"
)
MATH = (
    f'<w:p xmlns:w="{W}" xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math">'
    "<m:oMath><m:r><m:t>speed=</m:t></m:r><m:f><m:num><m:r><m:t>distance</m:t></m:r></m:num>"
    "<m:den><m:r><m:t>time</m:t></m:r></m:den></m:f></m:oMath></w:p>"
)


def _write(name: str, data: bytes, reference: str) -> None:
    (OUT / name).write_bytes(data)
    (OUT / f"{Path(name).stem}.ref.txt").write_text(reference + "\n", encoding="utf-8")


def _save(doc: object) -> bytes:
    buffer = io.BytesIO()
    doc.save(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


def word_files() -> None:
    """A plain report, and a flyer laid out in text boxes with an equation and a footnote."""
    report = docx.Document()
    report.add_heading("Harbour rules", 1)
    for p in PARAS:
        report.add_paragraph(p)
    _write("report.docx", _save(report), "Harbour rules\n" + "\n".join(PARAS))
    flyer = docx.Document()
    flyer.add_paragraph("Harbour flyer")
    body = flyer.element.body
    for p in PARAS[:4]:
        body.insert(len(body) - 1, parse_xml(BOX.format(text=p)))
    body.insert(len(body) - 1, parse_xml(MATH))
    _write(
        "flyer-text-boxes.docx",
        _save(flyer),
        "\n".join(["Harbour flyer", *PARAS[:4]]) + ("\nspeed = distance / time"),
    )


def deck() -> None:
    """Three slides: bullets, a table with a grouped caption, notes."""
    prs = pptx.Presentation()
    s1 = prs.slides.add_slide(prs.slide_layouts[1])
    s1.shapes.title.text = "Harbour rules"
    s1.placeholders[1].text_frame.text = "\n".join(PARAS[:3])
    s2 = prs.slides.add_slide(prs.slide_layouts[5])
    s2.shapes.title.text = "Ferry times"
    table = s2.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(1.5)).table
    cells = [["Route", "Departs"], ["Northport", "07:15"], ["Eastwick", "09:40"]]
    for r, row in enumerate(cells):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    group = s2.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(4), Inches(6), Inches(1)).text = PARAS[3]
    s2.notes_slide.notes_text_frame.text = PARAS[4]
    s3 = prs.slides.add_slide(prs.slide_layouts[6])
    s3.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(1)).text = PARAS[5]
    ref = ["Harbour rules", *PARAS[:3], "Ferry times", *(" ".join(r) for r in cells)]
    _write("deck.pptx", _save(prs), "\n".join([*ref, PARAS[3], PARAS[4], PARAS[5]]))


def workbook() -> None:
    """A roster with a category merged over rows, and a second sheet of notes."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Roster"
    rows = [["Team", "Name", "Shift"], ["Quay", "Ann", "early"], [None, "Bo", "late"]]
    rows += [["Tower", "Cy", "night"]]
    for row in rows:
        ws.append(row)
    ws.merge_cells("A2:A3")
    notes = wb.create_sheet("Notes")
    for p in PARAS[:2]:
        notes.append([p])
    ref = ["Roster", "Team Name Shift", "Quay Ann early", "Quay Bo late", "Tower Cy night"]
    _write("roster.xlsx", _save(wb), "\n".join([*ref, "Notes", *PARAS[:2]]))


def text_files() -> None:
    """A PDF of two pages, a Markdown file and an HTML page with navigation around it."""
    pages = [["Harbour rules", *PARAS[:3]], PARAS[3:]]
    _write("rules.pdf", make_pdf(pages), "Harbour rules\n" + "\n".join(PARAS))
    md = "# Harbour rules\n\n" + "\n\n".join(f"- {p}" for p in PARAS) + "\n"
    _write("rules.md", md.encode(), "Harbour rules\n" + "\n".join(PARAS))
    html = (
        "<!doctype html><html><head><title>Harbour rules</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/news'>News</a></nav><main><h1>Harbour rules</h1>"
        + "".join(f"<p>{p}</p>" for p in PARAS)
        + "</main><footer>Copyright Harbour Board</footer></body></html>"
    )
    _write("rules.html", html.encode(), "Harbour rules\n" + "\n".join(PARAS))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    word_files()
    deck()
    workbook()
    text_files()
    print(f"wrote {len(list(OUT.iterdir()))} files to {OUT}")
