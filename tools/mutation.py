"""Targeted mutation testing: plant one plausible bug at a time and check that the tests meant to catch it fail.

mutmut (``make mutation``, tools/mutmut_modules.py) is the mutation tool; this list (``make mutation-targeted``) holds
only the plausible bugs its operators cannot express: a function swapped for another, a term or statement dropped, a
slice rewritten, operands swapped. Each entry says why in ``why_not_mutmut``; a mutant mutmut plants in a module of its
table has no place here (two entries mutmut does express stay only until their module gets a row in that table).

Each mutation names the exact source snippet it changes (it must occur exactly once in its file, so the list fails
loudly instead of rotting silently when the code moves), the bug it stands for, the tests that should kill it and why
mutmut cannot plant it. A mutant is applied to a temporary copy of ``src/`` and ``tests/`` (never to the working tree,
so Ctrl-C cannot leave a mutant behind) and the selected tests run there with ``PYTHONPATH`` pointing at the copy;
subprocesses the tests start (the CLI runs of the resume tests) inherit it.

Outcomes: ``killed`` (the tests failed), ``survived`` (they passed), ``timeout`` and ``error`` (pytest could not
run: a collection or usage error) are counted apart from both. Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python tools/mutation.py                 # every mutant of the list
    .venv/bin/python tools/mutation.py --list
    .venv/bin/python tools/mutation.py --only losses-jsd-return-sign --json /tmp/mutation.json

Exit status: 0 whenever the run completed (the score is information, not a verdict), 2 when the mutation list is
broken (a snippet not found exactly once, no why_not_mutmut) or the unmutated code fails the selected tests, 130
when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path("src") / "isbert"
COPIED = ("src", "tests", "experiments", "pyproject.toml")  # what the tests read from the repository
DEFAULT_TIMEOUT_S = 300
# The test runs in flight: each has a session of its own (so a timeout can kill its whole group), which also keeps
# the terminal's Ctrl-C from reaching it; run_all kills them itself on Ctrl-C.
_RUNNING: set[subprocess.Popen[str]] = set()
_RUNNING_LOCK = threading.Lock()


@dataclass(frozen=True)
class Mutation:
    """One planted bug: ``original`` (found exactly once in ``file``) becomes ``replacement``."""

    id: str
    file: str  # relative to src/isbert
    original: str
    replacement: str
    bug: str  # the plausible mistake this mutant stands for, in one line
    tests: tuple[str, ...]  # pytest node ids or files that should kill it (run in this order, stopping at a failure)
    why_not_mutmut: str  # one sentence: why no mutmut run plants this bug (its operators cannot write it)


@dataclass
class Result:
    id: str
    file: str
    bug: str
    status: str  # killed / survived / timeout / error
    seconds: float
    detail: str  # the first failing test, or why pytest could not run


# --------------------------------------------------------------------------------------------- test selections
_SCORING = "tests/evaluation/test_scoring.py::"
_SCORING_UNITS = (
    "test_cosine_rows_known_values_and_zero_vector",
    "test_cosine_rows_rejects_nan",
    "test_spearman_known_answers",
    "test_spearman_undefined_is_an_error",
    "test_aggregate_known_answer",
    "test_aggregate_invariants",
    "test_evaluate_sts_single_file_task_has_no_breakdown",
)
SCORING_TESTS = (*(_SCORING + name for name in _SCORING_UNITS), "tests/evaluation/test_harness.py")
WHITENING_POOLING_TESTS = (
    "tests/evaluation/test_harness.py",
    "tests/evaluation/test_baselines.py",
    "tests/training/test_objectives.py::test_simcse_objective_trains_the_mean_pooled_encoder",
    *(_SCORING + name for name in _SCORING_UNITS),
)
MODULE_TESTS = ("tests/test_modules.py", "tests/test_model.py::test_build_has_encoder_cnn_and_mean_pooling")
LOSS_TESTS = ("tests/test_losses.py",)
RESUME_TESTS = (
    "tests/training/test_train.py::test_train_end_to_end",
    "tests/training/test_objectives.py::test_anchored_run_resumes_to_the_uninterrupted_weights",
    "tests/reliability/test_faults.py::test_full_disk_during_a_training_checkpoint_keeps_the_last_one",
    "tests/training/test_train.py::test_sigkill_then_resume_matches_uninterrupted_run",
    "tests/experiments/test_runner.py::test_interrupted_run_resumes",
    "tests/reliability/test_faults.py::test_repeated_sigkill_during_training_resumes_to_the_same_model",
)
_HTTP = "tests/reliability/test_hostile_http.py::"
BATCHER_TESTS = (
    _HTTP + "test_a_failing_merged_batch_is_retried_request_by_request",
    _HTTP + "test_a_bad_text_among_concurrent_requests_fails_alone",
    _HTTP + "test_work_of_a_departed_client_is_dropped",
    _HTTP + "test_bounded_mixed_load_gives_each_good_request_its_own_rows",
    "tests/search/test_search_serve.py::test_health_embed_similarity",
    "tests/search/test_search_serve.py::test_bounded_load",
)

M = Mutation
MUTATIONS: tuple[Mutation, ...] = (
    # ---------------------------------------------------------------------------------------- modules.py
    M("cnn-padding-in-windows", "modules.py",
      "x = (tokens * real.unsqueeze(-1).to(tokens.dtype)).transpose(1, 2)", "x = tokens.transpose(1, 2)",
      "padding is not zeroed before the convolution (the stock CNN's flaw)", MODULE_TESTS,
      "mutmut does not drop a factor of a product (its `/` for `*` divides the padding by zero)"),
    M("cnn-special-out-of-conv-input", "modules.py",
      "x = (tokens * real.unsqueeze(-1).to(tokens.dtype)).transpose(1, 2)",
      "x = (tokens * local_mask.unsqueeze(-1).to(tokens.dtype)).transpose(1, 2)",
      "special tokens dropped from the convolution's input (not only from pooling and the loss)", MODULE_TESTS,
      "mutmut does not swap one variable for another (`local_mask` for `real`)"),
    M("cnn-kernel-padding", "modules.py", "padding=(k - 1) // 2", "padding=k - 1",
      "windows padded by k-1 on both sides, so each kernel size gives another length", MODULE_TESTS,
      "mutmut makes `(k - 1) // 2` into `(k + 1) // 2`, `(k - 2) // 2`, `/ 2` or `// 3`, never drops the halving"),
    M("cnn-even-kernel-accepted", "modules.py", "any(k < 1 or k % 2 == 0 for k in kernels)",
      "any(k < 1 for k in kernels)", "even window sizes accepted (they shift the features by half a token)",
      MODULE_TESTS,
      "mutmut does not drop one operand of an `or`; its nearest mutant (`k < 1 and k % 2 == 0`) also accepts "
      "negative odd sizes"),
    M("cnn-activation-always-relu", "modules.py",
      'if self.activation == "relu":\n            local = torch.relu(local)', "local = torch.relu(local)",
      'activation="none" (the released code) still applies ReLU', MODULE_TESTS,
      "mutmut negates the condition (ReLU for every activation but relu) but never removes the `if`"),
    M("cnn-output-masks-padding-only", "modules.py",
      "local = local * local_mask.unsqueeze(-1).to(local.dtype)",
      "local = local * real.unsqueeze(-1).to(local.dtype)",
      "special tokens' local features are left non-zero in the output", MODULE_TESTS,
      "mutmut does not swap one variable for another (`real` for `local_mask`)"),
    M("cnn-mask-not-handed-on", "modules.py",
      '"attention_mask": local_mask.to(features["attention_mask"].dtype)',
      '"attention_mask": features["attention_mask"]',
      "the pooling still averages over special tokens (the local-token mask is not handed on)", MODULE_TESTS,
      "mutmut does not put another existing value (the incoming mask) in place of an expression, only None"),
    # ----------------------------------------------------------------------------------------- losses.py
    M("losses-jsd-negative-log2", "losses.py", "((F.softplus(scores) - LOG2) * negative)",
      "(F.softplus(scores) * negative)", "the log 2 term of the negatives dropped", LOSS_TESTS,
      "mutmut makes `- LOG2` into `+ LOG2` but never drops a term"),
    M("losses-jsd-return-sign", "losses.py",
      "e_neg = ((F.softplus(scores) - LOG2) * negative).sum() / n_negative\n        return e_neg - e_pos",
      "e_neg = ((F.softplus(scores) - LOG2) * negative).sum() / n_negative\n        return e_pos - e_neg",
      "the JSD bound is minimized instead of maximized (sign of the loss)", LOSS_TESTS,
      "mutmut makes `e_neg - e_pos` into `e_neg + e_pos` but never swaps the operands"),
    M("losses-own-sentence-negative", "losses.py", "token.unsqueeze(-1) * (1 - own)",
      "token.unsqueeze(-1) * torch.ones_like(own)", "each token's own sentence is also counted as a negative",
      LOSS_TESTS,
      "mutmut does not replace an expression with a call (`torch.ones_like`); its `1 + own` and `2 - own` "
      "weigh the own sentence instead"),
    M("losses-padding-positive", "losses.py", "    anchor = token\n", "    anchor = torch.ones_like(token)\n",
      "padded positions counted as positives", LOSS_TESTS,
      "mutmut does not replace a name with a call (`torch.ones_like(token)`), only with None"),
    M("losses-positive-mean-per-sentence", "losses.py",
      "e_pos = ((LOG2 - F.softplus(-scores)) * positive).sum() / n_positive",
      "e_pos = ((LOG2 - F.softplus(-scores)) * positive).sum() / batch",
      "the positive term averaged over sentences instead of tokens", LOSS_TESTS,
      "mutmut does not swap one variable for another (`batch` for `n_positive`)"),
    M("losses-dv-log-sum-not-mean", "losses.py", ".flatten(), 0) - n_negative.log()", ".flatten(), 0)",
      "Donsker-Varadhan uses log-sum-exp instead of log-mean-exp over the negatives", LOSS_TESTS,
      "mutmut makes `- n_negative.log()` into `+ n_negative.log()` but never drops the term"),
    M("losses-radius-upper-off-by-one", "losses.py", "(positions + radius + 1).clamp(max=length)",
      "(positions + radius).clamp(max=length)", "exclude_radius window one token short on the right", LOSS_TESTS,
      "mutmut makes the `+ 1` into `- 1` or `+ 2` but never drops it"),
    M("losses-radius-lower-off-by-one", "losses.py", "(positions - radius).clamp(min=0)",
      "(positions - radius - 1).clamp(min=0)", "exclude_radius window one token too wide on the left", LOSS_TESTS,
      "mutmut never adds a term (`- 1`) to an expression"),
    M("losses-cosine-one-side-normalized", "losses.py",
      "local, sentence = F.normalize(local, dim=-1), F.normalize(sentence, dim=-1)",
      "local = F.normalize(local, dim=-1)", "the cosine critic normalizes the local features only", LOSS_TESTS,
      "mutmut does not drop one target of a tuple assignment; it replaces the whole value with None or changes "
      "the arguments"),
    M("losses-radius-cosine-temperature", "losses.py", "F.normalize(rest, dim=-1) * (1 / temperature)",
      "F.normalize(rest, dim=-1)", "exclude_radius positives ignore the temperature of the cosine critic",
      LOSS_TESTS,
      "mutmut makes `* (1 / temperature)` into `/ (1 / temperature)`, `* (1 * temperature)` or "
      "`* (2 / temperature)`, never drops the factor"),
    M("losses-columns-mask-left-padded", "losses.py",
      'F.pad(out["attention_mask"], (0, length - out["attention_mask"].shape[1]))',
      'F.pad(out["attention_mask"], (length - out["attention_mask"].shape[1], 0))',
      "several text columns: the mask is padded on the other side than the features", LOSS_TESTS,
      "mutmut does not swap the two elements of a tuple (the pad widths)"),
    M("losses-simcse-temperature-ignored", "losses.py", "scale=1.0 / temperature, similarity_fct=cos_sim",
      "scale=1.0, similarity_fct=cos_sim", "SimCSE without its temperature", LOSS_TESTS,
      "mutmut makes `1.0 / temperature` into `1.0 * temperature` or `2.0 / temperature`, or drops the argument "
      "(the library's scale 20), never leaves `1.0`"),
    # ---------------------------------------------------------------------------------------- resume path
    M("resume-oldest-checkpoint", "training/checkpoints.py", "return checkpoints[-1][1] if checkpoints else None",
      "return checkpoints[0][1] if checkpoints else None", "resume from the OLDEST kept checkpoint", RESUME_TESTS,
      "mutmut makes the index -1 into +1 or -2, never 0 (the oldest)"),
    M("resume-checkpoints-sorted-by-name", "training/checkpoints.py", "    return sorted(found)\n",
      "    return sorted(found, key=lambda item: item[1].name)\n",
      "checkpoints sorted by folder name: checkpoint-10 comes before checkpoint-5", RESUME_TESTS,
      "mutmut does not add an argument (`key=`) to a call"),
    M("rotate-keeps-oldest", "training/checkpoints.py", "checkpoints[: max(0, len(checkpoints) - keep_last)]",
      "checkpoints[keep_last:]", "rotation deletes the newest checkpoints and keeps the oldest", RESUME_TESTS,
      "mutmut does not rewrite a slice (`[:n]` into `[keep_last:]`)"),
    M("rotate-keeps-one-too-many", "training/checkpoints.py", "max(0, len(checkpoints) - keep_last)",
      "max(0, len(checkpoints) - keep_last - 1)", "rotation keeps one checkpoint more than asked", RESUME_TESTS,
      "mutmut never adds a term (`- 1`) to an expression"),
    M("resume-log-not-truncated", "training/run.py", 'run.log.truncate_after(marker["step"])', "pass",
      "a resumed run keeps the log records written after its checkpoint (they appear twice)", RESUME_TESTS,
      "mutmut does not delete a statement; it passes None to `truncate_after`, a different failure"),
    M("resume-log-drops-checkpoint-step", "training/run_log.py", 'if record.get("step", 0) <= step:',
      'if record.get("step", 0) < step:', "the resumed log loses the records of the checkpoint's own step",
      ("tests/training/test_run_log.py", *RESUME_TESTS),
      "mutmut expresses it (xǁRunLogǁtruncate_after__mutmut_19: `<=` into `<`), but training/run_log.py has no "
      "entry in `make mutation`'s table (tools/mutmut_modules.py MODULES), so no mutmut run plants it"),
    # ------------------------------------------------------------------------------------ service batcher
    M("batcher-first-rows", "search/serve.py", "job.future.set_result(vectors[start:end])",
      "job.future.set_result(vectors[: len(job.texts)])", "every merged request gets the batch's first rows",
      BATCHER_TESTS,
      "mutmut does not rewrite a slice's bounds (`[start:end]` into `[: len(job.texts)]`)"),
    M("batcher-slice-off-by-one", "search/serve.py", "end = start + len(job.texts)",
      "end = start + len(job.texts) + 1", "off-by-one slicing: the next request's rows start one too late",
      BATCHER_TESTS,
      "mutmut never adds a term (`+ 1`) to an expression"),
    M("batcher-no-retry", "search/serve.py",
      "if len(batch) == 1:\n                self._fail(batch[0], error)\n",
      "if len(batch) >= 1:\n                for job in batch:\n                    self._fail(job, error)\n",
      "a failed merged batch fails every request in it (no one-by-one retry)", BATCHER_TESTS,
      "mutmut does not restructure statements (the one-request branch into a loop failing every request)"),
    M("batcher-departed-still-encoded", "search/serve.py",
      "live = [job for job in collected if not job.future.done()]", "live = collected",
      "the work of a client that left is still encoded", BATCHER_TESTS,
      "mutmut negates the filter (encoding only the departed clients' work) but never drops it"),
    M("batcher-size-not-counted", "search/serve.py", "            count += len(job.texts)\n", "",
      "max_batch never reached: the merged batch's size is not counted",
      ("tests/search/test_search_serve.py::test_merged_batches_stay_within_max_batch", *BATCHER_TESTS),
      "mutmut does not delete a statement; its `count = len(job.texts)` counts the last request, not none"),
    # --------------------------------------------------------------------------------- evaluation scoring
    M("sts-pearson-for-spearman", "evaluation/sts.py", "value = float(spearmanr(predicted, gold).statistic)",
      "value = float(pearsonr(predicted, gold).statistic)", "Pearson reported as Spearman", SCORING_TESTS,
      "mutmut does not swap one function for another (`pearsonr` for `spearmanr`)"),
    M("sts-no-x100", "evaluation/sts.py",
      'constant predictions or gold scores)")\n    return 100.0 * value', 'constant predictions or gold scores)")\n'
      "    return value", "Spearman not scaled x100", SCORING_TESTS,
      "mutmut makes `100.0 * value` into `100.0 / value` or `101.0 * value`, never drops the factor"),
    M("sts-nan-passes", "evaluation/sts.py", "    if not np.isfinite(value):\n        raise IsbertError(\"Spearman",
      "    if False:\n        raise IsbertError(\"Spearman", "an undefined Spearman becomes NaN instead of an error",
      SCORING_TESTS,
      "mutmut negates the check (raising for every finite value) but never makes it always false"),
    M("sts-second-side-unchecked", "evaluation/sts.py", "    check_finite(a)\n    check_finite(b)\n",
      "    check_finite(a)\n", "NaN in the second sentence's embeddings passes silently",
      ("tests/evaluation/test_scoring.py::test_cosine_rows_rejects_nan_on_either_side", *SCORING_TESTS),
      "mutmut does not delete a statement; it passes None to `check_finite`, which fails loudly"),
    M("sts-all-is-mean", "evaluation/sts.py", '"spearman": pooled,', '"spearman": float(scores.mean()),',
      "the headline number is the mean of the sub-datasets, not the pooled 'all'", SCORING_TESTS,
      "mutmut does not put another expression (`scores.mean()`) in place of a value (`pooled`)"),
    M("sts-wmean-unweighted", "evaluation/sts.py", '"wmean": float((scores * sizes).sum() / sizes.sum())',
      '"wmean": float(scores.mean())', "wmean is not weighted by the pair counts", SCORING_TESTS,
      "mutmut does not replace an expression with another one (the unweighted mean); it swaps `*` for `/` or "
      "changes arguments"),
    M("sts-dot-for-cosine", "evaluation/sts.py",
      "similarity = cosine_rows(embed(subset.sentences1), embed(subset.sentences2))",
      'similarity = np.einsum("ij,ij->i", embed(subset.sentences1), embed(subset.sentences2))',
      "STS scored with the dot product instead of the cosine", SCORING_TESTS,
      "mutmut does not swap one function for another (a dot product for `cosine_rows`)"),
    M("whitening-not-applied", "evaluation/harness.py",
      "matrix = Whitening.fit(matrix[[index[s] for s in whiten_sentences]], whiten_dim).transform(matrix)",
      "Whitening.fit(matrix[[index[s] for s in whiten_sentences]], whiten_dim).transform(matrix)",
      "whitening fitted but never applied", WHITENING_POOLING_TESTS,
      "mutmut does not turn an assignment into a bare expression; it assigns None, which fails loudly"),
    M("whitening-no-sqrt", "evaluation/baselines.py", "kernel = u / np.sqrt(s + eps)", "kernel = u / (s + eps)",
      "whitening divides by the variance instead of the standard deviation", WHITENING_POOLING_TESTS,
      "mutmut does not remove a call around an expression (`np.sqrt`)"),
    M("whitening-not-centered", "evaluation/baselines.py",
      "return (np.asarray(embeddings, dtype=np.float64) - self.mean) @ self.kernel",
      "return np.asarray(embeddings, dtype=np.float64) @ self.kernel", "whitening forgets to subtract the mean",
      WHITENING_POOLING_TESTS,
      "mutmut makes `- self.mean` into `+ self.mean` but never drops the term"),
    M("whitening-cut-rows", "evaluation/baselines.py", "kernel[:, :dim] if dim else kernel",
      "kernel[:dim] if dim else kernel", "whitening dimension cut on the wrong axis of the kernel",
      WHITENING_POOLING_TESTS,
      "mutmut does not rewrite a subscript (`[:, :dim]` into `[:dim]`)"),
    M("pooling-first-last-embedding-layer", "model.py", "(layers[1] + layers[-1]) / 2",
      "(layers[0] + layers[-1]) / 2", "first-last-mean averages the embedding layer, not the first transformer layer",
      WHITENING_POOLING_TESTS,
      "mutmut makes the index 1 into 2, never 0 (the embedding layer)"),
    M("pooling-cls-is-mean", "model.py", 'pooling_mode="cls" if pooling == "cls" else "mean"',
      'pooling_mode="mean"', "the cls baseline silently mean-pools", WHITENING_POOLING_TESTS,
      "mutmut expresses it (x_pooled_encoder__mutmut_39: `pooling == 'cls' and False`), but model.py has no "
      "entry in `make mutation`'s table (tools/mutmut_modules.py MODULES), so no mutmut run plants it"),
)  # fmt: skip
del M


# ------------------------------------------------------------------------------------------------ the runner
def check_list(mutations: tuple[Mutation, ...], repo: Path = REPO) -> list[str]:
    """Problems that make the list unusable: unknown files, snippets not found exactly once, duplicate ids, no reason
    why mutmut cannot plant the bug."""
    problems = []
    seen: set[str] = set()
    for mutation in mutations:
        if mutation.id in seen:
            problems.append(f"{mutation.id}: duplicate id")
        seen.add(mutation.id)
        path = repo / PACKAGE / mutation.file
        if not path.is_file():
            problems.append(f"{mutation.id}: no file {path}")
            continue
        count = path.read_text(encoding="utf-8").count(mutation.original)
        if count != 1:
            problems.append(f"{mutation.id}: the original snippet occurs {count} times in {mutation.file}")
        if mutation.original == mutation.replacement or not mutation.tests:
            problems.append(f"{mutation.id}: replacement equals the original, or no tests selected")
        if not mutation.why_not_mutmut.strip():
            problems.append(f"{mutation.id}: no why_not_mutmut (a bug mutmut plants belongs to `make mutation`)")
    return problems


def copy_tree(repo: Path, dest: Path) -> Path:
    """A disposable copy of what the tests need; ``dest/src`` then shadows the installed package."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".hypothesis", ".pytest_cache")
    for name in COPIED:
        source = repo / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, dest / name)
    return dest


def apply_mutation(mutation: Mutation, tree: Path) -> Path:
    """Rewrite the mutated file inside ``tree`` (a copy, never the working tree); returns its path."""
    path = tree / PACKAGE / mutation.file
    text = path.read_text(encoding="utf-8")
    if text.count(mutation.original) != 1:
        raise ValueError(f"{mutation.id}: the original snippet is not found exactly once in {path}")
    path.write_text(text.replace(mutation.original, mutation.replacement), encoding="utf-8")
    return path


def mutant_environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(tree / "src"))
    env["CI"] = "1"  # hypothesis runs its fixed ("ci") examples: the same mutant gets the same verdict every run
    data = os.environ.get("ISBERT_DATA_DIR") or str(REPO.parent / "shared" / "data")
    env["ISBERT_DATA_DIR"] = str(Path(data).resolve())  # the tests run from the copy: no relative path survives
    return env


def run_pytest(tree: Path, tests: tuple[str, ...], timeout: float, stop_first: bool = True) -> tuple[str, str]:
    """``(status, detail)`` of one pytest run in ``tree``: passed / failed / timeout / error."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(["-x"] if stop_first else []), *tests]
    # A session of its own: on timeout the whole group (pytest and the CLI runs it started) is killed.
    process = subprocess.Popen(
        command, cwd=tree, env=mutant_environment(tree), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    with _RUNNING_LOCK:
        _RUNNING.add(process)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        return "timeout", f"no verdict within {timeout:.0f}s"
    except BaseException:  # Ctrl-C in this thread: take the test processes down before the copy is removed
        _kill_group(process)
        raise
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(process)
    failed = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    if process.returncode == 0:
        return "passed", ""
    if process.returncode == 1:
        return "failed", failed[0] if failed else "tests failed"
    return "error", f"pytest exit {process.returncode}: " + (failed[0] if failed else output.strip()[-300:])


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _kill_running() -> None:
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for process in running:
        _kill_group(process)


def run_mutant(mutation: Mutation, repo: Path, timeout: float) -> Result:
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"isbert-mutant-{mutation.id}-") as folder:
        tree = copy_tree(repo, Path(folder))
        apply_mutation(mutation, tree)
        outcome, detail = run_pytest(tree, mutation.tests, timeout)
    status = {"failed": "killed", "passed": "survived"}.get(outcome, outcome)
    return Result(mutation.id, mutation.file, mutation.bug, status, round(time.perf_counter() - began, 1), detail)


def check_baseline(mutations: tuple[Mutation, ...], repo: Path, timeout: float) -> str | None:
    """Run every selected test once on the unmutated code; a mutation score over failing tests means nothing.

    Also checks that the copy's ``src`` is what the tests import, not the installed package."""
    tests = tuple(dict.fromkeys(test for mutation in mutations for test in mutation.tests))
    with tempfile.TemporaryDirectory(prefix="isbert-mutation-baseline-") as folder:
        tree = copy_tree(repo, Path(folder))
        probe = subprocess.run(
            [sys.executable, "-c", "import isbert; print(isbert.__file__)"], env=mutant_environment(tree),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if not probe.stdout.strip().startswith(str(tree)):
            return f"the tests would import isbert from {probe.stdout.strip() or probe.stderr[-300:]}, not the copy"
        outcome, detail = run_pytest(tree, tests, timeout * 2, stop_first=False)
    return None if outcome == "passed" else f"the unmutated code does not pass the selected tests: {detail}"


# --------------------------------------------------------------------------------------------- reporting
def result_line(index: int, total: int, result: Result) -> str:
    line = f"[{index:>2}/{total}] {result.status.upper():<8} {result.id:<36} {result.seconds:>6.1f}s  {result.bug}"
    return line + (f"\n          {result.detail}" if result.status in ("timeout", "error") else "")


def summary(results: list[Result]) -> str:
    killed = sum(r.status == "killed" for r in results)
    others = {status: sum(r.status == status for r in results) for status in ("timeout", "error")}
    percent = 100.0 * killed / len(results) if results else 0.0
    lines = [f"mutation score: {killed} killed / {len(results)} mutants ({percent:.1f}%)"]
    lines += [f"{count} {status}" for status, count in others.items() if count]
    survivors = [r for r in results if r.status == "survived"]
    lines.append("survivors:" + ("" if survivors else " none"))
    lines += [f"  {r.id} ({r.file}): {r.bug}" for r in survivors]
    return "\n".join(lines)


def write_json(path: Path, results: list[Result], seconds: float) -> None:
    document = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "seconds": round(seconds, 1),
        "killed": sum(r.status == "killed" for r in results),
        "mutants": len(results),
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------ command line
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per mutant")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    parser.add_argument("--skip-baseline", action="store_true", help="do not check the unmutated code first")
    return parser.parse_args(argv)


def select(mutations: tuple[Mutation, ...], only: list[str] | None) -> tuple[Mutation, ...]:
    if not only:
        return mutations
    unknown = sorted(set(only) - {m.id for m in mutations})
    if unknown:
        raise SystemExit(f"unknown mutant id(s): {', '.join(unknown)} (see --list)")
    return tuple(m for m in mutations if m.id in only)


def run_all(mutations: tuple[Mutation, ...], jobs: int, timeout: float) -> list[Result]:
    """Run the mutants, printing each verdict as it comes; results in list order."""
    results: list[Result] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_mutant, mutation, REPO, timeout) for mutation in mutations]
        try:
            for index, future in enumerate(futures, 1):
                results.append(future.result())
                print(result_line(index, len(mutations), results[-1]), flush=True)
        except KeyboardInterrupt:  # the workers' test runs do not see Ctrl-C (own sessions): stop them here
            pool.shutdown(wait=False, cancel_futures=True)
            _kill_running()
            raise
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops the run as Ctrl-C does, cleaning up
    problems = check_list(MUTATIONS)
    if problems:
        print("broken mutation list:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    mutations = select(MUTATIONS, args.only)
    if args.list:
        for m in mutations:
            print(f"{m.id:<36} {m.file:<26} {m.bug}\n{'':<37}tests: {' '.join(m.tests)}")
            print(f"{'':<37}not mutmut: {m.why_not_mutmut}")
        return 0
    began = time.perf_counter()
    if not args.skip_baseline:
        print(f"baseline: the selected tests on the unmutated code ({len(mutations)} mutants to follow)", flush=True)
        problem = check_baseline(mutations, REPO, args.timeout)
        if problem:
            print(problem, file=sys.stderr)
            return 2
    try:
        results = run_all(mutations, args.jobs, args.timeout)
    except KeyboardInterrupt:
        print("interrupted; the test runs are stopped and the working tree was never changed", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - began
    print(summary(results) + f"\n({seconds / 60:.1f} min)")
    if args.json:
        write_json(args.json, results, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
