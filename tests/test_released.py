"""The study's released rationale JSONL: fields, skipped rows, minimal pairs, the real files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from engine.corpus import EDITED_SUFFIX, Example
from engine.errors import InputError
from engine.ingest import ingest
from engine.released import Skipped, kind_from_name, read_released
from engine.sources import open_source
from engine.store import Store

RELEASED = Path(__file__).parents[2] / "shared" / "aesw-rationales"

ROW_5_2 = {
    "id": "5.2",
    "sent": "The applied control law is now defined by: _MATHDISP_",
    "words": ["[CLS]", "The", "applied", "control", "law", "is", "now", "defined", "by", ":",
              "_MATHDISP_", "[SEP]"],
    "best_words": [9],
}  # fmt: skip
ROW_EMPTY = {
    "id": "29865.6",
    "sent": ", taken along _MATH_ axis and defined as follows: _MATHDISP_  .",
    "words": ["[CLS]", ",", "taken", "along", "_MATH_", "axis", "and", "defined", "as",
              "follows", ":", "_MATHDISP_", ".", "[SEP]"],
    "best_words": [],
}  # fmt: skip
ROW_TWO = {
    "id": "7.3",
    "sent": "We show , that the the method works.",
    "words": ["[CLS]", "We", "show", ",", "that", "the", "the", "method", "works", ".", "[SEP]"],
    "best_words": [5, 3],
}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read(
    path: Path, kind: str = "deleted", *, pairs: bool = False
) -> tuple[list[Example], Skipped]:
    skipped = Skipped()
    with open_source(path) as source:
        return list(read_released(source, kind, skipped, pairs=pairs)), skipped


def test_fields_map_to_an_example_without_cls_and_sep(tmp_path: Path) -> None:
    (example,), skipped = read(write_jsonl(tmp_path / "deleted.jsonl", [ROW_5_2]))
    assert example.id == "5.2"
    assert example.text == ROW_5_2["sent"]
    assert example.words == tuple(ROW_5_2["words"][1:-1])
    assert example.label is True
    assert example.kind == "deleted"
    assert skipped.total == 0


def test_best_words_shift_by_one_once_cls_is_dropped(tmp_path: Path) -> None:
    (example, two), _ = read(write_jsonl(tmp_path / "deleted.jsonl", [ROW_5_2, ROW_TWO]))
    assert example.rationale == (8,)
    assert example.words[8] == ":"
    assert two.rationale == (2, 4)  # sorted, whatever order best_words had
    assert [two.words[i] for i in two.rationale] == [",", "the"]


def test_word_spans_are_recovered_from_the_sentence(tmp_path: Path) -> None:
    (example,), _ = read(write_jsonl(tmp_path / "deleted.jsonl", [ROW_TWO]))
    spans = zip(example.starts, example.ends, strict=True)
    assert [example.text[s:e] for s, e in spans] == list(example.words)
    assert example.starts[4:6] == (15, 19)  # the second "the" is found after the first


def test_an_empty_rationale_is_skipped_and_counted_with_its_id(tmp_path: Path) -> None:
    examples, skipped = read(write_jsonl(tmp_path / "deleted.jsonl", [ROW_5_2, ROW_EMPTY]))
    assert [e.id for e in examples] == ["5.2"]
    assert skipped.total == 1
    (ids,) = skipped.reasons.values()
    assert ids == ["29865.6"]


def test_pairs_add_an_edited_twin_after_each_deleted_row(tmp_path: Path) -> None:
    examples, _ = read(write_jsonl(tmp_path / "deleted.jsonl", [ROW_TWO, ROW_5_2]), pairs=True)
    assert [e.id for e in examples] == ["7.3", "7.3/edited", "5.2", "5.2/edited"]
    twin = examples[1]
    assert twin.label is False
    assert twin.kind == "none"
    assert twin.rationale == ()
    assert twin.text == "We show that the method works."
    assert twin.words == ("We", "show", "that", "the", "method", "works", ".")
    spans = zip(twin.starts, twin.ends, strict=True)
    assert [twin.text[s:e] for s, e in spans] == list(twin.words)
    assert examples[3].text == "The applied control law is now defined by _MATHDISP_"


def test_pairs_collapse_spacing_left_by_a_removed_word_at_the_start(tmp_path: Path) -> None:
    row = {"id": "1.0", "sent": ", taken  along _MATH_.", "words": ["[CLS]", ",", "taken",
           "along", "_MATH_", ".", "[SEP]"], "best_words": [1]}  # fmt: skip
    _, twin = read(write_jsonl(tmp_path / "deleted.jsonl", [row]), pairs=True)[0]
    assert twin.text == "taken along _MATH_."


def test_pairs_are_made_for_deleted_rows_only(tmp_path: Path) -> None:
    examples, _ = read(write_jsonl(tmp_path / "spelling.jsonl", [ROW_5_2]), "spelling", pairs=True)
    assert [(e.id, e.kind) for e in examples] == [("5.2", "spelling")]


def test_an_empty_rationale_row_gets_no_twin(tmp_path: Path) -> None:
    examples, skipped = read(write_jsonl(tmp_path / "deleted.jsonl", [ROW_EMPTY]), pairs=True)
    assert examples == []
    assert skipped.total == 1


def test_a_pair_lands_in_the_same_split_through_ingest(tmp_path: Path) -> None:
    rows = [dict(ROW_5_2, id=f"{i}.{i % 5}") for i in range(60)]
    path = write_jsonl(tmp_path / "deleted.jsonl", rows)
    with Store(tmp_path / "store.duckdb") as store:
        summary = ingest(store, path, pairs=True)
        records = [r for batch in store.export_batches("deleted") for r in batch.to_pylist()]
    assert (summary.rows, summary.pairs, summary.needs_edit) == (120, 60, 60)
    split_of = {r["id"]: r["split"] for r in records}
    assert len(split_of) == 120
    for row in rows:
        assert split_of[row["id"] + EDITED_SUFFIX] == split_of[row["id"]]
    assert len(set(split_of.values())) > 1  # the hash really spreads the pairs


def test_kind_comes_from_the_file_name() -> None:
    assert kind_from_name("deleted.jsonl.gz") == "deleted"
    assert kind_from_name("spelling.jsonl") == "spelling"
    assert kind_from_name("rationales.jsonl") is None


@pytest.mark.parametrize(
    ("lines", "where"),
    [
        ([json.dumps(ROW_5_2), "not json at all"], "line 2: is not JSON"),
        ([json.dumps(ROW_5_2), "[1, 2]"], "line 2: is not a JSON object"),
        (
            [json.dumps({k: v for k, v in ROW_5_2.items() if k != "best_words"})],
            "line 1 (id 5.2): lacks",
        ),
        ([json.dumps(dict(ROW_5_2, words=["[CLS]", "nope", "[SEP]"]))], "line 1 (id 5.2)"),
        ([json.dumps(dict(ROW_5_2, best_words=[0]))], "line 1 (id 5.2)"),
        ([json.dumps(dict(ROW_5_2, sent=None))], "line 1 (id 5.2)"),
    ],
    ids=["not-json", "not-object", "lacks-field", "word-not-in-sent", "cls-index", "sent-null"],
)
def test_a_bad_line_is_a_one_line_error_naming_file_and_line(
    tmp_path: Path, lines: list[str], where: str
) -> None:
    path = tmp_path / "deleted.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{where}")
    assert "\n" not in message


# name: (the row's changes, what the one line must say after "<file>:line 1")
BAD_VALUES: dict[str, tuple[dict, str]] = {
    "null id": ({"id": None}, ": id is null, not a string"),
    "object id": ({"id": {"a": 1}}, ': id is {"a": 1}, not a string'),
    "list id": ({"id": ["5.2"]}, ': id is ["5.2"], not a string'),
    "boolean id": ({"id": True}, ": id is true, not a string"),
    "float id": ({"id": 5.1}, ": id is 5.1, not a string"),
    "empty id": ({"id": ""}, ': id is "", not a string'),
    "best_words true": ({"best_words": True}, " (id 5.2): words or best_words is malformed"),
    "best_words [true]": ({"best_words": [True]}, " (id 5.2): best_words must be indices"),
    "best_words [1.0]": ({"best_words": [1.0]}, " (id 5.2): best_words must be indices"),
    "best_words null": ({"best_words": None}, " (id 5.2): words or best_words is malformed"),
    "a number among words": (
        {"words": ["[CLS]", "The", 3, "[SEP]"]},
        " (id 5.2): words holds a non-string",
    ),
    "a spaced word": (
        {"words": ["[CLS]", "The applied", "[SEP]"]},
        " (id 5.2): words holds a non-string, empty or spaced word",
    ),
    "words an object": ({"words": {"0": "The"}}, " (id 5.2): words or best_words is malformed"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_a_badly_typed_value_is_a_one_line_error_naming_file_and_line(
    tmp_path: Path, case: str
) -> None:
    changes, says = BAD_VALUES[case]
    path = write_jsonl(tmp_path / "deleted.jsonl", [ROW_5_2 | changes])
    with pytest.raises(InputError) as caught:
        read(path)
    assert str(caught.value).startswith(f"{path}:line 1{says}")


@pytest.mark.parametrize("content", ["", "\n\n  \n"], ids=["empty", "blank-lines"])
def test_a_file_without_rows_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "deleted.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match="holds no rows"):
        read(path)


def test_a_file_of_skipped_rows_only_is_not_an_error(tmp_path: Path) -> None:
    examples, skipped = read(write_jsonl(tmp_path / "deleted.jsonl", [ROW_EMPTY]))
    assert (examples, skipped.total) == ([], 1)


def test_non_utf8_bytes_are_reported_on_their_own_line(tmp_path: Path) -> None:
    path = tmp_path / "deleted.jsonl"
    good = json.dumps(ROW_5_2).encode()
    path.write_bytes(good + b"\n" + good + b"\n" + good.replace(b"applied", b"appl\xefed") + b"\n")
    with pytest.raises(InputError, match=r"deleted\.jsonl:line 3: is not UTF-8"):
        read(path)


def test_gzip_jsonl_reads_like_plain(tmp_path: Path) -> None:
    plain = write_jsonl(tmp_path / "deleted.jsonl", [ROW_5_2, ROW_TWO])
    packed = tmp_path / "deleted.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read(packed)[0] == read(plain)[0]


# -- the real released files -------------------------------------------------------------------

needs_release = pytest.mark.skipif(
    not (RELEASED / "deleted.jsonl.gz").exists(), reason="the released rationale files are absent"
)


@needs_release
def test_the_released_deleted_file_ingests_4702_rows_and_skips_29865_6(tmp_path: Path) -> None:
    with Store(tmp_path / "store.duckdb") as store:
        summary = ingest(store, RELEASED / "deleted.jsonl.gz")
        (corpus,) = store.corpora()
    assert (summary.rows, summary.skipped.total, summary.pairs) == (4_702, 1, 0)
    assert [ids for ids in summary.skipped.reasons.values()] == [["29865.6"]]
    assert (corpus.name, corpus.examples, corpus.scorable) == ("deleted", 4_702, 4_702)
    assert corpus.by_kind == {"deleted": 4_702}


@needs_release
def test_the_released_deleted_file_with_pairs_gives_9404_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "store.duckdb") as store:
        summary = ingest(store, RELEASED / "deleted.jsonl.gz", pairs=True)
        (corpus,) = store.corpora()
    assert (summary.rows, summary.pairs, summary.needs_edit) == (9_404, 4_702, 4_702)
    assert corpus.by_kind == {"deleted": 4_702, "none": 4_702}


@needs_release
def test_the_released_spelling_file_ingests_596_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "store.duckdb") as store:
        summary = ingest(store, RELEASED / "spelling.jsonl.gz", pairs=True)
    assert (summary.rows, summary.skipped.total, summary.pairs) == (596, 0, 0)
    assert summary.by_kind == {"spelling": 596}
