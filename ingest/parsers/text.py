"""Plain-text parser and the shared byte-to-str decoding used by the markdown and HTML parsers."""

from __future__ import annotations

import codecs

from data.types import ParsedDocument
from ingest.errors import CorruptError, NoTextError

# Longest first: the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SNIFF_BYTES = 4096
# Encodings still met in the wild; rarer ones (Mac, DOS code pages) win too many ties.
_LEGACY_CODECS = (
    "cp1252", "iso8859_15", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256",
    "cp1257", "cp1258", "cp874", "koi8_r", "koi8_u", "iso8859_2", "iso8859_5", "iso8859_7",
    "iso8859_8", "iso8859_9", "gb18030", "big5", "big5hkscs", "shift_jis", "cp932", "euc_jp",
    "euc_kr", "cp949", "iso2022_jp",
)  # fmt: skip


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """Return (codec, BOM length) when `data` starts with a Unicode byte-order mark."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def wide_encoding(data: bytes) -> str | None:
    """Guess UTF-16/32 LE/BE without a BOM from where the NUL bytes sit (mostly-Latin text)."""
    sample = data[: _SNIFF_BYTES - _SNIFF_BYTES % 4]
    sample = sample[: len(sample) - len(sample) % 4]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    quarter = len(sample) // 4
    nuls = [sample[i::4].count(0) / quarter for i in range(4)]
    if nuls[2] > 0.9 and nuls[3] > 0.9 and nuls[0] < 0.1:
        return "utf-32-le"
    if nuls[0] > 0.9 and nuls[1] > 0.9 and nuls[3] < 0.1:
        return "utf-32-be"
    odd, even = (nuls[1] + nuls[3]) / 2, (nuls[0] + nuls[2]) / 2
    if odd > 0.3 and even < 0.05:
        return "utf-16-le"
    if even > 0.3 and odd < 0.05:
        return "utf-16-be"
    return None


def _decode_raw(data: bytes) -> str:
    """Decode by BOM, strict UTF-8, NUL pattern, then charset-normalizer's best guess."""
    bom = bom_encoding(data)
    if bom is not None:
        return data[bom[1] :].decode(bom[0], errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    wide = wide_encoding(data)
    if wide is not None:
        try:
            return data.decode(wide)
        except UnicodeDecodeError:
            pass
    return _decode_legacy(data)


def _decode_legacy(data: bytes) -> str:
    """Decode a legacy 8-bit or CJK encoding with charset-normalizer, leaning to cp1252."""
    # Imported here: only legacy-encoded files need it, and imports must stay cheap.
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data, cp_isolation=list(_LEGACY_CODECS)))
    if not matches:
        return data.decode("cp1252", errors="replace")
    least_chaos = min(m.chaos for m in matches)
    ties = [m for m in matches if m.chaos == least_chaos]
    most_coherent = max(m.coherence for m in ties)
    ties = [m for m in ties if m.coherence == most_coherent]
    # Short or ambiguous input ties between many code pages; like browsers, assume cp1252.
    if any("cp1252" in m.could_be_from_charset for m in ties):
        return data.decode("cp1252", errors="replace")
    return str(ties[0])


def normalize_text(text: str) -> str:
    """Unify line endings to "\\n" and drop NULs and byte-order marks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\x00", "").replace("\ufeff", "")


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding to normalised text (see `_decode_raw` for the order)."""
    return normalize_text(_decode_raw(data))


def parse(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Parse a plain-text file; `password` is ignored."""
    try:
        text = decode_text(data)
    except Exception as exc:
        raise CorruptError(f"Could not decode the text file: {exc}") from exc
    if not text.strip():
        raise NoTextError("The text file is empty or contains only whitespace.")
    return ParsedDocument(text=text)
