"""Faults survived: SIGKILL at random points of training, saving and encoding; a full disk; torn or altered files.

Each test injects real faults (a SIGKILL to a real process, bytes cut or flipped on disk) and counts them in the
summary line printed at the end of `make reliability`.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import isbert
from isbert.errors import IsbertError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from helpers_training import (
    TINY,
    TINY_ARGS,
    assert_resumed_from,
    cli_env,
    ctrl_c_at,
    isbert_cmd,
    latest_checkpoint_step,
    run_cli,
    write_corpus,
)

pytestmark = pytest.mark.reliability
TEXTS = ["a man runs in the park", "hi", "the red car is very fast", "she reads"]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in sorted(folder.rglob("model.safetensors")):
        if "checkpoints" in file.parts:
            continue
        for key, value in load_file(file).items():
            tensors[f"{file.relative_to(folder)}:{key}"] = value
    return tensors


def training_step(folder: Path) -> int:
    """The last step the run logged (the log is appended and flushed after every record)."""
    log = folder / "training_log.jsonl"
    if not log.is_file():
        return -1
    steps = [json.loads(line).get("step", -1) for line in log.read_text().splitlines() if line.strip()]
    return max(steps, default=-1)


@pytest.mark.slow
def test_repeated_sigkill_during_training_resumes_to_the_same_model(tmp_path: Path, tiny_backbone: Path, reliability):
    corpus = write_corpus(tmp_path / "c.txt", 400)
    common = ["--model", str(tiny_backbone), "--corpus", str(corpus), "--max-steps", "40", "--batch-size", "8",
              "--save-steps", "4", "--heldout-size", "0", "--lr", "1e-3", "--device", "cpu", *TINY_ARGS]  # fmt: skip
    reference = run_cli(*common, "--output", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr[-2000:]

    out = tmp_path / "killed"
    kill_points = sorted(random.Random(7).sample(range(6, 36), 2))  # random steps, not aligned with saves
    for number, kill_at in enumerate(kill_points):
        args = [*common, "--output", str(out), *(["--resume"] if number else [])]
        process = subprocess.Popen(isbert_cmd(*args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 180
        while training_step(out) < kill_at and process.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, f"the run ended before step {kill_at}"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        reliability.fault()
    newest = latest_checkpoint_step(out)
    resumed = run_cli(*common, "--output", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_resumed_from(out, newest, max_steps=40)
    expected, got = weights(tmp_path / "ref"), weights(out)
    assert expected.keys() == got.keys() and expected
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6, msg=key)


SAVE_LOOP = """
import sys, torch, isbert
model = isbert.load(sys.argv[1], device="cpu")
print("ready", flush=True)
version = 0
while True:
    version += 1
    with torch.no_grad():
        model[1].convs[0].bias.fill_(float(version % 2))
    isbert.save(model, sys.argv[2])
"""


@pytest.mark.slow
def test_sigkill_during_model_save_never_leaves_a_broken_model(tmp_path: Path, tiny_isbert_folder: Path, reliability):
    target = tmp_path / "model"
    isbert.save(isbert.load(tiny_isbert_folder, device="cpu"), target)
    initial_bias = float(isbert.load(target, device="cpu")[1].convs[0].bias[0].detach())
    script = tmp_path / "save_loop.py"
    script.write_text(SAVE_LOOP)
    rng = random.Random(3)
    for _ in range(4):
        process = subprocess.Popen(
            [sys.executable, str(script), str(tiny_isbert_folder), str(target)],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))  # somewhere inside one of the saves
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        reliability.fault()
        model = isbert.load(target, device="cpu")  # verifies every file against the checksum manifest
        assert float(model[1].convs[0].bias[0].detach()) in (initial_bias, 0.0, 1.0)  # one complete version, old or new
        assert model.encode(TEXTS).shape == (4, 24)


def test_full_disk_during_a_training_checkpoint_keeps_the_last_one(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch, reliability
) -> None:
    from isbert.training import checkpoints, train, trainer

    corpus = write_corpus(tmp_path / "c.txt", 200)
    saves = {"count": 0}
    publish = trainer.publish_dir

    def full_disk_on_second_save(staged, target):
        saves["count"] += 1
        if saves["count"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        publish(staged, target)

    monkeypatch.setattr(trainer, "publish_dir", full_disk_on_second_save)
    with pytest.raises(IsbertError) as info:
        train(
            model=str(tiny_backbone), corpus=[str(corpus)], output=str(tmp_path / "run"), max_steps=12,
            batch_size=8, save_steps=4, heldout_size=0, **TINY,
        )  # fmt: skip
    assert "No space left" in str(info.value) or "disk is full" in str(info.value)
    complete = checkpoints.list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [step for step, _ in complete] == [4]
    assert isbert.load(complete[0][1], device="cpu").encode(TEXTS).shape == (4, 24)
    reliability.fault()


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_saved_model_is_refused_naming_the_file(
    tmp_path: Path, tiny_isbert_folder: Path, damage: str, reliability
) -> None:
    target = tmp_path / "model"
    isbert.save(isbert.load(tiny_isbert_folder, device="cpu"), target)
    rng = random.Random(damage)
    files = sorted(p for p in target.rglob("*") if p.is_file() and p.name != "isbert_checksums.json")
    victim = rng.choice([p for p in files if p.suffix in (".safetensors", ".json")])
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: rng.randrange(len(data))])
    elif damage == "flip":  # a flipped bit deep inside the tensor data: invisible to the format, not to sha256
        position = rng.randrange(len(data) // 2, len(data))
        victim.write_bytes(data[:position] + bytes([data[position] ^ 0x10]) + data[position + 1 :])
    else:
        victim.unlink()
    with pytest.raises(IsbertError, match="damaged") as info:
        isbert.load(target, device="cpu")
    assert str(victim) in str(info.value)
    reliability.fault()


def test_ctrl_c_then_resume_unpickles_nothing_but_plain_tensors(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch, reliability
) -> None:
    """Ctrl-C saves a checkpoint; resuming reads optimizer, scheduler and RNG only via torch.load(weights_only=True)."""

    from isbert.training import TrainingInterrupted, train

    corpus = write_corpus(tmp_path / "c.txt", 200)
    settings = {
        "model": str(tiny_backbone), "corpus": [str(corpus)], "output": str(tmp_path / "run"), "max_steps": 10,
        "batch_size": 8, "save_steps": 100, "heldout_size": 0, "out_channels": 8, "max_seq_length": 16,
        "show_progress": False, "device": "cpu",
    }  # fmt: skip
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(callbacks=[ctrl_c_at(5)], **settings)

    calls: list[object] = []
    real_load = torch.load

    def guarded_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", guarded_load)
    result = train(resume=True, **settings)
    assert result.steps == 10
    assert calls, "resuming read no optimizer/scheduler/RNG state"
    assert all(flag is True for flag in calls), f"torch.load called without weights_only=True: {calls}"
    assert not list((tmp_path / "run").rglob("*.bin")) and not list((tmp_path / "run").rglob("pytorch_model*"))
    reliability.fault()


def _files(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` by its relative name, with the sha256 of its bytes."""
    from isbert.identity import sha256_file

    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _failing(error: BaseException):
    def fail(*args, **kwargs):
        raise error

    return fail


def _fail_second_rename_into(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No atomic exchange (as on a system without renameat2), and the new export's rename into place fails."""
    from isbert import atomic

    real = os.replace
    monkeypatch.setattr(atomic, "exchange_paths", lambda a, b: False)

    def replace(source, destination):
        if Path(destination) == target and Path(source).name.startswith(f".{target.name}.exporting-"):
            raise OSError(errno.EIO, "Input/output error")
        real(source, destination)

    monkeypatch.setattr(atomic.os, "replace", replace)


ONNX_STEPS = {  # each step of an export, and how to make it fail there
    "graph": lambda target, mp: mp.setattr(torch.onnx, "export", _failing(RuntimeError("tracing failed"))),
    "quantize": lambda target, mp: mp.setattr(
        "onnxruntime.quantization.quantize_dynamic", _failing(MemoryError("no memory for the int8 graph"))
    ),
    "fsync": lambda target, mp: mp.setattr("isbert.atomic.fsync_tree", _failing(OSError(errno.EIO, "I/O error"))),
    "swap": lambda target, mp: mp.setattr("isbert.atomic.exchange_paths", _failing(OSError(errno.ENOSPC, "full"))),
    "rename without exchange": _fail_second_rename_into,
}


@pytest.mark.parametrize("step", list(ONNX_STEPS))
def test_an_onnx_export_failing_at_any_step_leaves_the_old_export_intact(
    tmp_path: Path, tiny_isbert_folder: Path, step: str, monkeypatch: pytest.MonkeyPatch, reliability
) -> None:
    pytest.importorskip("onnxruntime")
    from isbert.onnx_backend import export_onnx

    model = isbert.load(tiny_isbert_folder, device="cpu")
    target = export_onnx(model, tmp_path / "export", quantize="none")
    before, want = _files(target), isbert.load(target).encode(TEXTS)
    with monkeypatch.context() as patched:
        ONNX_STEPS[step](target, patched)
        with pytest.raises((RuntimeError, MemoryError, OSError)):
            export_onnx(model, target, quantize="int8")
    reliability.fault()
    assert _files(target) == before
    np.testing.assert_array_equal(isbert.load(target).encode(TEXTS), want)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no staging or retired folder left behind
    export_onnx(model, target, quantize="int8")  # and the next export replaces it
    assert "model_int8.onnx" in _files(target) and not any(p.name.startswith(".") for p in tmp_path.iterdir())


EXPORT_KILLED = """
import os, sys
import isbert
from isbert import atomic
from isbert.onnx_backend import export_onnx

exchange = atomic.exchange_paths

def killed(a, b):
    if sys.argv[3] == "after":
        exchange(a, b)
    os._exit(9)

atomic.exchange_paths = killed
export_onnx(isbert.load(sys.argv[1], device="cpu"), sys.argv[2], quantize="int8")
"""


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_an_onnx_export_killed_at_its_swap_leaves_one_whole_export(
    tmp_path: Path, tiny_isbert_folder: Path, when: str, reliability
) -> None:
    """The process dies (``os._exit``, no cleanup) just before or just after the new export is swapped in: the
    folder holds the old export or the new one, each whole."""
    pytest.importorskip("onnxruntime")
    from isbert.onnx_backend import export_onnx, intact_export

    target = export_onnx(isbert.load(tiny_isbert_folder, device="cpu"), tmp_path / "export", quantize="none")
    before = _files(target)
    script = tmp_path / "export_killed.py"
    script.write_text(EXPORT_KILLED)
    process = subprocess.run(
        [sys.executable, str(script), str(tiny_isbert_folder), str(target), when],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 9, process.stderr[-2000:]
    reliability.fault()
    assert intact_export(target)
    if when == "before":
        assert _files(target) == before
    else:
        assert "model_int8.onnx" in _files(target)
    assert isbert.load(target).encode(TEXTS).shape == (4, 24)
