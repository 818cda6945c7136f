.PHONY: test test-latest lock reliability mutation mutation-targeted benchmarks

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

# Mutation testing with mutmut (tools/mutmut_modules.py): every mutant of one module, each against that module's
# tests, in a temporary copy. `make mutation MODULE=evaluation/sts.py` (about 20 min on 2 shared cores); without
# MODULE every module of `tools/mutmut_modules.py --list` (hours); JSON=path writes the results. Scores in docs/testing.md.
# SINCE=commit: only the mutants of functions changed since that commit (a quick check of a change, not a score).
# BUDGET=minutes: stop when they are spent (CI: SINCE=HEAD~1 BUDGET=8).
mutation:
	HF_HUB_OFFLINE=1 ISBERT_DATA_DIR=$${ISBERT_DATA_DIR:-../shared/data} .venv/bin/python tools/mutmut_modules.py \
		$(MODULE) $(if $(JSON),--json $(JSON)) $(if $(SINCE),--since $(SINCE)) $(if $(BUDGET),--budget $(BUDGET))

# The hand-written mutants mutmut's operators cannot express (tools/mutation.py, each with its reason): fewer
# mutants (43) than the 52 of the last timed run (about 20 min on 2 cores); not timed since the cut.
mutation-targeted:
	HF_HUB_OFFLINE=1 ISBERT_DATA_DIR=$${ISBERT_DATA_DIR:-../shared/data} .venv/bin/python tools/mutation.py

benchmarks:
	bash benchmarks/run_all.sh
