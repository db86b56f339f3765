"""Engine speed and memory, as figures and ratios measured in one process.

    python benchmarks/bench_engine.py [--sentences N] [--memory-sentences M] [--work DIR]

1. Per device (``--devices``; default the CPU and, when there is one, the GPU): evaluation with
   the attention methods (attention, attention_max, rollout; every layer; metrics and store
   writes included) against a bare batched forward pass of the same model on the same sentences
   (tokenize, length-bucket, forward under inference_mode), target ratio >= 0.75; evaluation
   with integrated gradients alone; training examples/s. The same attention evaluation with each
   chunk written on a thread while the next computes, against written before it: which one a
   device gets by default (``WRITES_BEHIND_ON``) follows from this pair.
2. Training examples/s with length bucketing against padding every batch to max length.
3. Peak memory while evaluating M sentences, sampled after every chunk: flat, not growing.
4. Store size in bytes per evaluated example.
5. Each rationale method's own cost (word scores for every batch, evaluator's settings) as a
   ratio to a bare forward pass over the same batches: attention methods read the forward pass
   (near 0), occlusion runs about words-per-sentence forward passes, batched.
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
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from engine import evaluate as evaluate_module
from engine.align import encode
from engine.attribution import Inputs, build, token_to_word_matrix, word_scores
from engine.batching import bucketed, collate
from engine.evaluate import WRITES_BEHIND_ON, EvalSpec, evaluate
from engine.ingest import ingest
from engine.models import load_model
from engine.store import Store
from engine.synth import write_aesw
from engine.train import TrainSpec, train

ATTENTION_METHODS = ("attention", "attention_max", "rollout")


def make_store(work: Path, sentences: int, name: str) -> Path:
    corpus_file = work / f"{name}.xml"
    write_aesw(corpus_file, sentences, seed=7)
    db = work / f"{name}.duckdb"
    with Store(db) as store:
        ingest(store, corpus_file, corpus=name, split="test")
    return db


def bare_forward(db: Path, corpus: str, batch_size: int, max_length: int, device: str) -> float:
    """Sentences/s of tokenize + bucket + forward: the floor any evaluation has to pay."""
    loaded = load_model("minilm")
    model = loaded.model.eval().to(device)
    with Store(db, read_only=True) as store:
        table = next(iter(store.example_batches(corpus, batch_rows=10**9)))
    started = time.perf_counter()
    encoded = encode(
        loaded.tokenizer,
        table.column("text").to_pylist(),
        table.column("starts").to_pylist(),
        table.column("ends").to_pylist(),
        max_length,
    )
    with torch.inference_mode():
        for rows in bucketed([len(e.input_ids) for e in encoded], batch_size):
            batch = collate(encoded, rows, loaded.tokenizer.pad_token_id).to(torch.device(device))
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        logits.cpu()  # wait for the device, as the evaluation's copy to the store does
    return table.num_rows / (time.perf_counter() - started)


def evaluation_rate(
    db: Path, corpus: str, batch_size: int, max_length: int, device: str, methods: tuple[str, ...]
) -> float:
    """Sentences/s of the real evaluation with ``methods``, metrics and store writes included."""
    spec = EvalSpec(
        corpus=corpus, model="minilm", split="test", methods=methods, batch_size=batch_size,
        max_length=max_length, faithfulness=False, device=device,
    )  # fmt: skip
    load_model("minilm")  # warm the file cache so both sides pay the same load
    rates = []
    evaluate(db, spec, on_progress=lambda p: rates.append(p.examples_per_s))
    return rates[-1]


def evaluation_rate_writing(
    behind: bool,
    db: Path,
    corpus: str,
    batch_size: int,
    max_length: int,
    device: str,
    methods: tuple[str, ...],
) -> float:
    """``evaluation_rate`` with each chunk written on a thread while the next computes (behind)
    or in the caller before it (in front), whatever the device's default."""
    kind = torch.device(device).type
    on = WRITES_BEHIND_ON | {kind} if behind else WRITES_BEHIND_ON - {kind}
    with patch.object(evaluate_module, "WRITES_BEHIND_ON", on):
        return evaluation_rate(db, corpus, batch_size, max_length, device, methods)


def method_costs(db: Path, corpus: str, batch_size: int, max_length: int) -> dict[str, float]:
    """Seconds of each method's word scores over all batches / seconds of a bare forward pass
    over the same batches (the forward each method reads is made once, outside the clocks)."""
    loaded = load_model("minilm")
    model, pad = loaded.model.eval(), loaded.tokenizer.pad_token_id
    spec = EvalSpec(corpus=corpus, batch_size=batch_size, max_length=max_length)
    methods = build(spec.methods, spec)
    with Store(db, read_only=True) as store:
        table = next(iter(store.example_batches(corpus, batch_rows=10**9)))
    encoded = encode(
        loaded.tokenizer,
        table.column("text").to_pylist(),
        table.column("starts").to_pylist(),
        table.column("ends").to_pylist(),
        max_length,
    )
    bare, spent = 0.0, dict.fromkeys(spec.methods, 0.0)
    for rows in bucketed([len(e.input_ids) for e in encoded], batch_size):
        batch = collate(encoded, rows, pad)
        started = time.perf_counter()
        with torch.inference_mode():
            model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        bare += time.perf_counter() - started
        with torch.inference_mode():
            out = model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                output_attentions=True, output_hidden_states=True,
            )  # fmt: skip
        inputs = Inputs(
            model, batch, [str(r) for r in rows],
            tuple(a.clone() for a in out.attentions), torch.ones(len(rows), dtype=torch.long),
            tuple(h.clone() for h in out.hidden_states),
        )  # fmt: skip
        matrix = token_to_word_matrix(batch.word_of_token, batch.words)
        for method in methods:
            started = time.perf_counter()
            word_scores(method, inputs, matrix, spec.aggregation)
            spent[method.name] += time.perf_counter() - started
    return {name: seconds / bare for name, seconds in spent.items()}


def training_rate(db: Path, corpus: str, work: Path, device: str, pad: bool = False) -> float:
    spec = TrainSpec(
        corpus=corpus, epochs=1, limit=512, pad_to_max=pad, device=device,
        out=work / f"ckpt-{device.replace(':', '')}-{pad}",
    )  # fmt: skip
    return train(db, spec).history[0]["examples_per_s"]


def default_devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({torch.get_num_threads()} threads)"


def memory_profile(db: Path, corpus: str) -> list[tuple[int, float]]:
    """(examples done, peak RSS in MiB) after every chunk of an attention evaluation, measured in
    a fresh process so nothing earlier in this one sets the peak."""
    result = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(db), corpus],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return [tuple(sample) for sample in json.loads(result.stdout.strip().splitlines()[-1])]


def memory_child(db: Path, corpus: str) -> None:
    spec = EvalSpec(
        corpus=corpus, model="minilm", split="test", methods=ATTENTION_METHODS, faithfulness=False
    )
    samples: list[tuple[int, float]] = []
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # noqa: E731
    evaluate(db, spec, on_progress=lambda p: samples.append((p.done, peak())))
    print(json.dumps(samples))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=1024)
    parser.add_argument("--memory-sentences", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--cost-sentences", type=int, default=256)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument(
        "--devices", type=lambda text: text.split(","), default=default_devices(),
        help="comma-separated, e.g. cpu,cuda:0 (default: the CPU, and the GPU when there is one)",
    )  # fmt: skip
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(Path(args.memory_child[0]), args.memory_child[1])
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="editlens-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"torch threads: {torch.get_num_threads()}; work dir: {work}")

    db = make_store(work, args.sentences, "speed")
    with Store(db) as store:  # training needs train/dev splits: re-ingest the same file hashed
        ingest(store, work / "speed.xml", corpus="speed-train")
    print(f"1. per device ({args.sentences:,} sentences, batch {args.batch_size}):")
    for device in args.devices:
        bare_forward(db, "speed", args.batch_size, args.max_length, device)  # warm-up
        bare, full, behind, in_front = [], [], [], []
        attention = (db, "speed", args.batch_size, args.max_length, device, ATTENTION_METHODS)
        for _ in range(args.repeats):  # interleaved, so a busy moment hits every side alike
            bare.append(bare_forward(db, "speed", args.batch_size, args.max_length, device))
            full.append(evaluation_rate(*attention))
            behind.append(evaluation_rate_writing(True, *attention))
            in_front.append(evaluation_rate_writing(False, *attention))
        ratio = sorted(f / b for f, b in zip(full, bare, strict=True))[len(full) // 2]
        overlap = sorted(f / b for f, b in zip(behind, in_front, strict=True))[len(full) // 2]
        ig = evaluation_rate(
            db, "speed", args.batch_size, args.max_length, device, ("integrated_gradients",)
        )
        trained = training_rate(db, "speed-train", work, device)
        print(f"   {device_name(device)}")
        print(
            f"     bare forward            {max(bare):8.1f} sentences/s  (best of {args.repeats})"
        )
        print(
            f"     attention evaluation    {max(full):8.1f} sentences/s  (all layers, metrics, store)"
        )
        print(
            f"     ratio, median of {args.repeats} interleaved pairs: {ratio:.2f} (target >= 0.75)"
        )
        print(
            f"     writes behind / in front {max(behind):7.1f} / {max(in_front):.1f} sentences/s"
            f"  (median pair: {overlap:.2f}; behind by default: "
            f"{torch.device(device).type in WRITES_BEHIND_ON})"
        )
        print(f"     integrated gradients    {ig:8.1f} sentences/s  "
              f"({EvalSpec(corpus='').ig_steps} steps, metrics, store)")  # fmt: skip
        print(f"     training                {trained:8.1f} examples/s")

    bucketed_rate = training_rate(db, "speed-train", work, "cpu")
    padded_rate = training_rate(db, "speed-train", work, "cpu", pad=True)
    print(f"2. training on the CPU, bucketed      {bucketed_rate:8.1f} examples/s")
    print(
        f"   training on the CPU, padded to max {padded_rate:8.1f} examples/s  speed-up {bucketed_rate / padded_rate:.2f}x"
    )

    memory_db = make_store(work, args.memory_sentences, "memory")
    samples = memory_profile(memory_db, "memory")
    marks = [samples[len(samples) * i // 4] for i in range(4)] + [samples[-1]]
    print(
        "3. peak RSS during evaluation: "
        + ", ".join(f"{done:,} → {rss:,.0f} MiB" for done, rss in marks)
    )
    growth = samples[-1][1] - samples[len(samples) // 4][1]
    print(f"   growth from 25 % to 100 % of the corpus: {growth:+.0f} MiB")

    size = memory_db.stat().st_size
    print(f"4. store: {size / args.memory_sentences:,.0f} bytes per evaluated example "
          f"({size / 2**20:,.0f} MiB for {args.memory_sentences:,}; attention methods, 6 layers)")  # fmt: skip

    cost_db = make_store(work, args.cost_sentences, "cost")
    costs = method_costs(cost_db, "cost", args.batch_size, args.max_length)
    print(f"5. each method's cost as forward passes ({args.cost_sentences:,} sentences; "
          f"integrated gradients with {EvalSpec(corpus='').ig_steps} steps)")  # fmt: skip
    for name, ratio in costs.items():
        print(f"   {name:22} {ratio:8.2f} x a bare forward pass")


if __name__ == "__main__":
    main()
