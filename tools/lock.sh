#!/usr/bin/env bash
# Refresh constraints-cpu.txt (the lock) or test against the newest releases.
#   tools/lock.sh latest   fresh venv .venv-latest, `pip install -e ".[dev]"` with only the torch pin, then the
#                          README's checks and tests in it: what the next upgrade would break (nothing is written)
#   tools/lock.sh refresh  the same install, then its `pip freeze` becomes constraints-cpu.txt (header kept);
#                          review the diff, run the README's test command, commit both together
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: tools/lock.sh latest|refresh}
venv=.venv-latest
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
grep -E '^torch==' constraints-cpu.txt >"$pins"  # the CPU build stays pinned: a bare torch is a multi-GB CUDA build
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -c "$pins" -e ".[dev]"
"$venv/bin/pip" freeze --exclude-editable | grep -vE '^torch==' >"$pins.frozen"
case "$mode" in
  latest)
    echo "newer than the lock:"
    diff <(grep -E '^[A-Za-z0-9_.-]+==' constraints-cpu.txt | grep -v '^torch==' | sort -f) <(sort -f "$pins.frozen") \
      | grep '^>' || echo "  (nothing)"
    "$venv/bin/ruff" check src tests benchmarks tools
    "$venv/bin/mypy"
    HF_HUB_OFFLINE=1 ISBERT_DATA_DIR=${ISBERT_DATA_DIR:-../shared/data} "$venv/bin/pytest" -q
    ;;
  refresh)
    { grep -E '^#' constraints-cpu.txt; cat "$pins" "$pins.frozen" | sort -f; } >constraints-cpu.txt.new
    mv constraints-cpu.txt.new constraints-cpu.txt
    git --no-pager diff --stat constraints-cpu.txt
    ;;
  *) echo "usage: tools/lock.sh latest|refresh" >&2; exit 2 ;;
esac
rm -f "$pins.frozen"
