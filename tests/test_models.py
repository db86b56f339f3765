"""Model folders that would load wrong without a word: each is refused in one line.

The folders are built here from a tiny BERT (2 layers, 15-word vocabulary) saved with
``save_pretrained``, then damaged the way a careless copy or a hand-edited config damages them.
No downloads.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import EditlensError
from engine.models import check_safetensors, load_model

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "model", "we", "show", ",",
         ".", "that", "method", "works"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(WORDS)})
    config = BertConfig(
        vocab_size=len(WORDS), hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=32,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def damaged(tiny: Path, tmp_path: Path, damage: Callable[[Path], object]) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny, folder)
    damage(folder)
    return folder


def edit_config(**changes: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(config | changes))

    return edit


def remove(*names: str) -> Callable[[Path], None]:
    return lambda folder: [(folder / name).unlink(missing_ok=True) for name in names]


def cut(keep: Callable[[int], int]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        weights = folder / "model.safetensors"
        data = weights.read_bytes()
        weights.write_bytes(data[: keep(len(data))])

    return damage


def bigger_tokenizer(folder: Path) -> None:
    from transformers import BertTokenizerFast

    words = WORDS + [f"word{i}" for i in range(200)]
    BertTokenizerFast(vocab={word: i for i, word in enumerate(words)}).save_pretrained(folder)


def test_the_intact_tiny_folder_loads_with_its_own_vocabulary(tiny: Path) -> None:
    loaded = load_model(str(tiny))
    assert loaded.layers == 2
    assert loaded.tokenizer.convert_tokens_to_ids("method") == WORDS.index("method")


# name: (how the folder is damaged, what the one line must say)
BAD_FOLDERS: dict[str, tuple[Callable[[Path], object], str]] = {
    "weights without tokenizer files": (
        remove("vocab.txt", "tokenizer.json", "tokenizer_config.json"),
        "no tokenizer files",
    ),
    "config with more layers than the weights": (
        edit_config(num_hidden_layers=4),
        "the weights lack layer(s) 2, 3",
    ),
    "config with fewer layers than the weights": (
        edit_config(num_hidden_layers=1),
        "the weights hold unused layer(s) 1",
    ),
    "config with another vocabulary size": (
        edit_config(vocab_size=100),
        "word_embeddings.weight is (15, 8) in the weights but (100, 8) in config.json",
    ),
    "config with another hidden size": (
        edit_config(hidden_size=16, intermediate_size=32),
        "config.json and the weights disagree",
    ),
    "a tokenizer bigger than the embeddings": (bigger_tokenizer, "the tokenizer has 219 tokens"),
    "an embedding table far bigger than the tokenizer": (
        lambda folder: edit_config(vocab_size=1000)(folder),
        "config.json and the weights disagree",
    ),
    "empty weights": (cut(lambda size: 0), "is not a safetensors file or is cut short"),
    "weights cut in the header": (
        cut(lambda size: 40),
        "is not a safetensors file or is cut short",
    ),
    "weights cut in the tensors": (cut(lambda size: size - 100), "is cut short"),
    "garbage weights": (
        lambda folder: (folder / "model.safetensors").write_bytes(b"\xff" * 4096),
        "is not a safetensors file",
    ),
    "a header that is not JSON": (
        lambda folder: (folder / "model.safetensors").write_bytes(
            (16).to_bytes(8, "little") + b"{not json at all" + b"\0" * 64
        ),
        "unreadable safetensors header",
    ),
    "a config that is not JSON": (
        lambda folder: (folder / "config.json").write_text("{not json"),
        "cannot be loaded",
    ),
    "pickle weights only": (
        lambda folder: (folder / "model.safetensors").rename(folder / "pytorch_model.bin"),
        "pickle checkpoint",
    ),
    "no config": (remove("config.json"), "no config.json"),
}


@pytest.mark.parametrize("case", BAD_FOLDERS)
def test_a_damaged_model_folder_is_refused_in_one_line(
    tiny: Path, tmp_path: Path, case: str
) -> None:
    damage, says = BAD_FOLDERS[case]
    folder = damaged(tiny, tmp_path, damage)
    with pytest.raises(EditlensError) as refused:
        load_model(str(folder))
    message = str(refused.value)
    assert says in message
    assert "\n" not in message


def test_a_checkpoint_whose_head_has_another_label_count_loads_with_a_new_head(
    tiny: Path, tmp_path: Path
) -> None:
    folder = damaged(tiny, tmp_path, edit_config(id2label={"0": "a", "1": "b", "2": "c"}))
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(folder, ignore_mismatched_sizes=True)
    model.save_pretrained(folder)  # a 3-label checkpoint
    loaded = load_model(str(folder))
    assert loaded.model.config.num_labels == 2


def test_safetensors_are_checked_from_the_header_without_loading(
    tiny: Path, tmp_path: Path
) -> None:
    check_safetensors(tiny / "model.safetensors")  # intact: no error
    folder = damaged(tiny, tmp_path, cut(lambda size: size - 1))
    with pytest.raises(EditlensError, match="is cut short"):
        check_safetensors(folder / "model.safetensors")


@pytest.mark.slow
def test_the_bundled_model_and_its_random_twin_still_load() -> None:
    for name in ("minilm", "minilm-random"):
        loaded = load_model(name)
        assert loaded.layers == 6
        assert len(loaded.tokenizer) == loaded.model.get_input_embeddings().num_embeddings


def test_a_checkpoint_is_refused_a_path_that_is_a_file(tiny: Path, tmp_path: Path) -> None:
    from engine.models import save_checkpoint

    loaded = load_model(str(tiny))
    target = tmp_path / "store.duckdb"
    target.write_bytes(b"precious")
    with pytest.raises(EditlensError, match="is a file, not a checkpoint folder"):
        save_checkpoint(loaded, target, {"model": "tiny"})
    assert target.read_bytes() == b"precious"


def test_a_saved_checkpoint_loads_back_with_its_meta(tiny: Path, tmp_path: Path) -> None:
    from engine.models import save_checkpoint

    save_checkpoint(load_model(str(tiny)), tmp_path / "ckpt", {"model": "tiny", "corpus": "c"})
    again = load_model(str(tmp_path / "ckpt"))
    assert again.meta == {"model": "tiny", "corpus": "c"}
    assert len(again.tokenizer) == again.model.get_input_embeddings().num_embeddings


def saved(tmp_path: Path, tiny: Path, model: object) -> Path:
    """``model`` saved beside the tiny tokenizer, as a user's pre-trained folder."""
    folder = tmp_path / "pretrained"
    model.save_pretrained(folder)  # type: ignore[attr-defined]
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny / name, folder / name)
    return folder


def tiny_config(kind: str = "bert", **changes: object):
    from transformers import BertConfig, DistilBertConfig

    if kind == "distilbert":
        return DistilBertConfig(vocab_size=len(WORDS), dim=8, n_layers=2, n_heads=2,
                                hidden_dim=16, max_position_embeddings=32, **changes)  # fmt: skip
    return BertConfig(vocab_size=len(WORDS), hidden_size=8, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=16, max_position_embeddings=32,
                      **changes)  # fmt: skip


@pytest.mark.parametrize(
    "make",
    ["BertModel", "BertForPreTraining", "BertForMaskedLM", "DistilBertForMaskedLM"],
)
def test_a_pretrained_checkpoint_loads_with_a_new_head_whatever_head_it_had(
    tiny: Path, tmp_path: Path, make: str
) -> None:
    import transformers

    config = tiny_config("distilbert" if make.startswith("Distil") else "bert")
    folder = saved(tmp_path, tiny, getattr(transformers, make)(config))
    assert load_model(str(folder)).layers == 2


def test_a_base_model_checkpoint_with_a_config_of_more_layers_is_refused(
    tiny: Path, tmp_path: Path
) -> None:
    from transformers import BertModel

    folder = saved(tmp_path, tiny, BertModel(tiny_config()))
    edit_config(num_hidden_layers=3)(folder)
    with pytest.raises(EditlensError, match=r"the weights lack layer\(s\) 2"):
        load_model(str(folder))


def test_a_base_model_checkpoint_with_a_config_of_fewer_layers_is_refused(
    tiny: Path, tmp_path: Path
) -> None:
    from transformers import BertModel

    folder = saved(tmp_path, tiny, BertModel(tiny_config()))
    edit_config(num_hidden_layers=1)(folder)
    with pytest.raises(EditlensError, match=r"the weights hold unused layer\(s\) 1"):
        load_model(str(folder))
