"""Training corpus: stream text files into a memory-mapped Arrow dataset with one ``text`` column.

Why Arrow (``datasets.Dataset.from_generator``): lines are written to disk as they are read, so a corpus larger than
memory works, and a map-style dataset gives the Trainer a seeded shuffled sampler whose position it can restore
exactly on resume (which an iterable dataset cannot).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from isbert.atomic import fresh_dir
from isbert.corpus import CorpusStats, iter_corpus
from isbert.errors import IsbertError
from isbert.inputs import InputSpec, describe, expand_inputs
from isbert.io import EncodingErrors

TEXT_COLUMN = "text"

# Statistics of generators run by datasets.Dataset.from_generator, by token: the generator runs in this process,
# but datasets hashes its arguments, so the (mutable) stats travel by name instead of by value.
_RUNNING_STATS: dict[str, CorpusStats] = {}


def corpus_fingerprint(corpus: InputSpec | Sequence[InputSpec]) -> list[dict[str, Any]]:
    """Path, size and modification time of every file ``corpus`` names (files, folders, patterns: see
    :func:`isbert.inputs.expand_inputs`): enough to notice a corpus that changed before ``--resume``, a file added
    to a folder included."""
    result = []
    for file in expand_inputs(corpus):
        stat = file.path.stat()
        result.append({"path": str(file.path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return result


def _generate(token: str, paths: tuple[str, ...], options: dict[str, Any]) -> Iterator[dict[str, str]]:
    for text in iter_corpus(paths, _RUNNING_STATS[token], **options):
        yield {TEXT_COLUMN: text}


def build_corpus_dataset(
    corpus: InputSpec | Sequence[InputSpec],
    cache_dir: str | os.PathLike[str],
    *,
    text_field: str = "text",
    column: str = "text",
    encoding_errors: EncodingErrors = "strict",
    dedup: bool = False,
) -> tuple[Any, CorpusStats]:
    """Read the files ``corpus`` names (files, folders, patterns: see :func:`isbert.inputs.expand_inputs`) into an
    Arrow dataset under ``cache_dir`` (rebuilt each time, so the stats are real).

    Returns ``(dataset, stats)``; raises :class:`IsbertError` on an empty corpus or unreadable input.
    """
    import datasets
    from datasets.exceptions import DatasetGenerationError

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    files = expand_inputs(corpus)  # fails early, in one line, on a wrong path
    cache_dir = Path(cache_dir)
    if cache_dir.parent.is_symlink():  # a planted link to a folder elsewhere: never written through
        cache_dir.parent.unlink(missing_ok=True)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    fresh_dir(cache_dir)  # datasets writes only into a folder this process has just created
    token = uuid.uuid4().hex
    stats = CorpusStats()
    _RUNNING_STATS[token] = stats
    options = {"text_field": text_field, "column": column, "encoding_errors": encoding_errors, "dedup": dedup}
    try:
        dataset = datasets.Dataset.from_generator(
            _generate,
            # a tuple, not a list: datasets splits a list in gen_kwargs into one generator call per item, which
            # would restart de-duplication at every file
            gen_kwargs={"token": token, "paths": tuple(str(file.path) for file in files), "options": options},
            cache_dir=str(cache_dir),
            features=datasets.Features({TEXT_COLUMN: datasets.Value("string")}),
        )
    except ValueError:  # datasets refuses a generator that yielded nothing
        if stats.used == 0:
            raise IsbertError(f"the corpus is empty: no non-empty lines in {describe(files)}") from None
        raise
    except DatasetGenerationError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, IsbertError):
            raise cause from None
        raise IsbertError(f"could not read the corpus: {cause or error}") from error
    finally:
        _RUNNING_STATS.pop(token, None)
    if len(dataset) == 0:
        raise IsbertError(f"the corpus is empty: no non-empty lines in {describe(files)}")
    return dataset, stats


def default_heldout_size(num_sentences: int) -> int:
    """1% of the corpus, at least 16 and at most 1,000 sentences; 0 for corpora under 200 sentences."""
    if num_sentences < 200:
        return 0
    return min(1000, max(16, num_sentences // 100))


def split_heldout(dataset: Any, size: int, seed: int) -> tuple[Any, Any | None]:
    """A seeded random held-out slice of ``size`` sentences (never trained on) and the rest for training."""
    if size <= 0:
        return dataset, None
    if size >= len(dataset):
        raise IsbertError(f"--heldout-size {size} leaves no training sentences (the corpus has {len(dataset)})")
    parts = dataset.train_test_split(test_size=size, seed=seed, shuffle=True)
    return parts["train"], parts["test"]
