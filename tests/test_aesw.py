"""The AESW 2016 XML reader: text before editing, labels, words, rationales and edit kinds."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import pytest

from engine.aesw import is_spelling_variant, read_aesw
from engine.corpus import Example
from engine.errors import EditlensError, InputError
from engine.sources import open_source


def read(path: Path) -> list[Example]:
    with open_source(path) as source:
        return list(read_aesw(source))


def read_xml(tmp_path: Path, body: str, name: str = "corpus.xml") -> list[Example]:
    path = tmp_path / name
    path.write_text(f"<xml>\n{body}\n</xml>\n", encoding="utf-8")
    return read(path)


def one(tmp_path: Path, sentence: str) -> Example:
    (example,) = read_xml(tmp_path, f'<sentence sid="1.1">{sentence}</sentence>')
    return example


def rationale_words(example: Example) -> list[str]:
    return [example.words[i] for i in example.rationale]


# -- text, label, words ------------------------------------------------------------------------


def test_text_before_editing_keeps_deleted_text_and_drops_inserted_text(tmp_path: Path) -> None:
    example = one(tmp_path, "We show<del>,</del> that<ins> the</ins> method works.")
    assert example.text == "We show, that method works."


def test_a_sentence_without_markup_needs_no_edit(tmp_path: Path) -> None:
    example = one(tmp_path, "Nothing to change here.")
    assert (example.label, example.kind, example.rationale) == (False, "none", ())
    assert example.text == "Nothing to change here."


def test_any_deletion_or_insertion_means_the_sentence_needs_an_edit(tmp_path: Path) -> None:
    examples = read_xml(
        tmp_path,
        '<sentence sid="1.1">A<del>,</del> b.</sentence>\n'
        '<sentence sid="1.2">A<ins>,</ins> b.</sentence>\n'
        '<sentence sid="1.3">A b.</sentence>',
    )
    assert [(e.id, e.label) for e in examples] == [("1.1", True), ("1.2", True), ("1.3", False)]


def test_words_carry_character_spans_into_the_text_before_editing(tmp_path: Path) -> None:
    example = one(tmp_path, "The <del>big </del>model's loss.")
    assert example.words == ("The", "big", "model", "'s", "loss", ".")
    spans = zip(example.starts, example.ends, strict=True)
    assert [example.text[s:e] for s, e in spans] == list(example.words)


# -- rationales and edit kinds -----------------------------------------------------------------


def test_a_deleted_comma_is_the_rationale_of_a_deleted_sentence(tmp_path: Path) -> None:
    example = one(tmp_path, "We show<del>,</del> that the method works.")
    assert example.kind == "deleted"
    assert example.rationale == (2,)
    assert rationale_words(example) == [","]


def test_every_word_with_a_deleted_character_is_in_the_rationale(tmp_path: Path) -> None:
    example = one(tmp_path, "It is <del>the very</del> best<del>:</del> for us.")
    assert example.kind == "deleted"
    assert rationale_words(example) == ["the", "very", ":"]


def test_a_deletion_inside_a_word_marks_that_word(tmp_path: Path) -> None:
    example = one(tmp_path, "The result<del>s</del> hold.")
    assert example.kind == "deleted"
    assert rationale_words(example) == ["results"]


def test_a_one_word_spelling_correction_is_the_spelling_kind(tmp_path: Path) -> None:
    example = one(tmp_path, "The <del>algoritm</del><ins>algorithm</ins> converges.")
    assert example.kind == "spelling"
    assert example.label is True
    assert example.text == "The algoritm converges."
    assert rationale_words(example) == ["algoritm"]


def test_a_hyphenation_correction_is_the_spelling_kind(tmp_path: Path) -> None:
    example = one(tmp_path, "A <del>nonlinear</del><ins>non-linear</ins> map.")
    assert example.kind == "spelling"
    assert rationale_words(example) == ["nonlinear"]


def test_replacing_a_word_by_a_different_word_is_mixed(tmp_path: Path) -> None:
    example = one(tmp_path, "The <del>big</del><ins>large</ins> model fails.")
    assert example.kind == "mixed"
    assert rationale_words(example) == ["big"]


def test_a_deletion_and_an_insertion_at_different_places_are_mixed(tmp_path: Path) -> None:
    example = one(tmp_path, "The model<del>,</del> is <ins>very </ins>good.")
    assert example.kind == "mixed"
    assert example.text == "The model, is good."
    assert rationale_words(example) == [",", "is", "good"]


def test_an_insertion_between_words_marks_the_words_on_either_side(tmp_path: Path) -> None:
    example = one(tmp_path, "We use<ins> the</ins> method here.")
    assert example.kind == "inserted"
    assert example.label is True
    assert example.text == "We use method here."
    assert rationale_words(example) == ["use", "method"]


def test_an_insertion_inside_a_word_marks_that_word(tmp_path: Path) -> None:
    example = one(tmp_path, "A wo<ins>r</ins>d here.")
    assert example.kind == "inserted"
    assert example.text == "A wod here."
    assert rationale_words(example) == ["wod"]


def test_an_insertion_at_the_start_marks_the_first_word(tmp_path: Path) -> None:
    example = one(tmp_path, "<ins>The </ins>model works.")
    assert example.kind == "inserted"
    assert rationale_words(example) == ["model"]


def test_an_insertion_before_the_final_period_marks_its_neighbours(tmp_path: Path) -> None:
    example = one(tmp_path, "It works<ins> well</ins>.")
    assert rationale_words(example) == ["works", "."]


def test_a_whitespace_only_deletion_gives_an_empty_rationale(tmp_path: Path) -> None:
    example = one(tmp_path, "Two<del> </del> spaces here.")
    assert example.kind == "deleted"
    assert example.label is True
    assert example.text == "Two  spaces here."
    assert example.rationale == ()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("algoritm", "algorithm", True),
        ("recieve", "receive", True),
        ("nonlinear", "non-linear", True),
        ("Non-Linear", "nonlinear", True),
        ("big", "large", False),
        ("a", "the", False),
        ("same", "same", False),
        ("non linear", "non-linear", False),
        ("", "word", False),
    ],
)
def test_spelling_variants_are_small_edits_of_one_word(old: str, new: str, expected: bool) -> None:
    assert is_spelling_variant(old, new) is expected


# -- placeholders ------------------------------------------------------------------------------


def test_placeholders_stay_single_words(tmp_path: Path) -> None:
    example = one(
        tmp_path, "Let <del>_MATH_ </del>be the _MATH_-th term of _MATHDISP_ in _CITE_, _REF_."
    )
    assert example.words == (
        "Let", "_MATH_", "be", "the", "_MATH_-th", "term", "of", "_MATHDISP_",
        "in", "_CITE_", ",", "_REF_", ".",
    )  # fmt: skip
    assert rationale_words(example) == ["_MATH_"]


# -- file layouts ------------------------------------------------------------------------------


def test_gzip_input_reads_like_plain_input(tmp_path: Path) -> None:
    body = '<xml><sentence sid="3.1">We show<del>,</del> that.</sentence></xml>'
    plain = tmp_path / "plain.xml"
    plain.write_text(body, encoding="utf-8")
    packed = tmp_path / "packed.xml.gz"
    packed.write_bytes(gzip.compress(body.encode()))
    assert read(packed) == read(plain)
    assert [e.rationale for e in read(packed)] == [(2,)]


def test_gzip_input_is_recognised_without_the_gz_suffix(tmp_path: Path) -> None:
    packed = tmp_path / "packed.xml"
    packed.write_bytes(gzip.compress(b'<xml><sentence sid="3.1">A b.</sentence></xml>'))
    assert [e.text for e in read(packed)] == ["A b."]


def test_the_nested_text_and_paragraph_layout_is_read(tmp_path: Path) -> None:
    examples = read_xml(
        tmp_path,
        '<text><p pid="7"><sentence sid="7.0">First<del>,</del> one.</sentence>'
        '<sentence sid="7.1">Second one.</sentence></p>'
        '<p pid="8"><sentence sid="8.0">Third<ins> good</ins> one.</sentence></p></text>',
    )
    assert [(e.id, e.kind, e.rationale) for e in examples] == [
        ("7.0", "deleted", (1,)),
        ("7.1", "none", ()),
        ("8.0", "inserted", (0, 1)),
    ]


@pytest.mark.parametrize(
    "wrapped",
    [
        "<doc>{}</doc>",
        "<aesw><text><section><p>{}</p></section></text></aesw>",
        "<xml>{}<p>a paragraph without sentences</p></xml>",
        "<corpus>\n  <!-- a comment -->\n  {}\n</corpus>",
    ],
    ids=["another-root", "deep-wrappers", "empty-wrapper-beside", "comments-and-space"],
)
def test_sentences_are_read_under_any_root_and_wrappers(tmp_path: Path, wrapped: str) -> None:
    path = tmp_path / "corpus.xml"
    body = '<sentence sid="1.0">A<del>,</del> b.</sentence><sentence sid="1.1">C d.</sentence>'
    path.write_text(wrapped.format(body), encoding="utf-8")
    assert [(e.id, e.kind) for e in read(path)] == [("1.0", "deleted"), ("1.1", "none")]


def test_reading_under_deep_wrappers_stays_in_constant_memory(tmp_path: Path) -> None:
    def write(path: Path, sentences: int) -> None:
        with path.open("w", encoding="utf-8") as out:
            out.write("<root><a><b><c>\n")
            for i in range(sentences):
                out.write(f'<d><sentence sid="{i}">We show<del>,</del> it.</sentence></d>\n')
            out.write("</c></b></a></root>\n")

    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    write(small, 5_000)
    write(large, 20_000)
    (_, small_peak), (count, large_peak) = _peak_bytes(small), _peak_bytes(large)
    assert count == 20_000
    assert large_peak < small_peak * 1.5 + 256 * 2**10


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ('<sentence sid="1.0">ok.</sentence>\n<sentence sid="1.1">a <del>b <ins>c</ins></del> d.'
         "</sentence>", "line 3 (sentence 1.1)", "has <ins> inside <del>"),
        ('<sentence sid="2.0">a <ins>b <del>c</del></ins> d.</sentence>', "line 2 (sentence 2.0)",
         "has <del> inside <ins>"),
        ('<sentence sid="3.0">a <b><del>c</del></b> d.</sentence>', "line 2 (sentence 3.0)",
         "has <del> inside <b>"),
        ('\n\n<sentence sid="4.0">a <sentence sid="4.1">b</sentence></sentence>',
         "line 4 (sentence #1)", "has a <sentence> inside it"),
        ('<sentence sid="5.0">a.</sentence>\n<sentence>b.</sentence>', "line 3 (sentence #2)",
         "has no sid attribute"),
    ],
    ids=["ins-in-del", "del-in-ins", "del-in-other", "sentence-in-sentence", "no-sid"],
)  # fmt: skip
def test_nested_markup_is_a_one_line_error_naming_file_line_and_sentence(
    tmp_path: Path, body: str, where: str, says: str
) -> None:
    with pytest.raises(InputError) as caught:
        read_xml(tmp_path, body)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'corpus.xml'}:{where}: {says}")
    assert "\n" not in message


def test_an_xml_declaration_and_entities_are_understood(tmp_path: Path) -> None:
    path = tmp_path / "corpus.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xml><sentence sid="1.1">A &amp; B<del> &lt;</del> café.</sentence></xml>',
        encoding="utf-8",
    )
    (example,) = read(path)
    assert example.text == "A & B < café."
    assert rationale_words(example) == ["<"]


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b'<xml>\n<sentence sid="1.1">ok</sentence>\n<sentence sid="1.2">open\n</xml>\n', "line "),
        (b"<doc><p>no sentences here</p></doc>", "holds no <sentence> element"),
        (b"hello, world\nthis is not xml\n", "line 1"),
        (b"", "line 1"),
        (b'<xml><sentence sid="1">caf\xe9</sentence></xml>', "line 1"),
        (b"<xml><sentence>no sid</sentence></xml>", "sentence #1"),
    ],
    ids=["unclosed-tag", "no-sentence", "not-xml", "empty", "not-utf8", "no-sid"],
)
def test_malformed_xml_raises_one_line_input_error_naming_the_file(
    tmp_path: Path, content: bytes, where: str
) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert where in message
    assert "\n" not in message


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(EditlensError, match="no such file"):
        read(tmp_path / "absent.xml")


def test_a_truncated_gzip_file_is_a_one_line_error(tmp_path: Path) -> None:
    data = gzip.compress(b'<xml><sentence sid="1">' + b"word " * 5000 + b"</sentence></xml>")
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EditlensError) as caught:
        read(path)
    assert str(path) in str(caught.value)


# -- memory ------------------------------------------------------------------------------------


def _write_generated(path: Path, sentences: int) -> None:
    kinds = (
        "We show<del>,</del> that _MATH_ holds.",
        "The <del>algoritm</del><ins>algorithm</ins> converges.",
        "We use<ins> the</ins> method of _CITE_.",
        "Nothing to change in Eq. 3 here.",
    )
    with path.open("w", encoding="utf-8") as out:
        out.write('<xml><text><p pid="0">\n')
        for i in range(sentences):
            out.write(f'<sentence sid="{i}.0">{kinds[i % 4]}</sentence>\n')
        out.write("</p></text></xml>\n")


def _peak_bytes(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = 0
        with open_source(path) as source:
            for _ in read_aesw(source):
                count += 1
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_stays_in_constant_memory_whatever_the_file_size(tmp_path: Path) -> None:
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    _write_generated(small, 5_000)
    _write_generated(large, 20_000)
    small_count, small_peak = _peak_bytes(small)
    large_count, large_peak = _peak_bytes(large)
    assert (small_count, large_count) == (5_000, 20_000)
    assert large_peak < 3 * 2**20
    assert large_peak < small_peak * 1.5 + 256 * 2**10


def test_non_utf8_bytes_in_xml_suggest_saving_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.xml"
    path.write_bytes(b'<xml>\n<sentence sid="1.1">caf\xe9 au lait.</sentence>\n</xml>\n')
    with pytest.raises(InputError, match=r"latin1\.xml:line 2: .*save the file as UTF-8"):
        read(path)


def test_pairs_follow_each_edited_sentence_with_its_text_after_editing(tmp_path: Path) -> None:
    path = tmp_path / "pairs.xml"
    path.write_text(
        '<xml><sentence sid="1.0">We show<del>,</del> that <ins>the </ins>model works.</sentence>'
        '<sentence sid="1.1">Nothing to change.</sentence></xml>',
        encoding="utf-8",
    )
    with open_source(path) as source:
        examples = list(read_aesw(source, pairs=True))
    assert [(e.id, e.label, e.kind) for e in examples] == [
        ("1.0", True, "mixed"),
        ("1.0/edited", False, "none"),
        ("1.1", False, "none"),
    ]
    twin = examples[1]
    assert twin.text == "We show that the model works."
    assert twin.words == ("We", "show", "that", "the", "model", "works", ".")
    assert twin.rationale == ()
