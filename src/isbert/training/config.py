"""The settings of a training run, each declared once.

Every field of :class:`TrainConfig` carries its default, type, help text, allowed values and bounds, and its kind
in ``metadata`` (via :func:`setting`). Everything else is derived from that declaration: the ``isbert train``
flags (:func:`add_arguments`), validation (:func:`validate`), the experiment files' checks and which settings a
baseline ignores (:func:`names_of_kind`), the resume-compatibility check (:meth:`TrainConfig.trajectory`) and the
settings table in docs/training.md (:func:`settings_table`; a test keeps the docs in step).
"""

from __future__ import annotations

import argparse
import math
import types
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, Union, cast, get_args, get_origin, get_type_hints

from isbert.cli_types import (
    DATA_DIR_TEXT,
    DEVICE_HELP,
    ENCODER_LAYERS_TEXT,
    INPUT_HELP,
    MAX_BATCH,
    MAX_LAYERS,
    MAX_SAMPLE,
    MAX_SEED,
    MAX_SEQ_LENGTH,
    MAX_STEPS,
    PROGRESS_HELP,
    READER_HELP,
)
from isbert.errors import IsbertError
from isbert.objectives import NAMES as OBJECTIVE_NAMES
from isbert.objectives import help_text as objective_help
from isbert.objectives import objective as objective_of

KINDS = {
    "data": "corpus",
    "model": "model",
    "head": "model",
    "objective": "objective",
    "optimisation": "optimisation",
    "evaluation": "evaluation and model selection",
    "selection": "evaluation and model selection",
    "run": "checkpoints and output",
}
"""Kinds of setting, and the ``--help`` group each is listed in. ``data``, ``objective``, ``optimisation``,
``selection`` and ``run`` only shape training: a training-free baseline does not depend on them (``evaluation``
does: it says what is measured)."""

TRAIN_PARTS = ("all", "head", "head+embeddings")
if TYPE_CHECKING:
    ObjectiveName = str
else:
    # The registry's names as a Literal, so that --objective's choices, validation and the docs table read them
    # like every other setting's; a type checker cannot evaluate it, and sees a str.
    ObjectiveName = Literal[OBJECTIVE_NAMES]
LR_SCHEDULERS = {"linear": "linear", "constant": "constant_with_warmup", "cosine": "cosine"}
"""``--lr-scheduler`` names and the transformers scheduler each one selects (after the warm-up)."""


MAX_CHANNELS = 16_384
"""CNN filters per window size: the head's weights grow with hidden size x filters x 3 windows."""
MAX_EPOCHS = 10_000.0
"""Passes over the corpus: far beyond any useful run; a pass over a one-sentence-per-batch corpus is one step."""
MAX_CHECKPOINTS = 1_000
"""Complete checkpoints kept: each is a full copy of the model and optimizer on disk."""


DEFAULT: Any = object()
"""``before`` of a setting whose default never changed."""


def setting(
    default: Any,
    help: str,
    kind: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    below: float | None = None,
    maximum: float | None = None,
    trajectory: bool = True,
    flag: str | None = None,
    aliases: tuple[str, ...] = (),
    cli: bool = True,
    note: str = "",
    before: Any = DEFAULT,
) -> Any:
    """A :class:`TrainConfig` field with everything its views need.

    Args:
        default: the default value (a list default is copied per instance).
        help: one sentence for ``--help`` and the docs; the default is added by the formatter, not here.
        kind: one of :data:`KINDS`.
        minimum, positive, below, maximum: bounds checked when the flag is parsed, by :func:`validate` and by the
            experiment files' checks (``minimum`` and ``maximum`` inclusive, ``below`` exclusive). A whole number
            and a float that sizes memory or time declares a ``maximum`` (a test checks that every one does); every
            float must be finite.
        trajectory: whether the value changes the training trajectory, so that a run resumes only with the same one.
        flag: the command-line flag when it is not ``--field-name`` (``--no-progress`` for ``show_progress``).
        aliases: other spellings of the same flag (``-o``; ``--corpus``, the name before ``--input`` was shared by
            every command that reads texts).
        cli: False for settings only the Python API sets.
        note: where the released code or the paper differ, for the docs table.
        before: how runs made before this setting existed behaved, when that is not ``default`` (a default that
            changed): the experiment runner reads a stored run without the setting as this value.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown setting kind {kind!r}")
    metadata = {"help": help, "kind": kind, "minimum": minimum, "positive": positive, "below": below,
                "maximum": maximum, "trajectory": trajectory, "flag": flag, "aliases": aliases, "cli": cli,
                "note": note, "before": default if before is DEFAULT else before}  # fmt: skip
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Settings of a training run; defaults follow the released IS-BERT code unless a note says otherwise.

    Each field's ``metadata`` holds its help text, kind and bounds (see :func:`setting` and docs/training.md).
    """

    # --- data
    model: str = setting("offline-minilm", "backbone: Hugging Face id, local folder, 'offline-minilm', "
                         "'offline-glove', or a saved isbert model to continue", "model")  # fmt: skip
    corpus: list[str] = setting([], f"the training sentences: {INPUT_HELP}", "data", trajectory=False,
                                flag="--input", aliases=("-i", "--corpus"))  # fmt: skip
    text_field: str = setting("text", READER_HELP["text_field"], "data")
    column: str = setting("text", READER_HELP["column"], "data")
    encoding_errors: Literal["strict", "replace", "skip"] = setting("strict", READER_HELP["encoding_errors"], "data")
    dedup: bool = setting(False, "keep only the first occurrence of each sentence (memory ~ distinct sentences)",
                          "data")  # fmt: skip
    # --- model
    max_seq_length: int = setting(128, "tokens per sentence; longer ones are truncated", "model", minimum=1,
                                  maximum=MAX_SEQ_LENGTH,
                                  note="released: 128")  # fmt: skip
    encoder_layers: int | None = setting(None, f"{ENCODER_LAYERS_TEXT} (default: all)", "model", minimum=0,
                                         maximum=MAX_LAYERS)  # fmt: skip
    # the seed draws the head's initial weights, so an untrained baseline depends on it too
    seed: int = setting(42, "seed for weights, data order, dropout and the held-out slice", "model",
                        minimum=0, maximum=MAX_SEED, note="released: not seeded")  # fmt: skip
    activation: Literal["none", "relu"] = setting("none", "CNN activation: none (released code) or relu (paper)",
                                                  "head", note="released: none; **paper: ReLU**")  # fmt: skip
    out_channels: int = setting(256, "CNN filters per window size", "head", minimum=1, maximum=MAX_CHANNELS,
                           note="paper: 256")  # fmt: skip
    include_special_tokens: bool = setting(True, "count [CLS]/[SEP] as local tokens in the pooling and the loss "
                                           "(they feed the windows either way)", "head",
                                           note="released: counted")  # fmt: skip
    word_weights: Literal["none", "sif-pool", "sif-input"] = setting(
        "none", "SIF word weights a/(a+p(w)) (Arora et al., 2017), p(w) counted on --input with the model's tokenizer "
        "(no labels; a backbone without context: word vectors or --encoder-layers 0): sif-pool weights the local "
        "features that the sentence vector averages and the loss scores; sif-input weights the token vectors the CNN "
        "reads", "head", note="not in the paper")  # fmt: skip
    sif_a: float = setting(1e-3, "SIF's a for --word-weights (the paper's range: 1e-3 to 1e-4)", "head", positive=True)
    sif_probabilities: Literal["corpus", "zipf"] = setting(
        "corpus", "p(w) for --word-weights: counted on --input, or from the word's rank in a frequency-sorted "
        "word-vector vocabulary (zipf: GloVe's)", "head")  # fmt: skip
    objective: ObjectiveName = setting(OBJECTIVE_NAMES[0], objective_help(), "head")
    # --- objective
    estimator: Literal["jsd", "infonce", "dv"] = setting("jsd", "mutual-information estimator", "objective",
                                                         note="paper and released: jsd")  # fmt: skip
    critic: Literal["dot", "cosine"] = setting("dot", "IS critic: dot product (paper) or cosine / --temperature",
                                               "objective")  # fmt: skip
    temperature: float = setting(1.0, "temperature of the cosine critic", "objective", positive=True)
    exclude_radius: int | None = setting(None, "score each token against the mean of its sentence's local features "
                                         "more than R positions away (0 = all but itself) instead of its own "
                                         "sentence vector; default the paper's positives", "objective",
                                         minimum=0, maximum=MAX_SEQ_LENGTH)  # fmt: skip
    simcse_temperature: float = setting(0.05, "temperature of the SimCSE term", "objective", positive=True)
    anchor: Literal["none", "distill", "l2sp"] = setting(
        "none", "keep a tuned encoder near its start: distill (relational distillation toward the frozen starting "
        "model) or l2sp (distance to the initial weights), weighted by --anchor-weight", "objective")  # fmt: skip
    anchor_weight: float = setting(0.0, "weight of --anchor (0 = off)", "objective", minimum=0)
    # --- optimisation
    max_steps: int | None = setting(None, "stop after N steps (overrides --epochs)", "optimisation", minimum=1,
                                   maximum=MAX_STEPS)  # fmt: skip
    epochs: float = setting(1.0, "passes over the corpus", "optimisation", positive=True, maximum=MAX_EPOCHS,
                            note="released: 1")  # fmt: skip
    batch_size: int = setting(32, "sentences per step and device; the others of a batch are the negatives",
                              "optimisation", minimum=2, maximum=MAX_BATCH,
                              note="released: 32")  # fmt: skip
    lr: float = setting(2e-6, "AdamW peak learning rate", "optimisation", positive=True,
                        note="released: 2e-6, the fork's fit() default (its first commit had 5e-6: "
                        "docs/paper.md), with correct_bias=False")  # fmt: skip
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and LayerNorm)", "optimisation",
                                  minimum=0, note="released: same")  # fmt: skip
    adam_epsilon: float = setting(1e-7, "AdamW epsilon", "optimisation", positive=True,
                                  note="released: 1e-7 (its first commit had 1e-6)")  # fmt: skip
    warmup_ratio: float = setting(0.1, "linear warm-up over this fraction of the steps, then --lr-scheduler",
                                  "optimisation", minimum=0, below=1, note="released: 0.1")  # fmt: skip
    lr_scheduler: Literal["linear", "constant", "cosine"] = setting("linear", "learning-rate schedule after the "
                                                                    "warm-up", "optimisation",
                                                                    note="released: linear")  # fmt: skip
    max_grad_norm: float = setting(1.0, "gradient clipping", "optimisation", positive=True, note="released: 1")
    train_parts: Literal["all", "head", "head+embeddings"] = setting(
        "all", "what learns: everything, the CNN only (encoder frozen), or the CNN and the encoder's embedding layer",
        "optimisation")  # fmt: skip
    batching: Literal["random", "length"] = setting(
        "length", "length: sentences of similar token length batched together (shuffled pools sorted by length, "
        "batches shuffled), padded to nearly their own length; random: any sentences together, padded to the longest. "
        "It changes which sentences are each other's negatives", "optimisation", before="random",
        note="released: random; **isbert: length**, 2x faster, quality measured in docs/training.md")  # fmt: skip
    precision: Literal["auto", "fp32", "bf16", "fp16"] = setting(
        "auto", "auto = bf16 on CPUs with native bf16 (AVX512-BF16, AMX), fp32 on other CPUs and on GPUs (where bf16 "
        "was slower at batch 32-64); bf16/fp16 = autocast, weights and optimizer stay fp32", "optimisation",
        note="released: optional apex/AMP fp16")  # fmt: skip
    # --- selection
    dev: Literal["none", "stsb"] = setting("none", "stsb: labeled STS Benchmark dev Spearman at every evaluation "
                                           "(uses labels)", "evaluation", trajectory=False,
                                           note="released: STSb dev, always")  # fmt: skip
    data_dir: str | None = setting(None, f"{DATA_DIR_TEXT} (read for --dev stsb; default: $ISBERT_DATA_DIR)",
                                   "selection",
                                   trajectory=False)  # fmt: skip
    select: Literal["stsb", "label-free"] | None = setting(None, "criterion for the saved model (default: stsb with "
                                                           "--dev stsb, else label-free)", "selection",
                                                           trajectory=False)  # fmt: skip
    heldout_size: int | None = setting(None, "held-out corpus sentences for the label-free criterion (default 1% in "
                                       "16..1000; 0 = off)", "selection", minimum=0,
                                       maximum=MAX_SAMPLE)  # fmt: skip
    eval_steps: int | None = setting(None, "evaluate (and checkpoint) every N steps, plus step 0 and the last step; "
                                     "default: about five evaluations per run (ceil(total steps / 5))", "selection",
                                     minimum=1, maximum=MAX_STEPS, trajectory=False,
                                     note="released: every 1000 steps, no step-0 evaluation")  # fmt: skip
    eval_batch_size: int = setting(64, "batch size for evaluation", "selection", minimum=1, maximum=MAX_BATCH,
                                  trajectory=False)  # fmt: skip
    # --- run
    output: str = setting("isbert-output", "run folder; the selected model is saved in it", "run", trajectory=False,
                          aliases=("-o",))  # fmt: skip
    save_steps: int | None = setting(None, "checkpoint every N steps (default: --eval-steps)", "run", minimum=1,
                                     maximum=MAX_STEPS, trajectory=False)  # fmt: skip
    keep_checkpoints: int = setting(2, "complete checkpoints left when the run ends (the best model is kept apart); "
                                    "0 = none: they are still written during training, so Ctrl-C or a crash can "
                                    "resume, and OUTPUT/checkpoints is removed once the model is saved", "run",
                                    minimum=0, maximum=MAX_CHECKPOINTS, trajectory=False)  # fmt: skip
    logging_steps: int = setting(10, "log the loss every N steps", "run", minimum=1, maximum=MAX_STEPS,
                                 trajectory=False)  # fmt: skip
    device: str | None = setting(None, DEVICE_HELP, "run",
                                 trajectory=False)  # fmt: skip
    resume: bool = setting(False, "continue the run in OUTPUT from its last complete checkpoint", "run",
                           trajectory=False)  # fmt: skip
    overwrite: bool = setting(False, "delete a previous run in OUTPUT first", "run", trajectory=False)
    show_progress: bool = setting(True, PROGRESS_HELP, "run", trajectory=False, flag="--no-progress")

    def trajectory(self) -> dict[str, Any]:
        """The settings a resumed run must share with the interrupted one."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["trajectory"]}


def setting_types() -> dict[str, Any]:
    """Each field's type, resolved (this module uses postponed annotations)."""
    hints = get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in fields(TrainConfig)}


def names_of_kind(*kinds: str) -> tuple[str, ...]:
    return tuple(f.name for f in fields(TrainConfig) if f.metadata["kind"] in kinds)


def choices(hint: Any) -> tuple[Any, ...]:
    """The allowed values of a ``Literal`` (or optional ``Literal``) type; empty for other types."""
    if get_origin(hint) in (Union, types.UnionType):
        values = tuple(value for arg in get_args(hint) for value in choices(arg))
        return (*values, None) if values and type(None) in get_args(hint) else values
    return get_args(hint) if get_origin(hint) is Literal else ()


def _base_type(hint: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        return next(arg for arg in get_args(hint) if arg is not type(None))
    return hint


def flag_of(name: str) -> str:
    spec = next(f for f in fields(TrainConfig) if f.name == name)
    return spec.metadata["flag"] or "--" + name.replace("_", "-")


# ------------------------------------------------------------------------------------------------- validation
def validate(config: TrainConfig) -> None:
    """Every setting against its declared values and bounds, then the combinations that cannot work."""
    hints = setting_types()
    for spec in fields(TrainConfig):
        _check_setting(spec.name, getattr(config, spec.name), hints[spec.name], spec.metadata)
    if not config.corpus:
        raise IsbertError(f"no corpus given ({flag_of('corpus')} FILE, FOLDER or 'PATTERN' ...)")
    objective = objective_of(config.objective)
    if objective.pooled and config.train_parts == "head":
        raise IsbertError(f"--objective {config.objective} has no head to train; use --train-parts all")
    if not objective.anchorable and config.anchor != "none" and config.anchor_weight > 0:
        anchorable = ", ".join(name for name in OBJECTIVE_NAMES if objective_of(name).anchorable)
        raise IsbertError(f"--anchor works with --objective {anchorable}, not {config.objective}")
    if config.select == "stsb" and config.dev != "stsb":
        raise IsbertError("--select stsb needs --dev stsb")


def _check_setting(name: str, value: Any, hint: Any, meta: Any) -> None:
    flag = flag_of(name)
    allowed = choices(hint)
    if allowed and value not in allowed:
        shown = ", ".join(str(a) for a in allowed if a is not None)
        raise IsbertError(f"{flag} must be one of {shown}, got {value!r}")
    if value is None or isinstance(value, (bool, str, list)):
        return
    problem = bound_problem(value, meta)
    if problem:
        raise IsbertError(f"{flag} {problem}")


def bound_problem(value: float, meta: Any) -> str | None:
    """What is wrong with a number against a setting's declared bounds ("must be at most 16,384, got 10**9")."""
    if meta["minimum"] is not None and not value >= meta["minimum"]:
        return f"must be at least {meta['minimum']}, got {value}"
    if meta["positive"] and not value > 0:
        return f"must be positive, got {value}"
    if meta["below"] is not None and not value < meta["below"]:
        return f"must be below {meta['below']}, got {value}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if meta["maximum"] is not None and value > meta["maximum"]:
        return f"must be at most {meta['maximum']:,}, got {value}"
    return None


def check_setting(name: str, value: Any) -> None:
    """One setting against its declared values and bounds (the experiment files check each key with this)."""
    spec = next(f for f in fields(TrainConfig) if f.name == name)
    _check_setting(name, value, setting_types()[name], spec.metadata)


# -------------------------------------------------------------------------------------------- command line
class DefaultsOnceFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help once, and only where a default means something."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet = action.required or action.default in (None, False, [], argparse.SUPPRESS)
        if quiet or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return text
        return f"{text} (default: %(default)s)"


def _argument_options(spec: Any, hint: Any) -> dict[str, Any]:
    meta, base = spec.metadata, _base_type(hint)
    options: dict[str, Any] = {"dest": spec.name, "help": meta["help"].replace("%", "%%")}
    if base is bool:
        if meta["flag"]:  # an inverted switch: --no-progress clears show_progress
            return {**options, "action": "store_false" if spec.default else "store_true"}
        if spec.default:
            return {**options, "action": argparse.BooleanOptionalAction, "default": True}
        return {**options, "action": "store_true"}
    options["default"] = None if spec.default is MISSING else spec.default
    if choices(hint):
        options["choices"] = [c for c in choices(hint) if c is not None]
    elif base in (int, float):
        options["type"] = _parser_of(base, meta)
    if get_origin(base) is list:
        options.update(nargs="+", action="extend", required=True, metavar="PATH", default=None)
    return options


def _parser_of(base: type, meta: Any) -> Any:
    """The flag's argparse type: the declared bounds, checked when the command line is parsed."""

    def parse(text: str) -> Any:
        try:
            value = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if base is int else 'a number'}, "
                                             f"got {text!r}") from None  # fmt: skip
        problem = bound_problem(value, meta)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = base.__name__
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per command-line setting, grouped by kind in ``--help``."""
    hints = setting_types()
    groups: dict[str, Any] = {}
    for spec in fields(TrainConfig):
        if not spec.metadata["cli"]:
            continue
        title = KINDS[spec.metadata["kind"]]
        group = groups.setdefault(title, parser.add_argument_group(title))
        options = _argument_options(spec, hints[spec.name])
        if spec.name == "output":
            options.update(required=True, default=None)
        group.add_argument(flag_of(spec.name), *spec.metadata["aliases"], **options)


def from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{spec.name: getattr(args, spec.name) for spec in fields(TrainConfig) if spec.metadata["cli"]})


# ---------------------------------------------------------------------------------------------------- docs
def settings_table() -> str:
    """The Markdown table of every setting, as docs/training.md shows it (a test keeps the two equal)."""
    rows = ["| flag | default | kind | meaning | released code / paper |", "|---|---|---|---|---|"]
    for spec in fields(TrainConfig):
        # a field without a default has a factory (mypy cannot tie the two together)
        default = cast(Callable[[], Any], spec.default_factory)() if spec.default is MISSING else spec.default
        shown = "required" if spec.name in ("corpus", "output") else f"`{default}`"
        meta = spec.metadata
        flags = f"`{flag_of(spec.name)}`" + "".join(f", `{alias}`" for alias in meta["aliases"])
        meaning = meta["help"].replace("*", r"\*")  # glob examples, not emphasis
        rows.append(f"| {flags} | {shown} | {meta['kind']} | {meaning} | {meta['note']} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m isbert.training.config: the table for docs/training.md
    print(settings_table(), end="")
