"""SIF, uSIF and all-but-the-top as plain sentence-transformers models, fitted on an unlabeled corpus.

A fitted baseline is four of sentence-transformers' own modules, so its folder loads with
``SentenceTransformer(folder)`` (no ``trust_remote_code``) and with :func:`isbert.load`:

    encoder (WordEmbeddings, or a 0-layer Transformer) -> WordWeights -> Pooling(mean) -> Dense(I - U U^T)

``WordWeights`` holds one weight per vocabulary entry and hands the summed weights to ``Pooling``, which divides by
them; ``Dense`` (no bias, identity activation) removes the common directions. All-but-the-top changes the word-vector
table itself. The math is in :mod:`isbert.sif`; this module counts, fits and assembles.

Only backbones whose token vectors do not depend on the context qualify (the weights are per token id): a
``WordEmbeddings`` model such as ``offline-glove``, or a transformer cut to its embedding layer
(``encoder_layers=0``; its vectors still depend on the position, not on the other words).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sentence_transformer.modules import Dense, Pooling, WordEmbeddings, WordWeights
from sentence_transformers.sentence_transformer.modules.tokenizer import WordTokenizer

from isbert import sif
from isbert.corpus import CorpusStats, iter_corpus
from isbert.errors import IsbertError
from isbert.glove import GLOVE_ALIAS, PADDING_TOKEN, is_word_embedding_model
from isbert.inputs import InputSpec, describe, expand_inputs
from isbert.io import EncodingErrors
from isbert.model import load_torch, resolve_model_name, save, truncate_encoder

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

SAMPLE_SIZE = 100_000
"""Sentences (a seeded uniform sample of the corpus) whose vectors the common directions are fitted on."""

StaticEncoder = WordEmbeddings | Transformer


# --------------------------------------------------------------------------------------------- static encoders
def context_free_reason(model: str, encoder_layers: int | None) -> str | None:
    """Why ``model`` (with ``encoder_layers``) has token vectors that depend on the context, or None when it has
    none; a cheap check on names and files (nothing is loaded), for experiment files."""
    if encoder_layers == 0 or model == GLOVE_ALIAS:
        return None
    path = resolve_model_name(model)
    if os.path.isdir(path) and is_word_embedding_model(path):
        return None if encoder_layers is None else f"{model}: a word-vector backbone has no transformer layers"
    if encoder_layers is None and _saved_layers(path) == 0:
        return None
    return _contextual_message(model, encoder_layers)


def _saved_layers(path: str) -> int | None:
    from isbert.model_folder import read_model_config

    try:
        return int(read_model_config(Path(path, "config.json")).get("num_hidden_layers"))  # type: ignore[arg-type]
    except (OSError, ValueError, TypeError, IsbertError):  # unknown: the caller's message names no count
        return None


def _contextual_message(model: str, layers: int | None) -> str:
    depth = f"{layers} transformer layers" if layers is not None else "transformer layers"
    return (
        f"{model} has {depth}: its token vectors depend on the context, but SIF, uSIF and all-but-the-top weight "
        "and average context-free token vectors; pass --encoder-layers 0 (encoder_layers = 0) to use its token "
        "embeddings, or a word-vector backbone such as offline-glove"
    )


def static_encoder(backbone: str, encoder_layers: int | None = None, *, device: str | None = None) -> StaticEncoder:
    """The first module of ``backbone``, refused unless its token vectors are context-free: a ``WordEmbeddings``
    table, or a transformer cut to ``encoder_layers=0``."""
    path = resolve_model_name(backbone)
    encoder = load_torch(path, device=device)[0]
    if isinstance(encoder, WordEmbeddings):
        if encoder_layers is not None:
            raise IsbertError(f"{backbone}: a word-vector backbone has no transformer layers; drop --encoder-layers")
        return encoder
    if not isinstance(encoder, Transformer):
        raise IsbertError(f"{backbone}: the first module is {type(encoder).__name__}, not a word-vector table or a "
                          "transformer encoder")  # fmt: skip
    if encoder_layers is not None:
        if encoder_layers != 0:
            raise IsbertError(_contextual_message(backbone, encoder_layers))
        truncate_encoder(encoder, 0)
    check_static(encoder, backbone)
    return encoder


def check_static(encoder: Any, name: str) -> None:
    """Refuse an encoder whose token vectors depend on the context (a transformer with layers)."""
    if isinstance(encoder, WordEmbeddings):
        return
    if isinstance(encoder, Transformer):
        layers = int(getattr(encoder.auto_model.config, "num_hidden_layers", 0) or 0)
        if layers == 0:
            return
        raise IsbertError(_contextual_message(name, layers))
    raise IsbertError(f"{name}: the first module is {type(encoder).__name__}, not a static token encoder")


def vocabulary(encoder: StaticEncoder) -> list[str]:
    """The tokenizer's vocabulary in id order (what ``WordWeights`` indexes by token id)."""
    if isinstance(encoder, WordEmbeddings):
        vocab = getattr(encoder.tokenizer, "vocab", None)
        if not isinstance(vocab, list):
            raise IsbertError(f"word tokenizer {type(encoder.tokenizer).__name__} has no vocabulary list")
        return list(vocab)
    tokenizer = _tokenizer(encoder)
    return [str(token) for token in tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))]


def _tokenizer(encoder: Transformer) -> PreTrainedTokenizerBase:
    """The transformer's text tokenizer (sentence-transformers gives None for a processor without one)."""
    tokenizer = encoder.tokenizer
    if tokenizer is None:
        raise IsbertError(f"{type(encoder).__name__} has no text tokenizer: not a text encoder")
    return tokenizer


def padding_rows(encoder: StaticEncoder) -> int:
    """Rows before the first word: 1 for a word-vector table that pads with row 0 (GloVe's PADDING_TOKEN)."""
    return int(isinstance(encoder, WordEmbeddings) and vocabulary(encoder)[:1] == [PADDING_TOKEN])


def _word_table(encoder: StaticEncoder) -> torch.Tensor:
    """The input word-vector table: WordEmbeddings' weights, or a transformer's input word embeddings."""
    if isinstance(encoder, WordEmbeddings):
        return encoder.emb_layer.weight
    return cast(torch.Tensor, encoder.auto_model.get_input_embeddings().weight)  # an nn.Embedding's weight


# ------------------------------------------------------------------------------------------------ token counts
@dataclass
class TokenCounts:
    """Token ids counted on a corpus with the model's own tokenizer, as the model sees them (truncated to its
    maximum length; a transformer's [CLS]/[SEP] included), and a seeded sample of the sentences."""

    counts: np.ndarray
    sentences: int = 0
    words: int = 0
    """White-space words read."""
    unknown: int = 0
    """Words a word tokenizer dropped, or [UNK] pieces of a word-piece tokenizer."""
    sample: list[str] = field(default_factory=list)
    corpus: CorpusStats = field(default_factory=CorpusStats)

    @property
    def tokens(self) -> int:
        return int(self.counts.sum())

    @property
    def mean_length(self) -> float:
        """uSIF's n: tokens per sentence."""
        return self.tokens / self.sentences if self.sentences else 0.0

    @property
    def coverage(self) -> float:
        """Share of the corpus' words the vocabulary knows."""
        return 1.0 - self.unknown / self.words if self.words else 0.0


def _batches(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def count_tokens(
    encoder: StaticEncoder,
    corpus: InputSpec | Sequence[InputSpec],
    *,
    sample_size: int = SAMPLE_SIZE,
    seed: int = 0,
    text_field: str = "text",
    column: str = "text",
    encoding_errors: EncodingErrors = "strict",
    dedup: bool = False,
) -> TokenCounts:
    """Count every token id of the corpus' sentences (one streaming pass) and keep a uniform sample of at most
    ``sample_size`` sentences (reservoir sampling, seeded). Empty corpus, or no word in the vocabulary: one line
    naming the files."""
    files = expand_inputs(corpus)
    where = describe(files)
    result = TokenCounts(np.zeros(len(vocabulary(encoder)), dtype=np.int64))
    rng = random.Random(seed)  # nosec B311 # a reproducible sample of sentences, not a secret
    texts = iter_corpus(
        [file.path for file in files], result.corpus, text_field=text_field, column=column,
        encoding_errors=encoding_errors, dedup=dedup,
    )  # fmt: skip
    for batch in _batches(texts, 1024):
        for text in batch:
            result.sentences += 1
            if len(result.sample) < sample_size:
                result.sample.append(text)
            else:
                slot = rng.randrange(result.sentences)
                if slot < sample_size:
                    result.sample[slot] = text
        _count_batch(encoder, batch, result)
    if result.sentences == 0:
        raise IsbertError(f"the corpus is empty: no non-empty lines in {where}")
    words = np.ones(len(result.counts), dtype=bool)
    words[sorted(_special_ids(encoder))] = False
    if result.counts[words].sum() == 0:
        raise IsbertError(f"no word of {where} is in the vocabulary of the backbone: nothing to weight or average")
    return result


def _special_ids(encoder: StaticEncoder) -> set[int]:
    if isinstance(encoder, WordEmbeddings):
        return set(range(padding_rows(encoder)))
    tokenizer = _tokenizer(encoder)
    return {i for i in tokenizer.all_special_ids if i != tokenizer.unk_token_id}


def _count_batch(encoder: StaticEncoder, batch: list[str], result: TokenCounts) -> None:
    result.words += sum(len(text.split()) for text in batch)
    if isinstance(encoder, WordEmbeddings):
        for text in batch:
            ids = cast(WordTokenizer, encoder.tokenizer).tokenize(text)  # see glove.word_coverage
            result.unknown += max(0, len(text.split()) - len(ids))  # a white-space tokenizer: one id per word at most
            np.add.at(result.counts, np.asarray(ids[: encoder.max_seq_length], dtype=np.int64), 1)
        return
    features = encoder.preprocess(batch)
    ids = features["input_ids"][features["attention_mask"].bool()].numpy()
    result.counts += np.bincount(ids, minlength=len(result.counts))[: len(result.counts)]
    unknown_id = _tokenizer(encoder).unk_token_id
    if unknown_id is not None:
        result.unknown += int((ids == unknown_id).sum())


def probabilities(encoder: StaticEncoder, counts: TokenCounts, kind: sif.Probabilities) -> np.ndarray:
    """p(w) per token id: counted on the corpus, or from the rank in a frequency-sorted word-vector vocabulary."""
    if kind == "corpus":
        return sif.corpus_probabilities(counts.counts)
    if not isinstance(encoder, WordEmbeddings):
        raise IsbertError(
            "Zipf probabilities need a frequency-sorted vocabulary (a word-vector table such as GloVe's); a "
            "word-piece vocabulary is not sorted by frequency: use --probabilities corpus"
        )
    return sif.zipf_probabilities(len(counts.counts), skip=padding_rows(encoder))


# ------------------------------------------------------------------------------------------------ the modules
def word_weights(vocab: list[str], weights: np.ndarray, default: float) -> WordWeights:
    """sentence-transformers' ``WordWeights`` giving token id ``i`` the weight ``weights[i]``.

    Only entries that differ from ``default`` (the weight of a word never seen) are written, plus the exact entry of
    any word that ``WordWeights`` would otherwise give its lower-cased form's weight.
    """
    table: dict[str, float] = {}
    for word, weight in zip(vocab, weights.tolist(), strict=True):
        if weight != default:
            table[word] = weight
    for word, weight in zip(vocab, weights.tolist(), strict=True):
        if word not in table and word.lower() in table:
            table[word] = weight
    return WordWeights(vocab=vocab, word_weights=table, unknown_word_weight=float(default))


def removal_dense(matrix: np.ndarray) -> Dense:
    """A ``Dense`` layer computing ``x @ matrix^T`` (no bias, identity activation)."""
    dim = matrix.shape[0]
    weight = torch.tensor(matrix, dtype=torch.float32)
    return Dense(dim, dim, bias=False, activation_function=torch.nn.Identity(), init_weight=weight)


def apply_abtt(encoder: StaticEncoder, d: int) -> sif.Directions:
    """All-but-the-top on the encoder's word-vector table, in place (a padding row stays zero)."""
    table = _word_table(encoder)
    skip = padding_rows(encoder)
    with torch.no_grad():
        vectors = table[skip:].detach().cpu().double().numpy()
        processed, directions = sif.all_but_the_top(vectors, d)
        table[skip:] = torch.from_numpy(processed).to(table.dtype).to(table.device)
    return directions


def normalise_word_vectors(encoder: StaticEncoder) -> None:
    """Unit-length rows of a word-vector table, in place (uSIF; a zero row, GloVe's padding, stays zero)."""
    if not isinstance(encoder, WordEmbeddings):
        return  # a 0-layer transformer's token vector is LayerNorm(word + position): no table to normalise
    table = encoder.emb_layer.weight
    with torch.no_grad():
        norms = table.norm(dim=1, keepdim=True)
        table.div_(torch.where(norms > 0, norms, torch.ones_like(norms)))


# ------------------------------------------------------------------------------------------------- fitting
@dataclass
class FitReport:
    """What fitting did, for the one-line summary and for result files."""

    settings: sif.SifSettings
    backbone: str
    sentences: int = 0
    coverage: float | None = None
    seen: int = 0
    vocab_size: int = 0
    a: float | None = None
    mean_length: float | None = None
    components: int = 0
    explained: float | None = None
    abtt: int = 0

    def summary(self) -> str:
        parts = [f"{self.settings.method} on {self.backbone}"]
        if self.coverage is not None:
            parts.append(
                f"{self.sentences:,} corpus sentences, {100 * self.coverage:.1f}% of their words in the vocabulary, "
                f"{self.seen:,} of {self.vocab_size:,} vocabulary entries seen"
            )
        if self.settings.weighted:
            how = "corpus counts" if self.settings.probabilities == "corpus" else "Zipf ranks"
            a = f"a={self.a:.3g}" if self.a is not None else "a=inf"
            parts.append(f"p(w) from {how}, {a}" + (f" (n={self.mean_length:.1f})" if self.mean_length else ""))
        if self.abtt:
            parts.append(f"ABTT removed {self.abtt} component(s) from the word vectors")
        if self.components:
            parts.append(
                f"{self.components} common component(s) removed, "
                f"{100 * (self.explained or 0):.1f}% of the sentence vectors' squared norm"
            )
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "summary": self.summary()}


@dataclass
class Fitted:
    model: SentenceTransformer
    report: FitReport


def fit_baseline(
    backbone: str,
    corpus: InputSpec | Sequence[InputSpec] | None,
    settings: sif.SifSettings,
    *,
    encoder_layers: int | None = None,
    max_seq_length: int | None = None,
    sample_size: int = SAMPLE_SIZE,
    device: str | None = None,
    **reader: Any,
) -> Fitted:
    """Fit SIF, uSIF or all-but-the-top on ``corpus`` (files, folders, patterns; not needed by ABTT alone) over the
    static encoder of ``backbone``; returns the model (encoder -> [WordWeights] -> mean Pooling -> [Dense]) and a
    report. ``reader``: ``text_field``, ``column``, ``encoding_errors``, ``dedup`` (as ``isbert train``)."""
    encoder = static_encoder(backbone, encoder_layers, device=device)
    if max_seq_length is not None:
        encoder.max_seq_length = max_seq_length
    report = FitReport(settings, str(backbone), vocab_size=len(vocabulary(encoder)))
    report.abtt = settings.abtt_components(encoder.get_embedding_dimension())
    if report.abtt:
        apply_abtt(encoder, report.abtt)
    pooling = Pooling(encoder.get_embedding_dimension(), pooling_mode="mean")
    if not settings.weighted:
        model = SentenceTransformer(modules=[encoder, pooling], device=device)
        _describe(model, settings, backbone)
        return Fitted(model, report)
    if corpus is None:
        raise IsbertError(f"{settings.method} needs an unlabeled corpus for its word probabilities")
    counts = count_tokens(encoder, corpus, sample_size=sample_size, **reader)
    _report_counts(report, counts)
    p = probabilities(encoder, counts, settings.probabilities)
    if settings.method == "usif":
        report.mean_length = counts.mean_length
        a = sif.usif_parameter(p, counts.mean_length)
        weights, unseen = sif.usif_weights(p, a), 2.0
        normalise_word_vectors(encoder)
    else:
        a = settings.a
        weights, unseen = sif.sif_weights(p, a), 1.0
    report.a = None if np.isinf(a) else float(a)
    weighting = word_weights(vocabulary(encoder), weights, unseen)
    modules: list[torch.nn.Module] = [encoder, weighting, pooling]
    if settings.removed:
        directions = _fit_directions(modules, counts.sample, settings.removed, device)
        report.components, report.explained = settings.removed, directions.explained
        removal = (
            sif.piecewise_removal_map(directions) if settings.method == "usif" else sif.removal_map(directions.vectors)
        )
        modules.append(removal_dense(removal))
    model = SentenceTransformer(modules=modules, device=device)
    _describe(model, settings, backbone)
    return Fitted(model, report)


def _report_counts(report: FitReport, counts: TokenCounts) -> None:
    report.sentences = counts.sentences
    report.coverage = counts.coverage
    report.seen = int(np.count_nonzero(counts.counts))


def _fit_directions(modules: list[torch.nn.Module], sample: list[str], k: int, device: str | None) -> sif.Directions:
    """The first ``k`` uncentred principal directions of the sample's sentence vectors, as ``modules`` compute them."""
    upto_pooling = SentenceTransformer(modules=modules, device=device)
    vectors = upto_pooling.encode(sample, batch_size=256, convert_to_numpy=True, show_progress_bar=False)
    if k > vectors.shape[1]:
        raise IsbertError(f"cannot remove {k} components from {vectors.shape[1]}-dimensional sentence vectors")
    return sif.principal_directions(vectors, k)


def _describe(model: SentenceTransformer, settings: sif.SifSettings, backbone: str) -> None:
    model.model_card_data.model_name = f"{settings.describe()} on {Path(str(backbone)).name or backbone}"
    model.model_card_data.tags = [*(model.model_card_data.tags or []), "training-free", settings.method]


# --------------------------------------------------------------------------------------- SIF after training
def add_sif(
    model: SentenceTransformer,
    corpus: InputSpec | Sequence[InputSpec],
    settings: sif.SifSettings | None = None,
    *,
    sample_size: int = SAMPLE_SIZE,
    **reader: Any,
) -> Fitted:
    """``model`` with SIF weighting and common-component removal added after training: ``WordWeights`` spliced in
    just before its final mean ``Pooling`` and a ``Dense`` right after it.

    For an IS-BERT model: encoder -> MaskedCNN -> WordWeights -> Pooling -> Dense (MaskedCNN keeps ``input_ids``
    in the features, so each pooled CNN feature is weighted by its token's SIF weight). The first module must be a
    static encoder (word vectors or a 0-layer transformer). A model that weights its tokens already (trained with
    ``word_weights``) keeps its weights and gets the common-direction removal only. The modules are shared with
    ``model``, not copied.
    """
    settings = settings or sif.NAMED_BASELINES["sif"]
    if settings.method != "sif" or settings.abtt:
        raise IsbertError("only plain SIF (no uSIF, no ABTT) can be added to a trained model")
    modules = list(model)
    if not modules:
        raise IsbertError("an empty model: nothing to add SIF to")
    check_static(modules[0], "the model's encoder")
    encoder = cast(StaticEncoder, modules[0])  # what check_static let through
    position = _final_mean_pooling(modules)
    counts = count_tokens(encoder, corpus, sample_size=sample_size, **reader)
    report = FitReport(settings, model.model_card_data.model_name or "the model", vocab_size=len(counts.counts))
    _report_counts(report, counts)
    if any(isinstance(module, WordWeights) for module in modules):  # weighted in training: directions only
        if modules[position + 1 :]:
            raise IsbertError("the model already weights its tokens and transforms its pooled vectors: SIF was added")
        head = modules[: position + 1]
    else:
        report.a = settings.a
        weights = sif.sif_weights(probabilities(encoder, counts, settings.probabilities), settings.a)
        head = [*modules[:position], word_weights(vocabulary(encoder), weights, 1.0), modules[position]]
    tail = modules[position + 1 :]
    if settings.removed:
        directions = _fit_directions(head, counts.sample, settings.removed, str(model.device))
        report.components, report.explained = settings.removed, directions.explained
        head.append(removal_dense(sif.removal_map(directions.vectors)))
    spliced = SentenceTransformer(modules=[*head, *tail], device=str(model.device))
    spliced.model_card_data.model_name = f"{model.model_card_data.model_name or 'model'} + SIF (a={settings.a:g})"
    return Fitted(spliced, report)


def _final_mean_pooling(modules: list[torch.nn.Module]) -> int:
    poolings = [i for i, module in enumerate(modules) if isinstance(module, Pooling)]
    if not poolings:
        raise IsbertError("the model has no Pooling module to weight the tokens of")
    position = poolings[-1]
    mode = cast(Pooling, modules[position]).pooling_mode
    if (mode if isinstance(mode, str) else ",".join(mode)) != "mean":
        raise IsbertError(f"SIF weights a mean; the model's final pooling is {mode!r}")
    return position


# ------------------------------------------------------------------------------------------------- saving
def save_baseline(model: SentenceTransformer, folder: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Save atomically (:func:`isbert.save`); an existing model folder is replaced only with ``overwrite``, and a
    folder holding anything else never."""
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise IsbertError(f"--output {target} is a file, not a folder")
    if target.is_dir() and any(target.iterdir()):
        if not (target / "modules.json").is_file():
            raise IsbertError(f"--output {target} is not empty and holds no model; choose another folder")
        if not overwrite:
            raise IsbertError(f"--output {target} already holds a model; pass --overwrite to replace it")
    return save(model, target)
