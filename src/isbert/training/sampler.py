"""The order of the training sentences: a pure function of (seed, epoch), so a resumed run sees the same batches."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from sentence_transformers.base.sampler import DefaultBatchSampler


class EpochSeededBatchSampler(DefaultBatchSampler):
    """Shuffled batches from a permutation seeded by ``seed + epoch``.

    The stock sampler draws each epoch from one generator that a resumed run cannot fast-forward; here the order of
    every epoch is a pure function of (seed, epoch), so resuming in any epoch sees exactly the same batches.
    """

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator()
        generator.manual_seed(int(self.seed) + int(self.epoch))
        order = torch.randperm(len(self.sampler), generator=generator).tolist()
        batch: list[int] = []
        for index in order:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
