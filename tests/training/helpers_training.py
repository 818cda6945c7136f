"""Helpers for the training tests; run as a script it is the per-rank worker of the DDP test (torchrun)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent

TINY_ARGS = ["--max-seq-length", "16", "--out-channels", "8", "--no-progress", "--logging-steps", "2"]
TINY = {"max_seq_length": 16, "out_channels": 8, "show_progress": False, "device": "cpu", "logging_steps": 2}
"""The same tiny model and quiet run as ``TINY_ARGS``, as ``train()`` keywords."""


def write_corpus(path: Path, n: int = 300, seed: int = 0, extra: str = "") -> Path:
    """``n`` random sentences from the tiny vocabulary, one per line."""
    sys.path.insert(0, str(TESTS))
    from tiny_models import WORDS

    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def cli_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    return env


def isbert_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "isbert", "train", *args]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(isbert_cmd(*args), env=cli_env(), capture_output=True, text=True, timeout=timeout)


def latest_checkpoint_step(run: Path) -> int:
    """The step of the newest complete checkpoint of a run folder (what --resume must continue from)."""
    from isbert.training.checkpoints import list_checkpoints

    steps = [step for step, _ in list_checkpoints(run / "checkpoints")]
    assert steps, f"no complete checkpoint in {run}"
    return max(steps)


def assert_resumed_from(run: Path, step: int, max_steps: int) -> None:
    """The last resume of the run's log started at ``step`` and trained only the steps after it, up to the end.

    Resuming from step 0 or from an older checkpoint ends with the same weights (training is deterministic), so
    only the log can tell: the steps logged after the resume must all lie past ``step``.
    """
    records = log_records(run)
    resumes = [i for i, r in enumerate(records) if r.get("event") == "resume"]
    assert resumes, "the log has no resume event"
    assert records[resumes[-1]]["step"] == step, f"resumed from step {records[resumes[-1]]['step']}, not {step}"
    trained = [r["step"] for r in records[resumes[-1] + 1 :] if r.get("event") == "train"]
    assert trained and min(trained) > step, f"steps {[s for s in trained if s <= step]} were trained again"
    assert max(trained) == max_steps
    logged = [r["step"] for r in records if r.get("event") == "train"]
    assert len(logged) == len(set(logged)), "the log holds steps twice: the resumed run did not truncate it"


def ctrl_c_at(step: int):
    """A TrainerCallback that presses Ctrl-C (SIGINT to this process) when training reaches ``step``."""
    import signal

    from transformers import TrainerCallback

    class CtrlC(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                os.kill(os.getpid(), signal.SIGINT)

    return CtrlC()


def log_records(run: Path) -> list[dict]:
    """The run's log records, without their wall-clock time."""
    import json

    lines = (run / "training_log.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines if line.strip()]


def parameter_digest(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _ddp_worker(backbone: str, corpus: str, output: str, digest_dir: str) -> None:
    from transformers import TrainerCallback

    from isbert.training import train

    class Digest(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            rank = int(os.environ.get("RANK", "0"))
            Path(digest_dir, f"rank{rank}.txt").write_text(parameter_digest(model))

    train(
        model=backbone, corpus=[corpus], output=output, max_steps=6, batch_size=8, save_steps=3, eval_steps=3,
        max_seq_length=16, out_channels=8, device="cpu", show_progress=False, heldout_size=16, lr=1e-3,
        callbacks=[Digest()],
    )  # fmt: skip


if __name__ == "__main__":
    _ddp_worker(*sys.argv[1:5])
