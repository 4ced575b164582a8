"""The answer flow with a scripted model: only backed, relevant claims reach the user.

Fast unit tests of llm.answer / llm.gate / llm.grounding; tests/api/test_trust.py runs the
same rules through the HTTP API on real databases with the real bundled model.
"""

from __future__ import annotations

from llm.answer import (
    REFUSAL,
    AnswerConfig,
    Delta,
    Evidence,
    Final,
    Retrieved,
    Unsupported,
    answer,
)
from llm.types import Source
from tests.helpers import ScriptedChatModel

IBM = (
    "International Business Machines is headquartered in Armonk, New York. "
    "The company employed about 282,100 people at the end of 2022. "
    "A purple giraffe was seen near the cafeteria on Tuesday."
)
ACME = "Acme Corporation is headquartered in Springfield. Acme employs 35,000 people."
# From the CMRC 2018 dev set (ymcui/cmrc2018, CC BY-SA 4.0).
CMRC = (
    "《战国无双3》（）是由光荣和ω-force开发的战国无双系列的正统第三续作。"
    "本作以三大故事为主轴，分别是以武田信玄等人为主的《关东三国志》。"
)


def src(index: int, text: str, document_id: int | None = None, score: float = 0.6) -> Source:
    return Source(
        index=index,
        chunk_id=100 + index,
        document_id=document_id or index,
        filename=f"doc{index}.txt",
        page_start=1,
        page_end=1,
        heading=None,
        text=text,
        score=score,
    )


def run(
    question: str,
    reply: str,
    sources: list[Source],
    *,
    mode: Unsupported = Unsupported.DROP,
    best: float = 0.6,
    named: frozenset[int] = frozenset(),
) -> tuple[list[Evidence | Delta | Final], Final]:
    model = ScriptedChatModel(reply)
    config = AnswerConfig(unsupported=mode)
    events = list(answer(question, [], lambda q: Retrieved(sources, best, named), model, config))
    final = events[-1]
    assert isinstance(final, Final)
    return events, final


def shown(events: list[Evidence | Delta | Final]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


def test_a_backed_claim_is_shown_with_its_citation_and_evidence_comes_first() -> None:
    events, final = run(
        "Where is IBM headquartered?",
        "IBM is headquartered in Armonk, New York [1].",
        [src(1, IBM)],
    )
    assert isinstance(events[0], Evidence)
    assert "Armonk" in events[0].quotes[0].quote
    assert all(not isinstance(e, Delta) for e in events[:1])
    assert final.mode == "generated"
    assert final.answer == "IBM is headquartered in Armonk, New York [1]."
    assert shown(events) == final.answer
    assert [c.index for c in final.citations] == [1] and final.citations[0].supported


def test_a_claim_with_an_invented_number_is_dropped() -> None:
    reply = (
        "IBM is headquartered in Armonk, New York [1]. "
        "The company employed about 20 people at the end of 2022 [1]."
    )
    events, final = run(
        "Where is IBM headquartered and how many people work there?", reply, [src(1, IBM)]
    )
    assert "20 people" not in final.answer and "20 people" not in shown(events)
    assert final.answer == "IBM is headquartered in Armonk, New York [1]."
    assert [(u.reason, u.text[:24]) for u in final.unverified] == [
        ("number", "The company employed abo")
    ]


def test_normalised_numbers_match() -> None:
    events, final = run(
        "How many people did IBM employ at the end of 2022?",
        "The company employed about 282100 people at the end of 2022 [1].",
        [src(1, IBM)],
    )
    assert final.mode == "generated" and "282100" in final.answer


def test_a_copied_irrelevant_sentence_is_dropped_even_though_its_words_are_in_the_chunk() -> None:
    # Word overlap with the chunk is perfect (the model copied it), but it does not concern
    # the question; the old check marked such a citation supported.
    reply = "A purple giraffe was seen near the cafeteria on Tuesday [1]."
    chunk = IBM.replace(" A purple", " The canteen opens at eight. Lunch is served. A purple")
    events, final = run("Where is IBM headquartered?", reply, [src(1, chunk)])
    assert "giraffe" not in final.answer and "giraffe" not in shown(events)
    assert final.unverified[0].reason == "irrelevant"


def test_mark_returns_failing_sentences_apart() -> None:
    reply = "IBM is headquartered in Armonk, New York [1]. IBM was founded on Mars in 1492 [1]."
    events, final = run("Where is IBM headquartered?", reply, [src(1, IBM)], mode=Unsupported.MARK)
    assert final.answer == "IBM is headquartered in Armonk, New York [1]."
    assert [u.text for u in final.unverified] == ["IBM was founded on Mars in 1492 [1]."]


def test_keep_shows_everything_as_generated() -> None:
    reply = "IBM is headquartered in Armonk, New York [1]. IBM was founded on Mars in 1492 [1]."
    events, final = run("Where is IBM headquartered?", reply, [src(1, IBM)], mode=Unsupported.KEEP)
    assert "Mars in 1492" in final.answer and "Mars in 1492" in shown(events)
    assert final.mode == "generated"
    # still recorded for administrators
    assert [u.text for u in final.unverified] == ["IBM was founded on Mars in 1492 [1]."]


def test_when_nothing_survives_the_answer_is_extractive() -> None:
    events, final = run("Where is IBM headquartered?", "Paris is nice [1].", [src(1, IBM)])
    assert final.mode == "extractive" and final.refused is False
    assert final.answer.startswith("International Business Machines is headquartered in Armonk")
    assert final.answer.endswith("[1]") and final.citations[0].supported
    assert shown(events) == final.answer


def test_a_repetition_loop_is_cut_off() -> None:
    loop = " ".join(["The answer is: IBM is headquartered in Armonk [1]."] * 40)
    model = ScriptedChatModel(loop)
    events = list(
        answer(
            "Where is IBM headquartered?",
            [],
            lambda q: Retrieved([src(1, IBM)], 0.6),
            model,
            AnswerConfig(),
        )
    )
    final = events[-1]
    assert isinstance(final, Final)
    assert final.finish_reason == "repetition"
    assert final.answer.count("Armonk") == 1
    # The model was stopped: far fewer words were pulled than the loop holds.
    assert sum(isinstance(e, Delta) for e in events) == 1


def test_a_chinese_question_answered_in_english_gets_a_chinese_extractive_answer() -> None:
    events, final = run(
        "《战国无双3》是由哪两个公司合作开发的？",
        "Koei and Omega Force developed the game [1].",
        [src(1, CMRC)],
    )
    assert final.mode == "extractive"
    assert "光荣和ω-force" in final.answer
    assert final.unverified[0].reason == "language"


def test_a_chinese_claim_backed_by_its_span_is_shown() -> None:
    events, final = run(
        "《战国无双3》是由哪两个公司合作开发的？",
        "《战国无双3》是由光荣和ω-force开发的[1]。",
        [src(1, CMRC)],
    )
    assert final.mode == "generated" and "光荣和ω-force" in final.answer


def test_claims_from_a_document_the_question_does_not_name_are_not_supported() -> None:
    sources = [src(1, ACME, document_id=7), src(2, IBM, document_id=8)]
    events, final = run(
        "Where is IBM headquartered?",
        "The company is headquartered in Springfield [1].",
        sources,
        named=frozenset({8}),
    )
    assert "Springfield" not in final.answer
    assert final.mode == "extractive" and "Armonk" in final.answer
    assert all(c.source.document_id == 8 for c in final.citations)


def test_an_off_topic_question_is_refused_before_the_model_runs() -> None:
    model = ScriptedChatModel("anything")
    events = list(
        answer(
            "What is the capital of Peru?",
            [],
            lambda q: Retrieved([src(1, IBM)], 0.1),
            model,
            AnswerConfig(),
        )
    )
    final = events[-1]
    assert isinstance(final, Final) and final.refused and final.mode == "refused"
    assert final.answer == REFUSAL and model.calls == 0


def test_extractive_only_needs_no_model() -> None:
    events = list(
        answer(
            "Where is IBM headquartered?",
            [],
            lambda q: Retrieved([src(1, IBM)], 0.6),
            None,
            AnswerConfig(generate=False),
        )
    )
    final = events[-1]
    assert isinstance(events[0], Evidence)
    assert isinstance(final, Final) and final.mode == "extractive" and "Armonk" in final.answer


def test_a_copied_context_header_is_not_shown() -> None:
    # Small models copy the block header ("[1] doc1.txt, p. 1") before the text.
    reply = "[1] doc1.txt, p. 1\nInternational Business Machines is headquartered in Armonk [1]."
    events, final = run("Where is IBM headquartered?", reply, [src(1, IBM)])
    assert final.answer == "International Business Machines is headquartered in Armonk [1]."


def test_two_sentences_citing_one_source_get_one_quote_covering_both() -> None:
    reply = (
        "IBM is headquartered in Armonk, New York [1]. "
        "IBM employed about 282,100 people at the end of 2022 [1]."
    )
    events, final = run(
        "Where is IBM headquartered and how many people work there?", reply, [src(1, IBM)]
    )
    (citation,) = final.citations
    assert "Armonk" in citation.quote and "282,100" in citation.quote
    assert IBM[citation.quote_start : citation.quote_end] == citation.quote


def test_a_refusal_by_the_model_falls_back_to_the_evidence() -> None:
    events, final = run(
        "Where is IBM headquartered?",
        "I cannot find this in the documents.",
        [src(1, IBM)],
    )
    assert final.mode == "extractive" and "Armonk" in final.answer
    assert [u.reason for u in final.unverified] == ["unsupported"]


def test_a_sentence_that_only_restates_the_question_is_no_answer() -> None:
    events, final = run(
        "Where is IBM headquartered?",
        "IBM is headquartered [1]. IBM is headquartered in Armonk [1].",
        [src(1, IBM)],
    )
    assert final.answer == "IBM is headquartered in Armonk [1]."
    assert [u.reason for u in final.unverified] == ["echo"]
