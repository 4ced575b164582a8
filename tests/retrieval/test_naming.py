"""Which documents a question names, from their filenames."""

from __future__ import annotations

from retrieval.naming import match, name_terms

FILES = {
    1: "reports/IBM-2022-annual-report.pdf",
    2: "reports/Acme_10-K_2022.pdf",
    3: "reports/Globex annual report.pdf",
    4: "战国无双3.txt",
    5: "handbook.md",
}


def test_name_terms_drop_generic_words_and_numbers() -> None:
    assert name_terms("reports/IBM-2022-annual-report.pdf") == {"ibm"}
    assert name_terms("Acme_10-K_2022.pdf") == {"acme"}
    assert name_terms("战国无双3.txt") == {"战国无双"}


def test_a_company_name_names_its_report() -> None:
    assert match("Where is IBM headquartered?", FILES) == [1]
    assert match("What was Acme's revenue in 2022?", FILES) == [2]
    assert match("Compare IBM and Globex margins", FILES) == [1, 3]
    assert match("《战国无双3》是由哪两个公司合作开发的？", FILES) == [4]


def test_no_name_no_match_and_words_inside_words_do_not_count() -> None:
    assert match("How many days of paid leave?", FILES) == []
    assert match("Is the acmeology department open?", FILES) == []


def test_a_word_in_many_names_is_not_distinctive() -> None:
    files = {i: f"covid-study-{i}.txt" for i in range(10)} | {10: "ibm.txt"}
    assert match("What does the covid study say about IBM?", files) == [10]
