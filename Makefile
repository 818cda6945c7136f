.PHONY: test reliability benchmarks

test:
	HF_HUB_OFFLINE=1 ISBERT_DATA_DIR=$${ISBERT_DATA_DIR:-../shared/data} .venv/bin/pytest

# Fault injection (SIGKILL, full disk, torn files) and fuzzing of every parser; ends with a one-line summary.
reliability:
	HF_HUB_OFFLINE=1 ISBERT_DATA_DIR=$${ISBERT_DATA_DIR:-../shared/data} .venv/bin/pytest -m reliability -p no:cacheprovider -q

benchmarks:
	bash benchmarks/run_all.sh
