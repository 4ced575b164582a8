"""Lexical tokens: Chinese words (Simplified and Traditional alike), English, mixed text."""

from __future__ import annotations

from retrieval.tokenize import tokenize


def test_english_is_stemmed_lower_cased_words_without_punctuation() -> None:
    assert tokenize("Fish & Chips, on FRIDAYS!") == ["fish", "chip", "friday"]
    assert tokenize("infected") == tokenize("infections") == ["infect"]


def test_english_function_words_are_dropped_but_not_other_words() -> None:
    assert tokenize("What is the role of the spike protein?") == ["role", "spike", "protein"]
    assert tokenize("the") == []
    # Only English letters are stemmed: codes and other scripts stay as written.
    assert tokenize("IL-6 a2b7 résumés") == ["il", "6", "a2b7", "résumés"]


def test_chinese_is_cut_into_words_not_characters_or_one_blob() -> None:
    words = tokenize("《战国无双3》是由哪两个公司合作开发的？")
    assert "战国" in words and "无双" in words and "公司" in words
    assert "《" not in words and "？" not in words


def test_traditional_and_simplified_give_the_same_terms() -> None:
    assert tokenize("臺灣的醫學研究") == tokenize("台湾的医学研究")


def test_mixed_language_text_keeps_both() -> None:
    words = tokenize("COVID-19 疫苗的临床试验 phase III")
    assert words[:2] == ["covid", "19"] and words[-2:] == ["phase", "iii"]
    assert "的" in words  # Chinese is cut by jieba, never through the English stemmer
    assert "疫苗" in words and ("临床试验" in words or "临床" in words)


def test_full_width_forms_are_normalised() -> None:
    assert tokenize("ＧＰＵ　１２８") == ["gpu", "128"]
