"""sentence-transformers' trainer with what IS-BERT training adds: a NaN/inf guard and crash-safe checkpoints.

Everything runs inside the Hugging Face Trainer, so ``torchrun`` (DDP) works unchanged."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, cast

import torch
from sentence_transformers.sentence_transformer import SentenceTransformerTrainer

from isbert.atomic import fresh_dir, publish_dir
from isbert.errors import IsbertError
from isbert.training import checkpoints as ckpt
from isbert.training.loss_state import load_loss_state, save_loss_state
from isbert.training.selection import SelectionCallback


class NonFiniteLoss(IsbertError):
    """The loss became NaN or infinite."""

    def __init__(self, step: int, value: float) -> None:
        self.step, self.value = step, value
        super().__init__(f"the loss became {value} at step {step}")


class IsbertTrainer(SentenceTransformerTrainer):
    """sentence-transformers' trainer with a NaN/inf guard and crash-safe checkpoints (see :mod:`checkpoints`)."""

    def __init__(self, *args: Any, keep_last: int = 2, selection: SelectionCallback | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.keep_last = keep_last
        self.selection = selection
        self._staging_dir: str | None = None

    def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None):
        result = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        loss = result[0] if isinstance(result, tuple) else result
        bad = (~torch.isfinite(loss.detach())).any().float().reshape(1)
        if self.args.world_size > 1:  # every rank must stop together, or the others hang in all-reduce
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        if bad.item():
            raise NonFiniteLoss(self.state.global_step + 1, float(loss.detach().float().reshape(-1)[0]))
        return result

    def _load_from_checkpoint(self, checkpoint_path: str, *args: Any) -> None:
        super()._load_from_checkpoint(checkpoint_path, *args)
        load_loss_state(self._loss(), self.model, checkpoint_path)

    def _loss(self) -> torch.nn.Module:
        """The loss: isbert trains with one, never sentence-transformers' dict of a loss per dataset."""
        return cast(torch.nn.Module, self.loss)

    def _get_output_dir(self, trial: Any) -> str:
        return self._staging_dir or super()._get_output_dir(trial)

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        """A checkpoint's model: its modules and weights. Unlike sentence-transformers' own ``_save``, without a model
        card (its Jinja template is compiled and the model run on example sentences at every save: about a fifth of a
        short run's time) and without the pickled training arguments: ``training_run.json`` records the settings, and a
        run folder should hold nothing that needs unpickling."""
        folder = output_dir if output_dir is not None else cast(str, self.args.output_dir)
        os.makedirs(folder, exist_ok=True)
        self.model.save_pretrained(folder, create_model_card=False)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(folder)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Write the checkpoint under ``.partial-STEP/``, fsync it, then rename it to ``checkpoint-STEP``."""
        root = cast(str, self.args.output_dir)  # TrainingArguments.__post_init__ gives None a default
        step = self.state.global_step
        staging = os.path.join(root, f"{ckpt.PARTIAL_PREFIX}{step}")
        if self.args.should_save:
            fresh_dir(staging)  # a link planted at the name is unlinked: the Trainer writes only into a new folder
        self.accelerator.wait_for_everyone()
        self._staging_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()  # every rank has written its RNG state
        if self.args.should_save:
            folder = os.path.join(staging, f"checkpoint-{step}")
            save_loss_state(self._loss(), self.model, folder)
            marker = {"step": step, "selection": self.selection.state_dict() if self.selection else None}
            Path(folder, ckpt.MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
            publish_dir(folder, os.path.join(root, f"checkpoint-{step}"))
            shutil.rmtree(staging, ignore_errors=True)
            ckpt.rotate(root, max(1, self.keep_last))  # 0 keeps none at the end, but the newest until then
        self.accelerator.wait_for_everyone()
