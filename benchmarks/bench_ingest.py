"""Ingest speed and memory on generated AESW-format files of growing size.

    python benchmarks/bench_ingest.py [--sizes 10000,100000] [--work DIR]

Each size is ingested in a fresh child process, so its peak RSS is its own: flat peaks across
sizes mean memory does not grow with the file (the reader streams with iterparse and the store
writes in chunks).
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


def child(corpus_file: Path, db: Path) -> None:
    from engine.ingest import ingest
    from engine.store import Store

    started = time.perf_counter()
    with Store(db) as store:
        summary = ingest(store, corpus_file, corpus="bench")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": summary.rows, "seconds": seconds, "peak_mib": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from engine.synth import write_aesw

    work = args.work or Path(tempfile.mkdtemp(prefix="editlens-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        corpus_file = work / f"aesw-{size}.xml"
        if not corpus_file.exists():
            write_aesw(corpus_file, size, seed=11)
        db = work / f"ingest-{size}.duckdb"
        db.unlink(missing_ok=True)
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(corpus_file), str(db)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        rate = figures["rows"] / figures["seconds"]
        print(
            f"{figures['rows']:>9,} sentences ({corpus_file.stat().st_size / 2**20:,.1f} MiB): "
            f"{figures['seconds']:6.1f} s, {rate:8,.0f} sentences/s, peak RSS {figures['peak_mib']:,.0f} MiB"
        )


if __name__ == "__main__":
    main()
