"""Decide a file's format from its first bytes (magic numbers first, the file name last).

Zip packages are told apart by their member names. With `path`, the zip's central directory
is read; with only `head`, the names in the local file headers within the first 8 KiB are
used (Office writes `[Content_Types].xml` and the main part's folder first). A zip whose
kind cannot be seen in `head` is taken as DOCX, PPTX or XLSX only when its name ends so;
that parser then refuses it if it is not one.
"""

from __future__ import annotations

import re
import struct
import zipfile
from pathlib import PurePath

from ingest.parsers.text import bom_encoding, wide_encoding

MEDIA_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "markdown": "text/markdown",
    "html": "text/html",
    "text": "text/plain",
}
HEAD_BYTES = 8192
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# (signature, offset, what it is). Only unambiguous ones: weak magics such as "MZ" or "BZh"
# could start a text file, and those binaries fail the text check anyway.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG image"),
    (b"\xff\xd8\xff", 0, "JPEG image"),
    (b"GIF87a", 0, "GIF image"),
    (b"GIF89a", 0, "GIF image"),
    (b"II*\x00", 0, "TIFF image"),
    (b"MM\x00*", 0, "TIFF image"),
    (b"\x97JB2\r\n\x1a\n", 0, "JBIG2 image"),
    (b"RIFF", 0, "RIFF media file (WAV/AVI/WebP)"),
    (b"OggS", 0, "Ogg media"),
    (b"fLaC", 0, "FLAC audio"),
    (b"ftyp", 4, "image, audio or video (ISO media)"),
    (_OLE2, 0, "legacy Office (.doc/.xls/.ppt/.msg) or password-protected Office file"),
    (b"{\\rtf", 0, "RTF document"),
    (b"%!PS", 0, "PostScript file"),
    (b"\x1f\x8b", 0, "gzip archive"),
    (b"\xfd7zXZ\x00", 0, "xz archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "7-Zip archive"),
    (b"Rar!\x1a\x07", 0, "RAR archive"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd archive"),
    (b"\x7fELF", 0, "ELF executable"),
    (b"\xca\xfe\xba\xbe", 0, "Java class or Mach-O binary"),
    (b"\xcf\xfa\xed\xfe", 0, "Mach-O binary"),
    (b"\x00asm", 0, "WebAssembly binary"),
    (b"SQLite format 3\x00", 0, "SQLite database"),
    (b"wOFF", 0, "web font"),
    (b"wOF2", 0, "web font"),
)
_ODF_KINDS = {
    b"application/vnd.oasis.opendocument.text": "OpenDocument text (.odt) files",
    b"application/vnd.oasis.opendocument.spreadsheet": "OpenDocument spreadsheets",
    b"application/vnd.oasis.opendocument.presentation": "OpenDocument presentations",
    b"application/epub+zip": "EPUB e-books",
}
_ZIP_FOLDERS = (
    ("word/document", "docx"),
    ("xl/workbook.bin", "Excel binary workbooks (.xlsb)"),
    ("xl/", "xlsx"),
    ("ppt/", "pptx"),
    ("visio/", "Visio drawings"),
)
_OFFICE_EXT = {".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".xlsm": "xlsx"}
_HTML_START = re.compile(
    r"\A(?:\s|<!--.*?-->|<\?xml[^>]*>)*<(?:!doctype\s+html|html|head|body)[\s>/]",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[a-zA-Z!/]")
_HTML_EXT = {".html", ".htm", ".xhtml", ".shtml"}
_MARKDOWN_EXT = {".md", ".markdown", ".mdx", ".mkd", ".mdown"}
_CONTROL_BYTES = bytes(b for b in [*range(0x20), 0x7F] if b not in b"\t\n\r\f\v\x1b")


class UnsupportedTypeError(Exception):
    """The upload is not a PDF, DOCX, Markdown, HTML or plain-text file."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _zip_names(head: bytes, path: str | None) -> list[str]:
    """Member names from the central directory (with `path`) or the local headers in `head`."""
    if path is not None:
        try:
            with zipfile.ZipFile(path) as archive:
                return archive.namelist()
        except (OSError, zipfile.BadZipFile, ValueError):
            pass  # unreadable directory: fall back to the local headers
    names = []
    for match in re.finditer(rb"PK\x03\x04", head):
        fixed = head[match.start() : match.start() + 30]
        if len(fixed) == 30:
            name_len = struct.unpack("<H", fixed[26:28])[0]
            name = head[match.start() + 30 : match.start() + 30 + name_len]
            names.append(name.decode("utf-8", errors="replace"))
    return names


def _zip_format(head: bytes, filename: str, path: str | None) -> str:
    """Return "docx", "pptx" or "xlsx" for an Office package, else raise naming the zip."""
    if head[30:38] == b"mimetype":  # ODF and EPUB store their type first, uncompressed
        for mimetype, kind in _ODF_KINDS.items():
            if mimetype in head[38:200]:
                raise UnsupportedTypeError(f"{kind} are not supported.")
    names = _zip_names(head, path)
    for prefix, kind in _ZIP_FOLDERS:
        if any(name.startswith(prefix) for name in names):
            if kind in _OFFICE_EXT.values():
                return kind
            raise UnsupportedTypeError(f"{kind} are not supported.")
    office = _OFFICE_EXT.get(PurePath(filename).suffix.lower())
    if path is None and office is not None:
        return office  # the main part lies past `head`; the parser checks the rest
    raise UnsupportedTypeError("zip archives are not supported.")


def _binary_kind(head: bytes) -> str | None:
    """Name a known binary format from its signature, or None."""
    for magic, offset, kind in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    return None


def _head_as_text(head: bytes) -> str | None:
    """Decode `head` if it looks like text (BOM, UTF-16/32 pattern, or few control bytes)."""
    bom = bom_encoding(head)
    encoding = bom[0] if bom else wide_encoding(head)
    if encoding is not None:
        return head[bom[1] if bom else 0 :].decode(encoding, errors="ignore")
    if b"\x00" in head:
        return None
    # Any 8-bit legacy encoding is acceptable here; only C0 control bytes betray binary.
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if controls > max(2, len(head) // 100):
        return None
    return head.decode("utf-8", errors="ignore") if _is_utf8(head) else head.decode("latin-1")


def _is_utf8(head: bytes) -> bool:
    """True when `head` is valid UTF-8, allowing a character cut off at the end."""
    for cut in range(4):
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def _text_format(text: str, filename: str) -> str:
    """Pick html, markdown or text for content that decoded as text."""
    suffix = PurePath(filename).suffix.lower()
    if _HTML_START.match(text[:2048]):
        return "html"
    if suffix in _MARKDOWN_EXT:
        return "markdown"
    if suffix in _HTML_EXT and _TAG.search(text):
        return "html"
    return "text"


def detect_format(head: bytes, filename: str, *, path: str | None = None) -> str:
    """Return a key of MEDIA_TYPES ("pdf", "docx", ...), or raise UnsupportedTypeError."""
    head = head[:HEAD_BYTES]
    # A zip header at offset 0 is definitive, even when a stored member holds "%PDF-".
    if head.startswith(_ZIP_MAGIC):
        return _zip_format(head, filename, path)
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if kind := _binary_kind(head):
        raise UnsupportedTypeError(f"{kind} is not supported.")
    text = _head_as_text(head)
    if text is None:
        raise UnsupportedTypeError("binary file is not supported (it is not text).")
    return _text_format(text, filename)
