"""Wall time of the 7-task STS suite, and what the fast ONNX int8 backend costs in accuracy.

Evaluates the model twice with the evaluation harness (no embedding cache): sentence-transformers fp32 (torch)
and isbert's ONNX int8 export of the same model, in one run. Reports each wall time, the 7-task STS averages
and their difference (the speed target allows at most 0.5 points).

    python benchmarks/eval_suite.py --model offline-minilm --data-dir ../shared/data

Writes benchmarks/results/eval_suite.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STS_TASKS = ("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICK-R")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="offline-minilm")
    default_data = os.environ.get("ISBERT_DATA_DIR", str(HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--data-dir", default=default_data)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=str(HERE / "results" / "eval_suite"))
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    torch.set_num_threads(args.threads)
    import isbert
    from isbert.cli import _quiet_libraries
    from isbert.evaluation import evaluate
    from isbert.onnx_backend import export_onnx

    _quiet_libraries()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        export = export_onnx(isbert.load(args.model, device="cpu"), Path(scratch) / "onnx", source=args.model)
        for name, model in (("torch fp32", args.model), ("onnx int8", str(export))):
            start = time.perf_counter()
            results = evaluate(model, "sts", args.data_dir, show_progress=False, model_name=name)
            seconds = time.perf_counter() - start
            scores = {task: results[task]["spearman"] for task in STS_TASKS}
            rows.append({"backend": name, "seconds": seconds, "average": sum(scores.values()) / 7, **scores})
            print(json.dumps(rows[-1]))
    delta = rows[1]["average"] - rows[0]["average"]
    result = {"model": args.model, "threads": args.threads, "rows": rows, "int8_minus_fp32_average": delta}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"7-task STS suite (cosine Spearman x100) of {args.model}, {args.threads} threads, no embedding cache.",
        "",
        "| backend | wall time (s) | " + " | ".join(STS_TASKS) + " | Avg. |",
        "|---|---|" + "---|" * (len(STS_TASKS) + 1),
    ]
    for row in rows:
        cells = " | ".join(f"{row[task]:.2f}" for task in STS_TASKS)
        lines.append(f"| {row['backend']} | {row['seconds']:.0f} | {cells} | {row['average']:.2f} |")
    lines += ["", f"int8 minus fp32, 7-task average: {delta:+.2f} points."]
    output.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
