"""A tiny random-weight BERT built from a config, so unit tests need no download."""

from __future__ import annotations

import string
from pathlib import Path

WORDS = (
    "the a an is are was were be of to in on at for with and or not no yes it this that he she they we you i "
    "man woman dog cat child people car house street water ball food park beach man's "
    "runs walks sits eats plays reads jumps sleeps looks stands rides holds talks "
    "red blue green big small old young happy sad tall short fast slow good bad "
    "hi hello world sentence embedding test very much longer with many more tokens in"
).split()


def _vocab() -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = [f"##{c}" for c in string.ascii_lowercase + string.digits]
    return list(dict.fromkeys(special + chars + pieces + WORDS))


def make_tiny_backbone(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random-weight BERT (hidden size 32) with a small WordPiece vocabulary, saved as a transformers folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    # transformers 5 ignores vocab_file= here (every token would be [UNK]): pass the vocabulary itself.
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(_vocab())}, do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(_vocab()),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
    )
    BertModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
