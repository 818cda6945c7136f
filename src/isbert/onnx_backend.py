"""Fast CPU inference: export a sentence-transformers model to ONNX (optionally int8) and encode with ONNX Runtime.

The exported folder is self-contained: ``model.onnx`` (fp32) and/or ``model_int8.onnx`` (dynamic int8 quantization
of the encoder's matrix multiplications, per channel, which uses VNNI instructions where the CPU has them), the
tokenizer files, and ``isbert_onnx.json`` describing both. :class:`OnnxEncoder` sorts texts by token length and
pads each batch only to its own longest text, so little compute goes to padding.

:func:`model_key` and :func:`intact_export` serve the loader's export cache (:func:`isbert.model.cached_export`):
``isbert.load(folder, backend="onnx")`` on a plain model folder exports it once into ``$ISBERT_CACHE/onnx/<key>``
(default ``~/.cache/isbert``), keyed by the checksums of the model's files, and reuses it; an entry whose files no
longer match the checksums recorded at export time is exported again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from torch import nn
from tqdm.auto import tqdm

from isbert.atomic import publishing_dir
from isbert.confined import confined_path
from isbert.errors import IsbertError
from isbert.extras import require
from isbert.identity import sha256_file

logger = logging.getLogger(__name__)

CONFIG_NAME = "isbert_onnx.json"
Quantization = Literal["int8", "none"]
FILES = {"none": "model.onnx", "int8": "model_int8.onnx"}


def _require_onnxruntime() -> Any:
    require("onnx", "onnxruntime", "onnx", what="the ONNX backend")
    import onnxruntime

    return onnxruntime


class _SentenceGraph(nn.Module):
    """The model as one traceable function of the tokenizer's tensors: encoder, then the remaining modules."""

    def __init__(self, model: SentenceTransformer, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        tensors = dict(zip(self.input_names, inputs, strict=True))
        encoder = cast(nn.Module, self.model[0].model)  # the transformers model inside the Transformer module
        hidden = encoder(**tensors).last_hidden_state
        features: dict[str, Any] = {**tensors, "token_embeddings": hidden}
        for module in list(self.model)[1:]:
            features = module(features)
        return features["sentence_embedding"]


def export_onnx(
    model: SentenceTransformer,
    output_dir: str | Path,
    *,
    quantize: Quantization = "int8",
    source: str = "",
    source_checksum: str | None = None,
    opset: int = 17,
) -> Path:
    """Export ``model`` to ``output_dir`` (fp32 graph always; plus the int8 graph when ``quantize="int8"``).

    Only models whose first module is a Hugging Face encoder (sentence-transformers ``Transformer``) followed by
    modules that work on ``token_embeddings``/``attention_mask`` (CNN, pooling, dense, normalize) are supported.
    ``source_checksum`` (:func:`isbert.identity.folder_checksum` of the exported folder) lets an index built with
    that model recognise the export.
    """
    _require_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not (output_dir / CONFIG_NAME).is_file():
        raise IsbertError(f"{output_dir} exists and is not an isbert ONNX export; choose an empty folder")
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or not hasattr(model[0], "model"):
        raise IsbertError("only models that start with a Hugging Face encoder can be exported to ONNX")
    model = model.to("cpu").eval()
    tracing = ["a short text", "a somewhat longer text for tracing"]  # cut to the model's length, as encode() cuts
    sample = tokenizer(tracing, padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="pt")
    input_names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]
    graph = _SentenceGraph(model, input_names).eval()
    dynamic_axes = {name: {0: "batch", 1: "tokens"} for name in input_names} | {"sentence_embedding": {0: "batch"}}

    with publishing_dir(output_dir, "exporting") as staging:  # an old export stays whole until this one is complete
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                tuple(sample[name] for name in input_names),
                str(staging / FILES["none"]),
                input_names=input_names,
                output_names=["sentence_embedding"],
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=False,
            )
        files = {"none": FILES["none"]}
        if quantize == "int8":
            root = logging.getLogger()
            previous, root.disabled = root.disabled, True  # onnxruntime logs an unrelated pre-processing hint
            try:
                quantize_dynamic(
                    staging / FILES["none"],
                    staging / FILES["int8"],
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    op_types_to_quantize=["MatMul"],  # the encoder; the small CNN head stays fp32
                )
            finally:
                root.disabled = previous
            files["int8"] = FILES["int8"]
        tokenizer.save_pretrained(str(staging))
        config = {
            "checksums": {f.relative_to(staging).as_posix(): sha256_file(f) for f in staging.rglob("*") if f.is_file()},
            "source": source,
            "source_checksum": source_checksum,
            "input_names": input_names,
            "embedding_dimension": model.get_embedding_dimension(),
            "max_seq_length": model.max_seq_length,
            "files": files,
            "default": "int8" if quantize == "int8" else "none",
        }
        (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return output_dir


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _read_config(folder: Path) -> dict[str, Any]:
    """The export's config, checked for the fields the encoder reads (a damaged file is a one-line error)."""
    path = folder / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise IsbertError(f"{path}: damaged ONNX export config ({error})") from None
    valid = (
        isinstance(config, dict)
        and isinstance(config.get("files"), dict)
        and isinstance(config.get("default"), str)
        and isinstance(config.get("input_names"), list)
        and all(isinstance(name, str) for name in config["input_names"])
        and isinstance(config.get("max_seq_length"), int)
    )
    if not valid:
        raise IsbertError(f"{path}: damaged ONNX export config; export the model again with `isbert export`")
    return config


def is_onnx_export(path: str | Path) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def export_source_checksum(path: str | Path) -> str | None:
    """The checksum of the model an export was made from, where the export recorded it."""
    if not is_onnx_export(path):
        return None
    value = _read_config(Path(path)).get("source_checksum")
    return value if isinstance(value, str) else None


class OnnxEncoder:
    """Encodes texts with an exported ONNX graph; the subset of ``SentenceTransformer``'s API that isbert uses."""

    def __init__(self, path: str | Path, *, quantization: Quantization | None = None, threads: int | None = None):
        ort = _require_onnxruntime()
        from transformers import AutoTokenizer

        self.path = Path(path)
        if not is_onnx_export(self.path):
            raise IsbertError(f"{self.path} is not an ONNX export (no {CONFIG_NAME}); create one with `isbert export`")
        self.config = _read_config(self.path)
        self.quantization = quantization or self.config["default"]
        if self.quantization not in self.config["files"]:
            graphs = ", ".join(self.config["files"])
            raise IsbertError(f"{self.path} has no {self.quantization!r} graph (has: {graphs})")
        graph = confined_path(self.path, self.config["files"][self.quantization], str(self.path / CONFIG_NAME))
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))  # nosec B615 # a local export folder, never a hub id
        except (OSError, ValueError) as error:
            raise IsbertError(f"{self.path}: cannot load the tokenizer ({_first_line(error)})") from None
        self.max_seq_length: int = self.config["max_seq_length"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        spin = "0" if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" else "1"  # see isbert.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable graphs
            raise IsbertError(f"{graph}: cannot load the ONNX graph ({_first_line(error)})") from None

    def get_embedding_dimension(self) -> int:
        return int(self.config["embedding_dimension"])

    def encode(
        self,
        sentences: str | list[str],
        batch_size: int = 32,
        show_progress_bar: bool = False,
        convert_to_numpy: bool = True,
        normalize_embeddings: bool = False,
        **_: Any,
    ) -> np.ndarray:
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        output = np.zeros((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        if not texts:
            return output
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length, add_special_tokens=True)
        order = np.argsort([-len(tokens) for tokens in ids["input_ids"]], kind="stable")
        names = self.config["input_names"]
        for start in tqdm(range(0, len(texts), batch_size), disable=not show_progress_bar, desc="encode"):
            index = order[start : start + batch_size]
            batch = self.tokenizer.pad({name: [ids[name][i] for i in index] for name in names}, return_tensors="np")
            inputs = {name: batch[name].astype(np.int64) for name in names}
            output[index] = self.session.run(None, inputs)[0]
        if normalize_embeddings:
            output /= np.maximum(np.linalg.norm(output, axis=1, keepdims=True), 1e-12)
        return output[0] if single else output


def model_key(folder: Path) -> str:
    """A digest of every file of a model folder (names and sha256): a changed model gets a new key.

    Not :func:`isbert.identity.folder_checksum`, which trusts the checksum list isbert saved with the model: a cache
    hit skips loading (where that list is verified), so weights edited behind the list must still miss the cache.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()[:32]


def intact_export(entry: Path) -> bool:
    """Whether a cache entry still holds exactly the files its export recorded (config and graphs included)."""
    try:
        config = _read_config(entry)
        checksums = config.get("checksums")
        if not isinstance(checksums, dict) or not set(config["files"].values()) <= set(checksums):
            return False
        return all(sha256_file(confined_path(entry, name, str(entry / CONFIG_NAME))) == want
                   for name, want in checksums.items())  # fmt: skip
    except (IsbertError, OSError):
        return False
