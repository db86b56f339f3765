"""The synthetic AESW generator: reproducible, well-formed, and carrying every edit kind."""

from __future__ import annotations

import re
import statistics
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from engine.errors import EditlensError
from engine.synth import generate_sentences, write_aesw

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "data" / "aesw-synthetic.xml"


def _damerau(a: str, b: str) -> int:
    """Edit distance counting a transposition as one edit."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def _is_spelling_pair(wrong: str, right: str) -> bool:
    """A hyphenation variant, or a misspelling within two letters of a word of five or more."""
    squash = wrong.replace("-", "").replace(" ", "").lower()
    if squash == right.replace("-", "").replace(" ", "").lower():
        return True
    return len(right) >= 5 and _damerau(wrong, right) <= 2


def edit_kind(sentence: ET.Element) -> str:
    """none / deleted / inserted / spelling / mixed, judged from the markup alone."""
    children = list(sentence)
    tags = {c.tag for c in children}
    if not children:
        return "none"
    if tags == {"del"}:
        return "deleted"
    if tags == {"ins"}:
        return "inserted"
    if (
        len(children) == 2
        and [c.tag for c in children] == ["del", "ins"]
        and not children[0].tail
        and _is_spelling_pair(children[0].text or "", children[1].text or "")
    ):
        return "spelling"
    return "mixed"


def before_and_after(sentence: ET.Element) -> tuple[str, str]:
    """The text before editing (deletions kept) and after editing (insertions kept)."""
    before, after = [sentence.text or ""], [sentence.text or ""]
    for child in sentence:
        (before if child.tag == "del" else after).append(child.text or "")
        before.append(child.tail or "")
        after.append(child.tail or "")
    return "".join(before), "".join(after)


def _write(tmp_path: Path, n: int, seed: int, name: str = "out.xml") -> bytes:
    path = tmp_path / name
    write_aesw(path, n, seed)
    return path.read_bytes()


def _sentences(n: int, seed: int) -> list[ET.Element]:
    return [ET.fromstring(s) for s in generate_sentences(n, seed)]


def test_the_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    assert _write(tmp_path, 400, 7, "a.xml") == _write(tmp_path, 400, 7, "b.xml")


def test_different_seeds_give_different_files(tmp_path: Path) -> None:
    assert _write(tmp_path, 400, 7, "a.xml") != _write(tmp_path, 400, 8, "b.xml")


def test_the_file_parses_and_has_the_aesw_layout(tmp_path: Path) -> None:
    raw = _write(tmp_path, 300, 3)
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<xml>\n<text>\n<p pid="1">\n')
    assert raw.endswith(b"</p>\n</text>\n</xml>\n")
    root = ET.fromstring(raw)
    assert root.tag == "xml"
    assert [c.tag for c in root] == ["text"]
    paragraphs = list(root[0])
    assert all(p.tag == "p" for p in paragraphs)
    assert [p.get("pid") for p in paragraphs] == [str(i) for i in range(1, len(paragraphs) + 1)]
    assert sum(len(p) for p in paragraphs) == 300
    assert all(s.tag == "sentence" for p in paragraphs for s in p)


def test_sentence_ids_are_unique_and_number_sentences_within_their_paragraph(
    tmp_path: Path,
) -> None:
    root = ET.fromstring(_write(tmp_path, 1000, 11))
    sids = [s.get("sid") for s in root.iter("sentence")]
    assert len(sids) == len(set(sids)) == 1000
    for p in root.iter("p"):
        assert [s.get("sid") for s in p] == [f"{p.get('pid')}.{i}" for i in range(len(p))]
    assert max(len(p) for p in root.iter("p")) > 1


def test_generate_sentences_yields_the_sentences_write_aesw_writes(tmp_path: Path) -> None:
    lines = _write(tmp_path, 250, 5).decode().splitlines()
    assert [ln for ln in lines if ln.startswith("<sentence")] == list(generate_sentences(250, 5))


def test_every_edit_kind_occurs_in_500_sentences() -> None:
    kinds = Counter(edit_kind(s) for s in _sentences(500, 2016))
    assert set(kinds) == {"none", "deleted", "spelling", "inserted", "mixed"}
    assert 0.35 < kinds["none"] / 500 < 0.55


def test_spelling_edits_cover_misspellings_and_hyphenation_variants() -> None:
    pairs = [
        (s[0].text or "", s[1].text or "")
        for s in _sentences(2000, 1)
        if edit_kind(s) == "spelling"
    ]
    assert any("-" in w + r for w, r in pairs)
    assert any("-" not in w + r and " " not in w + r for w, r in pairs)


def test_text_before_and_after_editing_is_singly_spaced_and_clean() -> None:
    for s in _sentences(1500, 9):
        for text in before_and_after(s):
            assert text == text.strip(), ET.tostring(s)
            assert "  " not in text, ET.tostring(s)
            assert not re.search(r" [,.;:)]", text), ET.tostring(s)


def test_markup_characters_in_text_are_escaped(tmp_path: Path) -> None:
    raw = _write(tmp_path, 3000, 2016).decode()
    assert "&lt;" in raw and "&amp;" in raw
    body = re.sub(r"</?(del|ins)>", "", raw.split("<text>\n", 1)[1])
    body = re.sub(r'</?(p|sentence|text|xml)( (pid|sid)="[0-9.]+")?>', "", body)
    assert "<" not in body and ">" not in body


def test_placeholders_appear_in_their_aesw_forms() -> None:
    text = " ".join(before_and_after(s)[1] for s in _sentences(1500, 4))
    for form in (
        "_MATH_",
        "_MATHDISP_",
        "_CITE_",
        "_REF_",
        "_MATH_-th",
        "_MATH_'s",
        "(_CITE_)",
        "Fig. _REF_",
        "Eq. _REF_",
        "et al.",
        "i.e.",
        "e.g.",
    ):
        assert form in text, form


def test_edited_and_clean_sentences_look_alike_apart_from_the_error() -> None:
    lengths: dict[bool, list[int]] = {True: [], False: []}
    symbols: dict[bool, list[int]] = {True: [], False: []}
    for s in _sentences(3000, 21):
        edited = edit_kind(s) != "none"
        after = before_and_after(s)[1]
        lengths[edited].append(len(after.split()))
        symbols[edited].append(len(re.findall(r"_(?:MATH|MATHDISP|CITE|REF)_", after)))
    assert abs(statistics.mean(lengths[True]) - statistics.mean(lengths[False])) < 1.5
    assert abs(statistics.mean(symbols[True]) - statistics.mean(symbols[False])) < 0.2


def test_some_sentences_are_long_enough_to_be_truncated() -> None:
    lengths = [len(before_and_after(s)[0].split()) for s in _sentences(2000, 13)]
    assert 0.01 < sum(n > 60 for n in lengths) / len(lengths) < 0.08
    assert statistics.median(lengths) >= 10


def test_the_committed_corpus_equals_what_the_generator_writes(tmp_path: Path) -> None:
    assert CORPUS.read_bytes() == _write(tmp_path, 3000, 2016), (
        "data/aesw-synthetic.xml drifted from engine/synth.py; regenerate it with "
        "editlens synth --sentences 3000 --seed 2016 --out data/aesw-synthetic.xml"
    )


def test_writing_over_an_existing_file_needs_force(tmp_path: Path) -> None:
    path = tmp_path / "out.xml"
    path.write_text("the user's file")
    with pytest.raises(EditlensError, match="already exists; pass --force"):
        write_aesw(path, 5, 1)
    assert path.read_text() == "the user's file"
    write_aesw(path, 5, 1, force=True)
    assert path.read_bytes() == _write(tmp_path, 5, 1, "fresh.xml")


def test_an_interrupted_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.synth as synth

    def interrupted(n: int, seed: int):
        yield 1, 0, '<sentence sid="1.0">A.</sentence>'
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "_paragraphs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_aesw(tmp_path / "cut.xml", 5, 1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("n", [0, -3])
def test_fewer_than_one_sentence_is_refused(tmp_path: Path, n: int) -> None:
    with pytest.raises(EditlensError, match="at least 1"):
        write_aesw(tmp_path / "none.xml", n, 1)
