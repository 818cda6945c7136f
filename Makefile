.PHONY: test test-latest lock reliability mutation benchmarks

test:
	HF_HUB_OFFLINE=1 ISBERT_DATA_DIR=$${ISBERT_DATA_DIR:-../shared/data} .venv/bin/pytest

# The README's checks and tests against the newest releases of every dependency (only the CPU torch stays pinned), in
# a fresh .venv-latest: what the next upgrade of the lock would break. Run before `make lock`.
test-latest:
	bash tools/lock.sh latest

# Refresh constraints-cpu.txt (the lock) from a fresh install of the newest releases; see CONTRIBUTING.md.
lock:
	bash tools/lock.sh refresh

# Fault injection (SIGKILL, full disk, torn files) and fuzzing of every parser; ends with a one-line summary.
reliability:
	HF_HUB_OFFLINE=1 ISBERT_DATA_DIR=$${ISBERT_DATA_DIR:-../shared/data} .venv/bin/pytest -m reliability -p no:cacheprovider -q

# Targeted mutation testing (tools/mutation.py): plants ~50 plausible bugs one at a time in a temporary copy and
# prints the mutation score and the survivors. About 20 minutes on 2 cores, so not in CI; last result in
# docs/testing.md. One mutant: `.venv/bin/python tools/mutation.py --only ID`.
mutation:
	HF_HUB_OFFLINE=1 ISBERT_DATA_DIR=$${ISBERT_DATA_DIR:-../shared/data} .venv/bin/python tools/mutation.py

benchmarks:
	bash benchmarks/run_all.sh
