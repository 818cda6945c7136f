"""The released IS-BERT code's CNN head, as a fixed reference (never used to build isbert's models).

The released code (github.com/yanzhangnlp/IS-BERT) forks sentence-transformers 0.3, whose ``CNN`` convolves the padded
batch as it is: the encoder's outputs at padded positions enter the windows of the last real tokens. That code does
not change, so tests and benchmarks compare with it, not with whatever the installed sentence-transformers release
does (its ``CNN`` leaked the same way up to 6.2 and masks padding from 6.3 on).
"""

from __future__ import annotations

from typing import Any, cast

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling
from torch import nn


class ReleasedCNN(nn.Module):
    """``forward`` of the released code's CNN: no mask anywhere (its convolutions are copied from ``cnn``)."""

    def __init__(self, cnn: nn.Module) -> None:
        super().__init__()
        self.convs = cast(nn.ModuleList, cnn.convs)  # the CNN's convolutions

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        tokens = features["token_embeddings"].transpose(1, -1)
        features["token_embeddings"] = torch.cat([conv(tokens) for conv in self.convs], 1).transpose(1, -1)
        return features


def released_model(model: SentenceTransformer) -> SentenceTransformer:
    """``model``'s encoder and CNN weights, with the released code's unmasked CNN forward and mean pooling."""
    head = ReleasedCNN(model[1])
    width = sum(cast(nn.Conv1d, conv).out_channels for conv in head.convs)
    return SentenceTransformer(modules=[model[0], head, Pooling(width, "mean")], device="cpu").eval()
