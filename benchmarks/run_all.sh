#!/usr/bin/env bash
# All benchmarks, one after the other (about 15 minutes on 2 CPU cores); results in benchmarks/results/.
# Usage: bash benchmarks/run_all.sh [DATA_DIR]   (default: $ISBERT_DATA_DIR, else ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
export ISBERT_DATA_DIR="${1:-${ISBERT_DATA_DIR:-../shared/data}}"
python=".venv/bin/python"
[[ -x "$python" ]] || python=python3
"$python" benchmarks/encode_throughput.py
"$python" benchmarks/eval_suite.py
"$python" benchmarks/training_step.py
"$python" benchmarks/training_throughput.py
"$python" benchmarks/search_scale.py
{
  echo "# Benchmark results"
  echo
  echo "Machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) cores; $(date -u +%Y-%m-%d)."
  for name in encode_throughput eval_suite training_step training_throughput search_scale encode_large; do
    if [[ -f "benchmarks/results/$name.md" ]]; then
      echo; echo "## $name"; echo; cat "benchmarks/results/$name.md"
    fi
  done
} > benchmarks/results/README.md
cat benchmarks/results/README.md
