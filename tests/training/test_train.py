"""End-to-end training on the tiny random model: outputs, refusal, selection maths, resume, DDP."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers_training import (
    TINY,
    TINY_ARGS,
    assert_resumed_from,
    cli_env,
    isbert_cmd,
    latest_checkpoint_step,
    log_records,
    parameter_digest,
    run_cli,
    write_corpus,
)
from hypothesis import given
from hypothesis import strategies as st

import isbert
from isbert.errors import IsbertError
from isbert.training import TrainConfig, train
from isbert.training.checkpoints import MARKER, list_checkpoints
from isbert.training.run import _nothing_to_resume, evaluation_interval, prepare_output
from isbert.training.run_folder import SettingsMismatch
from isbert.training.selection import selection_agreement
from isbert.training.selection.evaluators import LabelFreeEvaluator, alignment, uniformity


def test_alignment_uniformity_known_values() -> None:
    x = torch.eye(4)
    assert alignment(x, x) == pytest.approx(0.0)
    assert alignment(x, x.roll(1, dims=0)) == pytest.approx(2.0)  # orthogonal unit vectors: |a-b|^2 = 2
    assert uniformity(x) == pytest.approx(-4.0)  # every pair at squared distance 2: log exp(-2*2)
    assert uniformity(torch.ones(3, 2)) == pytest.approx(0.0)  # collapsed: worst


def test_label_free_evaluator_is_reproducible_and_leaves_rng(tiny_isbert) -> None:
    evaluator = LabelFreeEvaluator(["a man walks", "the dog runs", "a red car", "she reads"], seed=3, batch_size=3)
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    first, second = evaluator(tiny_isbert), evaluator(tiny_isbert)
    assert torch.equal(before, torch.random.get_rng_state())
    assert first == second
    assert first["heldout_align_uniform"] == pytest.approx(first["heldout_alignment"] + first["heldout_uniformity"])
    assert first["heldout_alignment"] > 0  # dropout makes the two views differ
    assert 0.3 < first["heldout_zero_fraction"] < 0.7  # a fresh ReLU head zeroes about half its outputs


def test_agreement_known_case() -> None:
    history = [
        {"step": 0, "stsb_dev_spearman": 0.86, "heldout_align_uniform": -1.0},
        {"step": 50, "stsb_dev_spearman": 0.84, "heldout_align_uniform": -0.9},
        {"step": 100, "stsb_dev_spearman": 0.80, "heldout_align_uniform": -0.95},
    ]
    result = selection_agreement(history)
    assert result["labeled_choice_step"] == 0 and result["label_free_choice_step"] == 0 and result["same_choice"]
    assert result["rank_correlation"] == pytest.approx(0.5)


@given(total=st.integers(1, 10**6), explicit=st.none() | st.integers(1, 10**4))
def test_evaluation_interval(total: int, explicit: int | None) -> None:
    config = TrainConfig(corpus=["c.txt"], max_steps=total, eval_steps=explicit)
    interval = evaluation_interval(config, train_size=10)
    if explicit is not None:
        assert interval == explicit  # an explicit value wins
    else:  # about five evaluations after step 0 (the last step is always evaluated too)
        evaluations = math.ceil(total / interval)
        assert evaluations <= 5 and (evaluations >= 3 or total < 5)
        assert total < 25 or evaluations >= 4


def test_evaluation_interval_counts_epochs_as_the_trainer_does() -> None:
    config = TrainConfig(corpus=["c.txt"], batch_size=32, epochs=2.0)
    assert evaluation_interval(config, train_size=1000) == math.ceil(2 * (1000 // 32) / 5)  # 62 steps: every 13
    assert evaluation_interval(config, train_size=1000, world=2) == math.ceil(2 * (1000 // 64) / 5)
    assert evaluation_interval(TrainConfig(corpus=["c.txt"], batch_size=32), train_size=40) == 1


def test_resume_without_checkpoint_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _nothing_to_resume(tmp_path, main=True)  # killed before its first checkpoint: a fresh start, said in one line
    err = capsys.readouterr().err
    assert err == f"note: {tmp_path} has no complete checkpoint to resume from; training starts at step 0\n"
    (tmp_path / "training_summary.json").write_text("{}")
    with pytest.raises(IsbertError) as refused:
        _nothing_to_resume(tmp_path, main=True)
    assert str(refused.value) == (
        f"{tmp_path} holds a finished run with no checkpoint left (--keep-checkpoints 0): nothing to resume; its model "
        "is saved there, or pass --overwrite instead of --resume to train again"
    )


def test_output_folder_refusal(tmp_path: Path, tiny_backbone: Path) -> None:
    corpus = write_corpus(tmp_path / "c.txt", 50)
    out = tmp_path / "run"
    config = TrainConfig(model=str(tiny_backbone), corpus=[str(corpus)], output=str(out))
    fingerprint = [{"path": str(corpus)}]
    prepare_output(config, fingerprint)
    with pytest.raises(IsbertError, match="already holds a training run; pass --resume"):
        prepare_output(config, fingerprint)
    changed = TrainConfig(**{**config.__dict__, "lr": 1e-3, "resume": True})
    with pytest.raises(SettingsMismatch, match=r"holds a different run \(differs in: lr\)") as mismatch:
        prepare_output(changed, fingerprint)
    assert mismatch.value.changed == ["lr"] and isinstance(mismatch.value, IsbertError)
    prepare_output(TrainConfig(**{**config.__dict__, "resume": True}), fingerprint)  # same run: fine
    prepare_output(TrainConfig(**{**config.__dict__, "overwrite": True, "lr": 1e-3}), fingerprint)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(IsbertError, match="holds no isbert training run"):
        prepare_output(TrainConfig(**{**config.__dict__, "output": str(other), "overwrite": True}), fingerprint)
    assert (other / "notes.txt").exists()


def test_too_small_and_empty_corpus(tmp_path: Path, tiny_backbone: Path) -> None:
    small = write_corpus(tmp_path / "s.txt", 10)
    with pytest.raises(IsbertError, match="fewer than --batch-size 32"):
        train(model=str(tiny_backbone), corpus=[str(small)], output=str(tmp_path / "a"), **TINY)
    empty = tmp_path / "e.txt"
    empty.write_text("\n")
    with pytest.raises(IsbertError, match="empty"):
        train(model=str(tiny_backbone), corpus=[str(empty)], output=str(tmp_path / "b"), **TINY)


def test_train_end_to_end(tmp_path: Path, tiny_backbone: Path) -> None:
    corpus = write_corpus(tmp_path / "c.txt", 300, extra="\n  \n")
    out = tmp_path / "run"
    result = train(
        model=str(tiny_backbone), corpus=[str(corpus)], output=str(out), max_steps=6, batch_size=8, eval_steps=3,
        save_steps=2, keep_checkpoints=2, lr=1e-3, **TINY,
    )  # fmt: skip
    assert result.corpus.used == 300 and result.corpus.skipped == {"empty": 2} and result.corpus.heldout == 16
    assert [h["step"] for h in result.history] == [0, 3, 6]  # step 0, every eval_steps, the last step
    assert result.best is not None and result.best["metric"] == "heldout_align_uniform"
    assert [step for step, _ in list_checkpoints(out / "checkpoints")] == [4, 6]
    for name in ("training_log.jsonl", "training_curves.png", "training_summary.json", "README.md"):
        assert (out / name).is_file(), name
    for folder in (out / "checkpoints" / "checkpoint-6", out / "checkpoints" / "best"):
        # a whole model, without sentence-transformers' card (the output's own card is isbert's) or pickled arguments
        assert (folder / "modules.json").is_file() and (folder / "model.safetensors").is_file()
        assert not (folder / "README.md").exists() and not (folder / "training_args.bin").exists()
    events = [record["event"] for record in log_records(out)]
    assert events[0] == "start" and "train" in events and events.count("eval") == 3 and events[-1] == "done"
    model = isbert.load(out)
    assert model.encode(["a man walks"]).shape == (1, 24)
    best = isbert.load(out / "checkpoints" / "best")
    assert parameter_digest(model) == parameter_digest(best)
    assert "Training data" in (out / "README.md").read_text()
    with pytest.raises(IsbertError, match="already holds a training run"):
        train(model=str(tiny_backbone), corpus=[str(corpus)], output=str(out), max_steps=6, batch_size=8, **TINY)


@pytest.mark.slow
def test_corpus_from_a_folder_or_a_pattern_and_its_fingerprint(tmp_path: Path, tiny_backbone: Path) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    write_corpus(folder / "b.txt", 30, seed=2)
    write_corpus(folder / "a.txt", 30, seed=1)
    # the model does not exist: the pattern's error shows the corpus is checked before any model loads
    pattern = str(folder / "*.tsv")
    nothing = run_cli("--model", str(tmp_path / "no-model"), "--input", pattern, "-o", str(tmp_path / "none"))
    assert nothing.returncode == 2
    assert nothing.stderr.strip().splitlines() == [f"isbert train: error: no files match {pattern!r}"]
    assert not (tmp_path / "none").exists()

    common = ["--model", str(tiny_backbone), "--max-steps", "2", "--batch-size", "8", "--heldout-size", "0",
              "--device", "cpu", *TINY_ARGS]  # fmt: skip
    out = tmp_path / "run"
    first = run_cli(*common, "--input", str(folder), "-o", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    corpus = json.loads((out / "training_summary.json").read_text())["corpus"]
    assert [Path(f["path"]).name for f in corpus["files"]] == ["a.txt", "b.txt"] and corpus["used"] == 60
    write_corpus(folder / "c.txt", 5, seed=3)  # the folder now names one more file: not the same run
    again = run_cli(*common, "--corpus", str(folder), "-o", str(out), "--resume")
    assert again.returncode == 2 and "holds a different run (differs in: corpus)" in again.stderr

    result = train(model=str(tiny_backbone), corpus=[str(folder / "[ab].txt")], output=str(tmp_path / "glob"),
                   max_steps=2, batch_size=8, heldout_size=0, **TINY)  # fmt: skip
    assert [Path(f["path"]).name for f in result.corpus.files] == ["a.txt", "b.txt"] and result.corpus.used == 60


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors = {}
    for file in sorted(folder.rglob("*.safetensors")):
        for key, value in load_file(file).items():
            tensors[f"{file.relative_to(folder)}:{key}"] = value
    return tensors


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path, tiny_backbone: Path) -> None:
    corpus = write_corpus(tmp_path / "c.txt", 400)
    common = ["--model", str(tiny_backbone), "--corpus", str(corpus), "--max-steps", "40", "--batch-size", "8",
              "--save-steps", "5", "--heldout-size", "0", "--lr", "1e-3", "--device", "cpu", *TINY_ARGS]  # fmt: skip
    reference = run_cli(*common, "--output", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr[-2000:]

    out = tmp_path / "killed"
    process = subprocess.Popen(isbert_cmd(*common, "--output", str(out)), env=cli_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while not (out / "checkpoints" / "checkpoint-10" / MARKER).exists():
        assert process.poll() is None and time.time() < deadline, "run ended before its second checkpoint"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "model.safetensors").exists(), "the run finished before it was killed"

    again = run_cli(*common, "--output", str(out))
    assert again.returncode == 2 and "pass --resume" in again.stderr
    newest = latest_checkpoint_step(out)
    resumed = run_cli(*common, "--output", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_resumed_from(out, newest, max_steps=40)
    expected, got = _weights(tmp_path / "ref"), _weights(out)
    assert expected.keys() == got.keys() and expected
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.slow
def test_ddp_two_processes_keep_identical_replicas(tmp_path: Path, tiny_backbone: Path) -> None:
    corpus = write_corpus(tmp_path / "c.txt", 300)
    digests = tmp_path / "digests"
    digests.mkdir()
    worker = Path(__file__).with_name("helpers_training.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
               str(worker), str(tiny_backbone), str(corpus), str(tmp_path / "run"), str(digests)]  # fmt: skip
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env["PYTHONPATH"]])
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (digests / "rank0.txt").read_text(), (digests / "rank1.txt").read_text()
    assert rank0 == rank1
    assert log_records(tmp_path / "run")[0]["world_size"] == 2
    assert isbert.load(tmp_path / "run").encode(["a man"]).shape == (1, 24)


def test_tuned_encoder_run_without_labels_warns_evaluates_five_times_and_keeps_no_checkpoint(
    tmp_path: Path, tiny_backbone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import TrainerCallback

    from isbert.training.result import CARD_PATH

    encoder = Transformer(str(tiny_backbone), max_seq_length=16)  # a tuned sentence encoder's shape: encoder + pooling
    backbone = tmp_path / "tiny-st"
    SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension())], device="cpu").save(str(backbone))

    class CheckpointsWhileTraining(TrainerCallback):
        seen: list[list[int]] = []

        def on_save(self, args, state, control, **kwargs):
            self.seen.append([step for step, _ in list_checkpoints(out / "checkpoints")])

    corpus = write_corpus(tmp_path / "c.txt", 200)
    out = tmp_path / "run"
    settings = {"model": str(backbone), "corpus": [str(corpus)], "output": str(out), "max_steps": 10,
                "batch_size": 8, "lr": 1e-3, "keep_checkpoints": 0, **TINY}  # fmt: skip
    capsys.readouterr()
    result = train(**settings, callbacks=[CheckpointsWhileTraining()])
    captured = capsys.readouterr()
    # the warning comes at the start (stderr, one line) and again in the verdict
    (warning,) = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert "--dev stsb" in warning and "--anchor distill" in warning
    assert result.selection_warning == warning and warning in result.summary().splitlines()
    assert {"event": "warning", "step": 0, "warning": warning} in log_records(out)  # and in the log
    # no eval_steps: about five evaluations (every ceil(10 / 5) = 2 steps) after step 0; --no-progress still prints them
    assert [h["step"] for h in result.history] == [0, 2, 4, 6, 8, 10]
    assert [line.split(":")[0] for line in captured.out.splitlines() if line.startswith("step ")] == [
        f"step {s}" for s in (0, 2, 4, 6, 8, 10)
    ]
    # keep_checkpoints 0: a checkpoint exists after every save for crash safety, none once the model is saved
    assert CheckpointsWhileTraining.seen and all(steps for steps in CheckpointsWhileTraining.seen)
    assert not (out / "checkpoints").exists() and (out / "model.safetensors").is_file()
    # the model card's two loading calls, as written, load the saved model
    card = (out / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", card, re.S)
    assert len(blocks) == 2 and "isbert.load(" in blocks[0] and "SentenceTransformer(" in blocks[1]
    assert "trust_remote_code" not in blocks[1]  # the linear head is sentence-transformers' own CNN
    reference = isbert.load(out).encode(["A man is playing a guitar."])
    for block in blocks:
        namespace: dict = {}
        exec(block.replace(CARD_PATH, str(out)), namespace)  # the card's own example code
        assert namespace["embeddings"] == pytest.approx(reference, abs=1e-5)
    with pytest.raises(IsbertError, match=r"finished run with no checkpoint left .*nothing to resume"):
        train(**settings, resume=True)


def test_length_batches_in_bf16_train_and_say_so(tmp_path: Path, tiny_backbone: Path, monkeypatch) -> None:
    """--batching length feeds the trainer batches of near-equal token length; --precision bf16 runs on CPU."""
    from isbert.training import sampler

    seen: list[list[int]] = []
    original = sampler.LengthGroupedBatchSampler.batches

    def recording(self):
        seen.extend(original(self))
        return seen[-len(self) :]

    monkeypatch.setattr(sampler.LengthGroupedBatchSampler, "batches", recording)
    corpus = write_corpus(tmp_path / "c.txt", 300)
    # device unset, as the CLI and experiment files leave it: the Trainer must still accept CPU bf16 autocast
    result = train(
        model=str(tiny_backbone), corpus=[str(corpus)], output=str(tmp_path / "run"), max_steps=4, batch_size=8,
        eval_steps=4, batching="length", precision="bf16", heldout_size=0, **{**TINY, "device": None},
    )  # fmt: skip
    assert result.precision == "bf16" and "precision bf16" in result.summary()
    start = log_records(tmp_path / "run")[0]
    assert start["event"] == "start" and start["precision"] == "bf16"
    model = isbert.load(tmp_path / "run")
    lengths = sampler.token_lengths(model, (tmp_path / "c.txt").read_text().splitlines())
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in seen]
    assert len(seen) == 300 // 8 and max(spreads) <= 1


def test_auto_precision_is_bf16_only_on_cpus_with_native_bf16_and_fp32_on_gpus(tmp_path: Path, monkeypatch) -> None:
    from isbert.training import precision

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert precision.cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("flags\t: fpu avx2\n")
    assert not precision.cpu_has_bf16(cpuinfo) and not precision.cpu_has_bf16(tmp_path / "missing")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.resolve_precision("auto", use_cuda=False) == "bf16"
    assert precision.resolve_precision("fp32", use_cuda=False) == "fp32"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.resolve_precision("auto", use_cuda=False) == "fp32"
    assert precision.resolve_precision("bf16", use_cuda=False) == "bf16"
    with pytest.raises(IsbertError, match="fp16 needs a GPU"):
        precision.resolve_precision("fp16", use_cuda=False)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)  # the GPU decides, not the host CPU
    assert precision.resolve_precision("auto", use_cuda=True) == "fp32"  # bf16 was slower on H100/H200 at batch 32
    assert precision.resolve_precision("fp16", use_cuda=True) == "fp16"


def test_a_run_with_a_dev_set_ends_with_a_verdict_on_the_saved_model(
    tiny_backbone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from experiments.tiny_data import write_tiny_data

    data = write_tiny_data(tmp_path / "data", monkeypatch)
    corpus = write_corpus(tmp_path / "c.txt", 120)
    result = train(model=str(tiny_backbone), corpus=[str(corpus)], output=str(tmp_path / "run"), max_steps=4,
                   eval_steps=2, batch_size=8, lr=1e-3, dev="stsb", data_dir=str(data), **TINY)  # fmt: skip
    assert result.best is not None and result.verdict is not None
    step = result.best["step"]
    if step == 0:
        assert result.verdict.startswith("verdict: no step beat the starting model on STSb dev")
    else:
        delta = abs(100 * (result.best["value"] - result.start["stsb_dev_spearman"]))
        assert f"the saved model (step {step})" in result.verdict and f"{delta:.2f} STS points" in result.verdict
    assert result.summary().splitlines()[-1] == result.verdict
