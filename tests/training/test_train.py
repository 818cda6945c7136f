"""End-to-end training on the tiny random model: outputs, refusal, NaN stop, selection maths, resume, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers_training import (
    TINY_ARGS,
    assert_resumed_from,
    cli_env,
    isbert_cmd,
    latest_checkpoint_step,
    parameter_digest,
    run_cli,
    write_corpus,
)

import isbert
from isbert.errors import IsbertError
from isbert.training import TrainConfig, train
from isbert.training.checkpoints import MARKER, list_checkpoints
from isbert.training.evaluators import LabelFreeEvaluator, alignment, uniformity
from isbert.training.result import selection_agreement
from isbert.training.run import prepare_output

TINY = {"max_seq_length": 16, "out_channels": 8, "show_progress": False, "device": "cpu", "logging_steps": 2}


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


def test_output_folder_refusal(tmp_path: Path, tiny_backbone: Path) -> None:
    corpus = write_corpus(tmp_path / "c.txt", 50)
    out = tmp_path / "run"
    config = TrainConfig(model=str(tiny_backbone), corpus=[str(corpus)], output=str(out))
    fingerprint = [{"path": str(corpus)}]
    prepare_output(config, fingerprint)
    with pytest.raises(IsbertError, match="already holds a training run; pass --resume"):
        prepare_output(config, fingerprint)
    changed = TrainConfig(**{**config.__dict__, "lr": 1e-3, "resume": True})
    with pytest.raises(IsbertError, match=r"holds a different run \(differs in: lr\)"):
        prepare_output(changed, fingerprint)
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
    events = [json.loads(line)["event"] for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and "train" in events and events.count("eval") == 3 and events[-1] == "done"
    model = isbert.load(out)
    assert model.encode(["a man walks"]).shape == (1, 24)
    best = isbert.load(out / "checkpoints" / "best")
    assert parameter_digest(model) == parameter_digest(best)
    assert "Training data" in (out / "README.md").read_text()
    with pytest.raises(IsbertError, match="already holds a training run"):
        train(model=str(tiny_backbone), corpus=[str(corpus)], output=str(out), max_steps=6, batch_size=8, **TINY)


def test_nan_loss_stops_with_checkpoint(tmp_path: Path, tiny_backbone: Path, monkeypatch) -> None:
    import isbert.losses as losses

    real = losses.mutual_information_loss
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1  # call 1 is the frozen-parameter probe, then one call per step
        value = real(*args, **kwargs)
        return value * float("nan") if calls["n"] >= 6 else value

    monkeypatch.setattr(losses, "mutual_information_loss", flaky)
    corpus = write_corpus(tmp_path / "c.txt", 200)
    out = tmp_path / "run"
    with pytest.raises(IsbertError, match=r"the loss became nan at step 5; training stopped .*checkpoint-4"):
        train(model=str(tiny_backbone), corpus=[str(corpus)], output=str(out), max_steps=10, batch_size=8,
              save_steps=2, heldout_size=0, **TINY)  # fmt: skip
    assert isbert.load(out / "checkpoints" / "checkpoint-4").encode(["a dog"]).shape == (1, 24)


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
    log = [json.loads(line) for line in (tmp_path / "run" / "training_log.jsonl").read_text().splitlines()]
    assert log[0]["world_size"] == 2
    assert isbert.load(tmp_path / "run").encode(["a man"]).shape == (1, 24)


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
    result = train(
        model=str(tiny_backbone), corpus=[str(corpus)], output=str(tmp_path / "run"), max_steps=4, batch_size=8,
        eval_steps=4, batching="length", precision="bf16", heldout_size=0, **TINY,
    )  # fmt: skip
    assert result.precision == "bf16" and "precision bf16" in result.summary()
    start = json.loads((tmp_path / "run" / "training_log.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["precision"] == "bf16"
    model = isbert.load(tmp_path / "run")
    lengths = sampler.token_lengths(model, (tmp_path / "c.txt").read_text().splitlines())
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in seen]
    assert len(seen) == 300 // 8 and max(spreads) <= 1


def test_auto_precision_is_fp32_on_cpu_without_bf16(tmp_path: Path, monkeypatch) -> None:
    from isbert.training import precision

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert precision.cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("flags\t: fpu avx2\n")
    assert not precision.cpu_has_bf16(cpuinfo) and not precision.cpu_has_bf16(tmp_path / "missing")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.resolve_precision("auto", use_cuda=False) == "fp32"
    assert precision.resolve_precision("bf16", use_cuda=False) == "bf16"
    with pytest.raises(IsbertError, match="fp16 needs a GPU"):
        precision.resolve_precision("fp16", use_cuda=False)
