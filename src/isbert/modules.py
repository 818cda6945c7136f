"""The IS-BERT local-feature extractor: a masked multi-window 1-D CNN over token embeddings.

Zhang et al., "An Unsupervised Sentence Embedding Method by Mutual Information Maximization",
EMNLP 2020 (arXiv:2009.12061), section 3.1: windows of 1, 3 and 5 tokens, 256 filters each, ReLU,
concatenated into 768-d local n-gram features; the sentence vector is their mean (a separate Pooling
module).

Unlike the released code (and sentence-transformers' stock ``CNN`` before 6.3), padded positions are zeroed before
the convolution, so a sentence's features do not depend on what else is in its batch. From sentence-transformers 6.3
on, the stock ``CNN`` masks padding too: where it computes the same thing (no activation, special tokens counted as
local tokens), :func:`local_feature_cnn` uses it, so the saved model needs no isbert code to load. ``MaskedCNN``
remains for what the stock module cannot do: the paper's ReLU, and special tokens that feed the windows but are not
pooled or scored.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

if sys.version_info >= (3, 11):
    from typing import Self
else:  # Python 3.10
    from typing_extensions import Self

import sentence_transformers
import torch
from packaging.version import Version
from sentence_transformers.base.modules.module import Module
from sentence_transformers.sentence_transformer.modules import CNN
from torch import nn

Activation = Literal["relu", "none"]
ACTIVATIONS: tuple[str, ...] = ("relu", "none")


STOCK_CNN_MASKS_FROM = Version("6.3")
"""The first sentence-transformers release whose ``CNN`` zeroes padding before its convolution."""


def stock_cnn_masks_padding(version: str = sentence_transformers.__version__) -> bool:
    """Whether sentence-transformers ``version``'s own ``CNN`` keeps padding out of its windows."""
    return Version(version) >= STOCK_CNN_MASKS_FROM


def local_feature_cnn(
    in_embedding_dimension: int,
    out_channels: int = 256,
    kernel_sizes: list[int] | tuple[int, ...] = (1, 3, 5),
    activation: Activation = "relu",
    include_special_tokens: bool = True,
    special_token_ids: list[int] | None = None,
) -> CNN | MaskedCNN:
    """The IS-BERT head: sentence-transformers' ``CNN`` where it equals :class:`MaskedCNN` (linear, every real token
    local, a release that masks padding), else :class:`MaskedCNN`. Both give the same sentence vectors and the same
    loss (tested); the stock module's folder loads in plain sentence-transformers without ``trust_remote_code``."""
    if activation == "none" and include_special_tokens and stock_cnn_masks_padding():
        kernels = _checked_cnn_arguments(out_channels, kernel_sizes, activation)
        return CNN(int(in_embedding_dimension), out_channels=int(out_channels), kernel_sizes=kernels)
    return MaskedCNN(
        in_embedding_dimension, out_channels, kernel_sizes, activation, include_special_tokens, special_token_ids
    )


def _checked_cnn_arguments(out_channels: int, kernel_sizes: list[int] | tuple[int, ...], activation: str) -> list[int]:
    kernels = [int(k) for k in kernel_sizes]
    if not kernels or any(k < 1 or k % 2 == 0 for k in kernels):
        raise ValueError(f"kernel_sizes must be odd positive integers, got {kernels}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if out_channels < 1:
        raise ValueError(f"out_channels must be positive, got {out_channels}")
    return kernels


def is_cnn_head(module_type: str) -> bool:
    """Whether a ``modules.json`` type names an IS-BERT head: isbert's ``MaskedCNN`` or sentence-transformers' ``CNN``
    (any of its module paths across releases)."""
    return module_type == f"{__name__}.MaskedCNN" or (
        module_type.startswith("sentence_transformers.") and module_type.rsplit(".", 1)[-1] == "CNN"
    )


class MaskedCNN(Module):
    """Multi-window CNN producing one local feature per token, with padding kept out of every window.

    Input ``features``: ``token_embeddings`` (batch, length, in_dim), ``attention_mask`` (batch, length) and,
    when special tokens are excluded, ``input_ids``.
    Output: ``token_embeddings`` replaced by the local features (batch, length, out_channels * len(kernel_sizes)),
    zero at positions that are not local tokens, and ``attention_mask`` replaced by the local-token mask
    (the positions that the pooling averages and that the mutual-information loss scores).

    Args:
        in_embedding_dimension: width of the encoder's token embeddings.
        out_channels: filters per window size (256 in the paper).
        kernel_sizes: odd window sizes (1, 3, 5 in the paper); each is zero-padded by (k-1)/2 on both sides.
        activation: ``"relu"`` (the paper) or ``"none"`` (the released code applies no activation).
        include_special_tokens: count [CLS]/[SEP] as local tokens (as the released code does). When False, they
            still feed the convolution as context but are excluded from the pooling and the loss.
        special_token_ids: ids treated as special when ``include_special_tokens`` is False (set by
            :func:`isbert.build` from the tokenizer).
    """

    config_keys: list[str] = [
        "in_embedding_dimension",
        "out_channels",
        "kernel_sizes",
        "activation",
        "include_special_tokens",
        "special_token_ids",
    ]
    config_file_name: str = "masked_cnn_config.json"

    def __init__(
        self,
        in_embedding_dimension: int,
        out_channels: int = 256,
        kernel_sizes: list[int] | tuple[int, ...] = (1, 3, 5),
        activation: Activation = "relu",
        include_special_tokens: bool = True,
        special_token_ids: list[int] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # sentence-transformers' Module is not annotated
        kernel_sizes = _checked_cnn_arguments(out_channels, kernel_sizes, activation)
        self.in_embedding_dimension = int(in_embedding_dimension)
        self.out_channels = int(out_channels)
        self.kernel_sizes = kernel_sizes
        self.activation = activation
        self.include_special_tokens = bool(include_special_tokens)
        self.special_token_ids = sorted({int(i) for i in special_token_ids or []})
        if not self.include_special_tokens and not self.special_token_ids:
            raise ValueError("include_special_tokens=False needs special_token_ids (isbert.build sets them)")
        self.convs = nn.ModuleList(
            nn.Conv1d(self.in_embedding_dimension, self.out_channels, kernel_size=k, padding=(k - 1) // 2)
            for k in kernel_sizes
        )

    def local_token_mask(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Boolean (batch, length) mask of the positions that count as local tokens."""
        mask = features["attention_mask"].bool()
        if not self.include_special_tokens:
            special = torch.tensor(self.special_token_ids, device=mask.device)
            mask = mask & ~torch.isin(features["input_ids"], special)
        return mask

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        tokens = features["token_embeddings"]
        real = features["attention_mask"].bool()
        local_mask = self.local_token_mask(features)
        # Zero the padding so that no window reaches into it: this is what makes embeddings batch-independent.
        x = (tokens * real.unsqueeze(-1).to(tokens.dtype)).transpose(1, 2)  # (batch, in_dim, length)
        local = torch.cat([conv(x) for conv in self.convs], dim=1).transpose(1, 2)  # (batch, length, out_dim)
        if self.activation == "relu":
            local = torch.relu(local)
        local = local * local_mask.unsqueeze(-1).to(local.dtype)
        features.update({"token_embeddings": local, "attention_mask": local_mask.to(features["attention_mask"].dtype)})
        return features

    def get_embedding_dimension(self) -> int:
        return self.out_channels * len(self.kernel_sizes)

    def get_config_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.config_keys}

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=True)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        init_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        config = cls.load_config(
            model_name_or_path=model_name_or_path, subfolder=subfolder, token=token, cache_folder=cache_folder,
            revision=revision, local_files_only=local_files_only,
        )  # fmt: skip
        model = cls(**{**(init_defaults or {}), **config})
        loaded: Self = cls.load_torch_weights(
            model_name_or_path=model_name_or_path, model=model, subfolder=subfolder, token=token,
            cache_folder=cache_folder, revision=revision, local_files_only=local_files_only,
        )  # fmt: skip
        return loaded
