"""Training memory against corpus size: peak RSS of one epoch on 10k..1M synthetic sentences.

    python benchmarks/bench_train_memory.py [--sizes 10000,100000,1000000] [--work DIR]
                                            [--baseline-max N]

For each size: a synthetic AESW file (engine.synth), ingested into its own store, then two fresh
child processes, so each peak is its own:
- train: one epoch of ``editlens train`` (streamed from the store in chunks) with a tiny BERT
  (2 layers, 32 wide: the model is not what grows with the corpus, and it keeps 1M sentences
  to minutes on a CPU), dev evaluation and checkpoints included;
- baseline: what training held before it streamed, the whole train split read and encoded in
  memory, up to ``--baseline-max`` sentences.
Flat train peaks across sizes mean memory does not grow with the corpus.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BATCH = 128
MAX_LENGTH = 64


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tiny_model(directory: Path) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from engine.models import bundled_minilm

    if (directory / "model.safetensors").is_file():
        return directory
    tokenizer = AutoTokenizer.from_pretrained(bundled_minilm(), local_files_only=True)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=MAX_LENGTH, num_labels=2,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def train_child(db: Path, model: Path, out: Path) -> None:
    import torch

    from engine.train import TrainSpec, train

    torch.set_num_threads(1)  # the figure is memory; one thread suffers least on a shared machine

    spec = TrainSpec(
        corpus="bench", model=str(model), epochs=1, batch_size=BATCH, max_length=MAX_LENGTH,
        lr=1e-3, out=out, device="cpu", checkpoint_every=2000,
    )  # fmt: skip
    started = time.perf_counter()
    result = train(db, spec)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib(), "run": result.run_id}))


def baseline_child(db: Path, model: Path) -> None:
    """The train split read and encoded whole, as training did before it streamed."""
    from engine.align import encode
    from engine.models import load_model
    from engine.store import Store

    started = time.perf_counter()
    loaded = load_model(str(model))
    columns: dict[str, list] = {"text": [], "starts": [], "ends": [], "label": []}
    with Store(db, read_only=True) as store:
        for batch in store.example_batches("bench", splits=["train"]):
            for name, values in columns.items():
                values.extend(batch.column(name).to_pylist())
    encoded = []
    for i in range(0, len(columns["text"]), 4096):
        part = slice(i, i + 4096)
        encoded += encode(
            loaded.tokenizer, columns["text"][part], columns["starts"][part],
            columns["ends"][part], MAX_LENGTH,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib(), "examples": len(encoded)}))


def child(kind: str, *paths: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, f"--{kind}", *map(str, paths)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--baseline-max", type=int, default=1_000_000)
    parser.add_argument("--train", nargs=3, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        train_child(*args.train)
        return
    if args.baseline:
        baseline_child(*args.baseline)
        return
    from engine.ingest import ingest
    from engine.store import Store
    from engine.synth import write_aesw

    work = args.work or Path(tempfile.mkdtemp(prefix="editlens-train-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    model = tiny_model(work / "tiny-bert")
    print(f"tiny BERT (2 layers, 32 wide), batch {BATCH}, max length {MAX_LENGTH}, 1 epoch, CPU")
    for size in (int(s) for s in args.sizes.split(",")):
        corpus_file, db = work / f"aesw-{size}.xml", work / f"train-{size}.duckdb"
        if not db.exists():
            if not corpus_file.exists():
                write_aesw(corpus_file, size, seed=11)
            with Store(db) as store:
                ingest(store, corpus_file, corpus="bench")
        with Store(db, read_only=True) as store:
            examples = store.count_examples("bench", ["train"])
        out = work / f"ckpt-{size}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        trained = child("train", db, model, out)
        line = (
            f"{size:>9,} sentences ({examples:,} train): streamed training peak RSS "
            f"{trained['peak_mib']:,.0f} MiB ({trained['seconds']:,.0f} s)"
        )
        if size <= args.baseline_max:
            held = child("baseline", db, model)
            line += (
                f"; whole split held and encoded: {held['peak_mib']:,.0f} MiB "
                f"({held['seconds']:,.0f} s, before any training)"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
