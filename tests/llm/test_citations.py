"""Tests for citation markers, sentence spans, the support measure and answer verification."""

from __future__ import annotations

import pytest

from llm.citations import (
    extract_markers,
    sentences,
    strip_markers,
    support,
    tokens,
    verify,
)
from llm.types import Source

ASPIRIN = (
    "Aspirin is used to reduce fever and relieve mild pain. "
    "It was first synthesised by Bayer in 1897. "
    "Common side effects include an upset stomach."
)
TRAINS = "The night train leaves Vienna at ten. Tickets can be bought on board."
# A passage from the CMRC 2018 dev set (ymcui/cmrc2018, CC BY-SA 4.0).
CMRC_AFC = (
    "2007年亚足联冠军联赛 是第 26 届亚洲冠军联赛，在2007年3月7日展开小组赛。"
    "日本的代表浦和红钻总比分以 3–1 击败伊朗代表沙巴罕，首次夺得冠军。"
    "另外伊朗的艾斯迪格拿因未能及时提交参赛球员的临时注册表被取消资格。"
)


def _source(index: int, text: str) -> Source:
    return Source(
        index=index,
        chunk_id=100 + index,
        document_id=index,
        filename=f"doc{index}.txt",
        page_start=None,
        page_end=None,
        heading=None,
        text=text,
        score=0.5,
    )


def _texts(text: str) -> list[str]:
    return [text[s:e] for s, e in sentences(text)]


def test_extract_markers_single_grouped_adjacent_and_full_width() -> None:
    answer = "A [1]. B [2, 3]. C [4][5]. D 【6】. E［7］ [2019] [1-2] [Source 1]"
    assert extract_markers(answer) == [
        (1, 2, 5),
        (2, 9, 15),
        (3, 9, 15),
        (4, 19, 22),
        (5, 22, 25),
        (6, 29, 32),
    ]


def test_extract_markers_chinese_comma() -> None:
    assert extract_markers("冠军[1，2]。") == [(1, 2, 7), (2, 2, 7)]


def test_sentences_english_spans_are_exact() -> None:
    text = "Paris is big. Is it old? Yes!  It is."
    assert sentences(text) == [(0, 13), (14, 24), (25, 29), (31, 37)]


def test_sentences_keep_abbreviations_decimals_and_initials() -> None:
    text = "Use e.g. aspirin, approx. 3.5 mg. Ask Dr. Lee or J. Smith. Done."
    assert _texts(text) == [
        "Use e.g. aspirin, approx. 3.5 mg.",
        "Ask Dr. Lee or J. Smith.",
        "Done.",
    ]


def test_sentences_chinese_and_trailing_markers() -> None:
    text = "浦和红钻夺冠。[1] 沙巴罕输了！对吗？Next. [2] Last"
    assert _texts(text) == ["浦和红钻夺冠。[1]", "沙巴罕输了！", "对吗？", "Next. [2]", "Last"]


def test_sentences_break_at_paragraphs_and_list_items() -> None:
    text = "Steps:\n- boil water\n- add tea\n\nthen wait\nquietly"
    assert _texts(text) == ["Steps:", "- boil water", "- add tea", "then wait\nquietly"]


def test_tokens_english_stems_and_stopwords() -> None:
    assert tokens("The claims are supported by using it") == {"claim", "support", "us"}


def test_tokens_chinese_bigrams_drop_function_only_pairs() -> None:
    assert tokens("夺得冠军的是") == {"夺得", "得冠", "冠军", "军的"}


def test_support_of_verbatim_sentence_is_one_with_exact_quote() -> None:
    score, start, end = support("It was first synthesised by Bayer in 1897.", ASPIRIN)
    assert score == 1.0
    assert ASPIRIN[start:end] == "It was first synthesised by Bayer in 1897."


def test_support_of_unrelated_sentence_is_zero() -> None:
    assert support("The night train leaves Vienna at ten.", ASPIRIN) == (0.0, 0, 0)


def test_support_spans_two_sentences_when_the_claim_needs_both() -> None:
    score, start, end = support("Bayer synthesised aspirin in 1897.", ASPIRIN)
    assert score == 1.0
    assert ASPIRIN[start:end] == (
        "Aspirin is used to reduce fever and relieve mild pain. "
        "It was first synthesised by Bayer in 1897."
    )


def test_support_chinese_claim_against_chinese_chunk() -> None:
    score, start, end = support("浦和红钻击败沙巴罕，首次夺得冠军。", CMRC_AFC)
    assert score == pytest.approx(11 / 13)  # all 13 bigrams but 钻击 and 败沙 occur
    assert CMRC_AFC[start:end] == (
        "日本的代表浦和红钻总比分以 3–1 击败伊朗代表沙巴罕，首次夺得冠军。"
    )
    assert support("比赛在北京举行。", CMRC_AFC)[0] == 0.0


def test_strip_markers_tidies_spaces() -> None:
    assert strip_markers("A claim [1]. More [2, 3] here.\n[4] Next") == "A claim. More here.\nNext"


def test_verify_removes_markers_to_unknown_sources() -> None:
    sources = [_source(1, ASPIRIN)]
    text, citations = verify("Bayer first synthesised it in 1897 [7]. Fever [1, 9].", sources)
    assert text == "Bayer first synthesised it in 1897 [1]. Fever [1]."
    assert [c.index for c in citations] == [1]


def test_verify_flags_an_unsupported_citation() -> None:
    sources = [_source(1, ASPIRIN), _source(2, TRAINS)]
    text, citations = verify("Aspirin was first synthesised by Bayer in 1897 [2].", sources)
    assert text == "Aspirin was first synthesised by Bayer in 1897 [2]."
    assert len(citations) == 1
    assert (citations[0].index, citations[0].supported, citations[0].support) == (2, False, 0.0)


def test_verify_supported_citation_quotes_the_source_exactly() -> None:
    sources = [_source(1, ASPIRIN)]
    _, [citation] = verify("Common side effects include an upset stomach [1].", sources)
    assert citation.supported and citation.support == 1.0
    assert citation.quote == "Common side effects include an upset stomach."
    assert ASPIRIN[citation.quote_start : citation.quote_end] == citation.quote
    assert citation.source is sources[0]


def test_verify_keeps_the_best_supported_sentence_per_source() -> None:
    sources = [_source(1, ASPIRIN)]
    answer = "The moon is cheese [1]. Aspirin can reduce fever [1]."
    _, citations = verify(answer, sources, threshold=0.5)
    assert len(citations) == 1
    assert citations[0].supported
    assert citations[0].quote == "Aspirin is used to reduce fever and relieve mild pain."


def test_verify_cites_an_unmarked_sentence_by_evidence() -> None:
    sources = [_source(1, TRAINS), _source(2, ASPIRIN)]
    text, citations = verify("Bayer first synthesised aspirin in 1897. I hope this helps.", sources)
    assert text == "Bayer first synthesised aspirin in 1897 [2]. I hope this helps."
    assert [(c.index, c.supported) for c in citations] == [(2, True)]


def test_verify_does_not_cite_an_unsupported_unmarked_sentence() -> None:
    sources = [_source(1, ASPIRIN)]
    answer = "Aspirin was invented on the moon by penguins."
    assert verify(answer, sources) == (answer, [])


def test_verify_auto_citation_needs_the_higher_bar() -> None:
    sources = [_source(1, ASPIRIN)]
    answer = "Aspirin relieves pain in cats and dogs."  # aspirin, relieve, pain: 3 of 5
    assert verify(answer, sources, threshold=0.3, auto_threshold=0.9) == (answer, [])
    text, [citation] = verify(answer, sources, threshold=0.3, auto_threshold=0.6)
    assert text == "Aspirin relieves pain in cats and dogs [1]."
    assert citation.support == pytest.approx(0.6)


def test_verify_chinese_answer_gets_a_marker_without_a_space() -> None:
    sources = [_source(1, CMRC_AFC)]
    text, [citation] = verify("浦和红钻击败沙巴罕，首次夺得冠军。", sources)
    assert text == "浦和红钻击败沙巴罕，首次夺得冠军[1]。"
    assert citation.quote == "日本的代表浦和红钻总比分以 3–1 击败伊朗代表沙巴罕，首次夺得冠军。"


def test_verify_orders_citations_by_index() -> None:
    sources = [_source(1, ASPIRIN), _source(2, TRAINS)]
    answer = "The night train leaves Vienna at ten [2]. Bayer synthesised it in 1897 [1]."
    _, citations = verify(answer, sources)
    assert [(c.index, c.supported) for c in citations] == [(1, True), (2, True)]


def test_verify_rejects_a_threshold_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="threshold"):
        verify("x", [], threshold=1.5)


def test_a_one_word_claim_is_not_enough_support() -> None:
    text = "RASs to NS5A inhibitors were identified in 2 strains out of 25 (8%) samples."
    assert support("2 [1]", text)[0] == pytest.approx(1 / 3)
    assert support("2 strains [1]", text)[0] == pytest.approx(2 / 3)
    assert support("2 of 25 strains had RASs [1]", text)[0] == 1.0
