"""Experiment files (TOML): one file = one experiment = a list of runs over shared training defaults.

```toml
[experiment]
name = "weak-backbone"        # optional, default: the file's stem
description = "free text"     # shown above the results table
budget_minutes = 40           # the stated CPU budget of the whole file
tasks = "sts"                 # isbert.evaluation.evaluate tasks ("sts", "all", a list)
seeds = [42]                  # each run is repeated for each seed
tradeoff_task = "STSBenchmark"  # optional: also plot this task's score against the STS average
paper_tables = true           # optional: also write the paper's STS and transfer tables with the runs beside them

[defaults]                    # isbert.training.TrainConfig fields shared by all runs
model = "offline-minilm"
corpus = ["{data}/unlabeled/nli_sentences.snli_dev_test.txt"]

[[run]]
name = "mean-pooling"
baseline = "mean"             # mean | cls | first-last-mean | whitening | model2vec | sif | sif-zipf | usif |
                              # abtt | sif-abtt | untrained: no training

[[run]]
name = "sif-a1e-4"
baseline = "sif"              # SIF fitted on the run's corpus
sif = { a = 1e-4, components = 1 }   # optional: the SIF fit's a and common components (sif*, usif, posthoc)

[[run]]
name = "is-relu"
activation = "relu"           # any other key overrides [defaults]
note = "free text shown below the table"
posthoc = "sif"               # optional: also evaluate the trained model with SIF added (its own row, is+posthoc-sif)
```

Everything is checked when the file is read, so a typo fails before hours of training, with the file, the run and
the key in the message.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
import types
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from isbert.cli_types import MAX_COMPONENTS, MAX_SEED
from isbert.errors import IsbertError, brief, some_names
from isbert.objectives import NAMES as OBJECTIVE_NAMES
from isbert.objectives import objective as objective_of
from isbert.sif import NAMED_BASELINES, SifSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_SEEDS = 1_000
"""Seeds per experiment: each one is a full run of every [[run]]."""
MAX_BUDGET_MINUTES = 10_080
"""``budget_minutes``: one week; the budget bounds a run's time, so it must be finite itself."""
DATA_PLACEHOLDER = "{data}"
"""Expands to the data directory (``--data-dir``, else ``$ISBERT_DATA_DIR``) in string settings."""
TASK_CORPUS_PREFIX = "task:"
"""``corpus = ["task:stsb-train"]``: the distinct sentences of a task's training split, labels dropped (see
:data:`isbert.evaluation.readers.TASK_CORPORA`), written once to ``<runs dir>/corpora/``."""
POOLING_BASELINES = ("mean", "cls", "first-last-mean")
SIF_BASELINES = tuple(NAMED_BASELINES)
"""SIF, SIF with Zipf probabilities, uSIF, all-but-the-top and SIF on ABTT vectors (:data:`isbert.sif.NAMED_BASELINES`),
on a backbone without context (word vectors, or ``encoder_layers = 0``)."""
CORPUS_BASELINES = tuple(name for name, settings in NAMED_BASELINES.items() if settings.weighted)
"""Baselines fitted on the run's ``corpus`` (its word probabilities and common directions): the corpus and how it is
read are part of what they mean."""
FIXED_BASELINES = (*POOLING_BASELINES, "whitening", "model2vec", *SIF_BASELINES)
"""Training-free baselines that neither have a head nor depend on the seed: evaluated once. ``whitening`` is mean
pooling + BERT-whitening fitted on the data folder's unlabeled SNLI sentences; ``model2vec`` the static distillation
of the ``model`` folder as it is (``encoder_layers`` does not apply: every token passes the whole encoder once); the
SIF family is fitted on the run's ``corpus`` (ABTT alone needs none)."""
BASELINES = (*FIXED_BASELINES, "untrained")
POSTHOC = ("sif", "sif-zipf")
"""``posthoc = "sif"`` on a trained run: after training, SIF weights and common-component removal are added to each
selected model (:func:`isbert.sif_model.add_sif`, fitted on the run's corpus) and evaluated too, reported as its own
row (run ``<name>+posthoc-sif``, method ``<method>+posthoc-sif``)."""
SIF_OPTIONS = ("a", "components")
"""Keys of a run's ``sif = { a = 1e-4, components = 1 }`` table (SIF-family baselines and ``posthoc``)."""
RUNNER_KEYS = ("output", "resume", "overwrite", "seed", "show_progress", "data_dir", "select")
"""TrainConfig fields the runner sets itself: seeds come from ``seeds``, the data directory from the command line,
the selection from ``dev``; the rest are per-invocation mechanics."""
RUN_KEYS = ("name", "baseline", "note", "posthoc", "sif")
MAX_EXPERIMENT_BYTES = 1 << 20
"""The largest experiment file read: 1 MiB (the largest in experiments/ is 13 kB). Reading stops there, so a huge
file is one line, not a parse of all of it held in memory (TOML has no records to cap one by one)."""
EXPERIMENT_KEYS = ("name", "description", "budget_minutes", "tasks", "seeds", "tradeoff_task", "paper_tables")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # fullmatch: `$` would let a final newline in
MAX_NAME = 100
"""The longest experiment or run name: it names a folder (file systems allow 255 bytes), and reports quote it."""
TARGET_LABEL = "target"
"""The ``corpus`` label of a run trained on the evaluation's own test sentences (the target-domain setting)."""
GENERAL_LABEL = "general"
"""The ``corpus`` label of a run trained on the experiment's own unlabeled corpus (what target runs are compared to)."""


@dataclass(frozen=True)
class RunSpec:
    """One ``[[run]]``: its own keys (``overrides``) on top of ``[defaults]``, or a training-free ``baseline``."""

    name: str
    overrides: dict[str, Any]
    baseline: str | None = None
    note: str | None = None
    posthoc: str | None = None
    """A method added after training (:data:`POSTHOC`), evaluated as a second row of this run."""
    sif: dict[str, Any] = field(default_factory=dict)
    """The run's ``sif`` table: ``a`` and ``components`` of the SIF fit (SIF-family baselines, ``posthoc``)."""

    @property
    def seeded(self) -> bool:
        """Pooling, whitening, model2vec and SIF-family baselines are deterministic: evaluated once, not per seed."""
        return self.baseline not in FIXED_BASELINES

    def sif_settings(self) -> SifSettings:
        """What the SIF fit of this run is (its SIF-family baseline, or plain SIF for ``posthoc``), with ``sif``."""
        return NAMED_BASELINES[self.baseline or self.posthoc or "sif"].with_options(**self.sif)

    def method(self, settings: dict[str, Any]) -> str:
        """The method's name in the results (``mean``, ``whitening``, ``sif``, ``is``, ``simcse``, ``is+sif-pool``
        for SIF weights inside training, ...)."""
        if self.baseline is not None:
            return self.baseline
        objective = str(settings.get("objective", OBJECTIVE_NAMES[0]))
        weights = settings.get("word_weights", "none")
        return objective if weights == "none" else f"{objective}+{weights}"

    def differs(self) -> dict[str, Any]:
        """What sets this run apart from ``[defaults]``, for the table."""
        extra = {key: value for key, value in (("posthoc", self.posthoc), ("sif", self.sif)) if value}
        return {**({"baseline": self.baseline} if self.baseline else {}), **extra, **self.overrides}


@dataclass(frozen=True)
class Experiment:
    """A parsed, checked experiment file."""

    path: Path
    name: str
    description: str
    budget_minutes: float | None
    tasks: list[str]
    seeds: list[int]
    defaults: dict[str, Any]
    runs: list[RunSpec]
    tradeoff_task: str | None = None
    """Draw ``<name>_tradeoff.png``: this task's score against the STS average, one point per run and selection."""
    paper_tables: bool = False
    """Add the paper's STS and transfer tables (its IS-BERT-NLI row) with every run's rows beside it."""

    def run(self, name: str) -> RunSpec:
        for spec in self.runs:
            if spec.name == name:
                return spec
        raise IsbertError(f"{self.path}: no run named '{name}'; runs: {', '.join(r.name for r in self.runs)}")

    def device(self, spec: RunSpec) -> str | None:
        """The file's ``device`` setting (``--device`` overrides it); not part of what a run means."""
        value = {**self.defaults, **spec.overrides}.get("device")
        return str(value) if value is not None else None

    def labels(self, spec: RunSpec) -> dict[str, str]:
        """``method``, ``backbone`` and ``corpus`` (``general`` or ``target``: the STS test sentences) of a run."""
        from isbert.evaluation.readers import TARGET_CORPUS

        merged = {**self.defaults, **spec.overrides}
        backbone = str(merged.get("model", "offline-minilm"))
        if spec.baseline == "model2vec":
            backbone += " (distilled)"
        elif merged.get("encoder_layers") is not None:
            backbone += f" ({merged['encoder_layers']} layers)"
        target = any(c == TASK_CORPUS_PREFIX + TARGET_CORPUS for c in merged.get("corpus", []))
        reads_corpus = spec.baseline is None or spec.baseline in CORPUS_BASELINES
        corpus = TARGET_LABEL if reads_corpus and target else GENERAL_LABEL if reads_corpus else "-"
        return {"method": spec.method(merged), "backbone": backbone, "corpus": corpus}

    def not_applicable(self, spec: RunSpec) -> str | None:
        """Why a run cannot run on its backbone (an objective that needs transformer layers without them, model2vec
        of word vectors)."""
        merged = {**self.defaults, **spec.overrides}
        model = str(merged.get("model", "offline-minilm"))
        if spec.baseline == "model2vec":
            from isbert.evaluation.distilled import not_applicable as model2vec_not_applicable

            return model2vec_not_applicable(model)
        if spec.baseline in SIF_BASELINES:
            from isbert.sif_model import context_free_reason

            return context_free_reason(model, merged.get("encoder_layers"))
        if spec.baseline is None:
            trained = objective_of(str(merged.get("objective", OBJECTIVE_NAMES[0])))
            return trained.not_applicable(model, merged.get("encoder_layers"))
        return None

    def seeds_of(self, spec: RunSpec) -> list[int | None]:
        return list(self.seeds) if spec.seeded else [None]

    def portable_settings(self, spec: RunSpec) -> dict[str, Any]:
        """``[defaults]`` + the run's keys + TrainConfig's defaults, with paths as written (``{data}`` kept):
        what a run means, independent of the machine, so stored results stay valid when the data moves."""
        from isbert.training.config import TrainConfig
        from isbert.training.selection import default_criterion

        merged = {**self.defaults, **spec.overrides}
        # The runner reports both selections, so it always scores STSb dev unless the file turns it off.
        merged["dev"] = "none" if merged.get("dev") == "none" else "stsb"
        # No dev set and no held-out split: nothing to select on, the last step is kept (the fully unsupervised number).
        no_selection = merged["dev"] == "none" and merged.get("heldout_size") == 0
        merged["select"] = None if no_selection else default_criterion(merged["dev"])
        merged["data_dir"] = DATA_PLACEHOLDER
        settings = {f.name: getattr(TrainConfig(**merged), f.name) for f in fields(TrainConfig)}
        for key in ("output", "resume", "overwrite", "show_progress", "device"):  # per invocation, not per run
            settings.pop(key, None)
        return settings

    def resolve_paths(self, settings: dict[str, Any], data_dir: Path) -> dict[str, Any]:
        """Expand ``{data}`` and make relative corpus paths relative to the experiment file's folder."""
        data = str(data_dir)
        resolved: dict[str, Any] = {}
        for key, value in settings.items():
            if isinstance(value, str):
                value = value.replace(DATA_PLACEHOLDER, data)
            elif isinstance(value, list):
                value = [v.replace(DATA_PLACEHOLDER, data) if isinstance(v, str) else v for v in value]
            resolved[key] = value
        base = self.path.parent
        resolved["corpus"] = [
            str(Path(raw.replace(DATA_PLACEHOLDER, data)).expanduser())
            if DATA_PLACEHOLDER in raw or raw.startswith(TASK_CORPUS_PREFIX) or Path(raw).expanduser().is_absolute()
            else str((base / raw).resolve())
            for raw in settings.get("corpus", [])
        ]
        return resolved


@cache
def train_config_types() -> dict[str, Any]:
    """TrainConfig's field types, resolved (the module uses postponed annotations)."""
    from isbert.training.config import setting_types

    return setting_types()


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(hint) if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if origin is list:
        return f"a list of {_describe(get_args(hint)[0]) if get_args(hint) else 'values'}"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _convert(value: Any, hint: Any) -> tuple[bool, Any]:
    """(matches, value as the field wants it): TOML integers are accepted where a float is expected."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in get_args(hint):
            ok, converted = _convert(value, option)
            if ok:
                return True, converted
        return False, None
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(hint)), value
    if origin is list:
        if not isinstance(value, list):
            return False, None
        (item,) = get_args(hint) or (Any,)
        converted = [_convert(v, item) for v in value]
        return all(ok for ok, _ in converted), [v for _, v in converted]
    if hint is type(None):
        return False, None  # TOML has no null: leaving a key out keeps TrainConfig's default
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if hint is str:
        return isinstance(value, str), value
    return True, value  # a type this checker does not know: TrainConfig / train() check it


def _check_settings(table: dict[str, Any], where: str) -> dict[str, Any]:
    from isbert.training.config import check_setting

    types_ = train_config_types()
    checked = {}
    for key, value in table.items():
        if key in RUNNER_KEYS:
            why = "seeds come from [experiment] seeds" if key == "seed" else "the runner sets it"
            raise IsbertError(f"{where}: key '{key}' cannot be set here ({why})")  # a known name: short
        if key not in types_:
            allowed = [k for k in types_ if k not in RUNNER_KEYS]
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise IsbertError(
                f"{where}: unknown key '{brief(key)}' ({hint}valid: TrainConfig fields {', '.join(allowed)})"
            )
        ok, converted = _convert(value, types_[key])
        if not ok:
            raise IsbertError(f"{where}: key '{key}' must be {_describe(types_[key])}, got {brief(repr(value))}")
        try:
            check_setting(key, converted)  # the bounds TrainConfig declares, flags and files alike
        except IsbertError as error:
            raise IsbertError(f"{where}: key '{key}': {error}") from None
        checked[key] = converted
    return checked


def _table(document: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, dict):
        raise IsbertError(f"{where}: [{key}] must be a table")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME or not _SAFE_NAME.fullmatch(value):
        raise IsbertError(
            f"{where}: name must be a non-empty string of at most {MAX_NAME} letters, digits, '.', '_', '+' and '-' "
            f"(it names a folder), got {brief(repr(value))}"
        )
    return value


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Read and check an experiment file; every problem is an IsbertError naming the file (and run and key)."""
    path = Path(path)
    document = _read_document(path)
    head = _table(document, "experiment", str(path))
    name, description, budget, tasks, seeds, tradeoff = _read_head(head, path)
    paper_tables = head.get("paper_tables", False)
    if not isinstance(paper_tables, bool):
        raise IsbertError(f"{path}: [experiment]: key 'paper_tables' must be true or false, got {paper_tables!r}")
    defaults = _check_settings(_table(document, "defaults", str(path)), f"{path}: [defaults]")
    runs = _read_runs(document, path)
    experiment = Experiment(
        path, name, description, float(budget) if budget else None, tasks, seeds, defaults, runs, tradeoff, paper_tables
    )
    for spec in runs:  # TrainConfig itself may refuse a combination; say which run
        try:
            settings = experiment.portable_settings(spec)
        except (TypeError, ValueError) as error:
            raise IsbertError(f"{path}: run '{spec.name}': {error}") from None
        if (spec.baseline is None or spec.baseline in CORPUS_BASELINES) and not settings.get("corpus"):
            raise IsbertError(f"{path}: run '{spec.name}': no corpus (set corpus in [defaults] or in the run)")
        if spec.posthoc:
            _check_posthoc(experiment, spec)
    return experiment


def _check_posthoc(experiment: Experiment, spec: RunSpec) -> None:
    """SIF after training needs a model whose token vectors are context-free (on a model that weights its tokens
    already, ``word_weights``, it removes the common directions only)."""
    from isbert.sif_model import context_free_reason

    merged = {**experiment.defaults, **spec.overrides}
    where = f"{experiment.path}: run '{spec.name}': posthoc = {spec.posthoc!r}"
    reason = context_free_reason(str(merged.get("model", "offline-minilm")), merged.get("encoder_layers"))
    if reason:
        raise IsbertError(f"{where}: {reason}")


def _read_document(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise IsbertError(f"{path}: experiment file not found")
    with path.open("rb") as handle:
        data = handle.read(MAX_EXPERIMENT_BYTES + 1)
    if len(data) > MAX_EXPERIMENT_BYTES:
        raise IsbertError(f"{path}: larger than {MAX_EXPERIMENT_BYTES} bytes; not an experiment file")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise IsbertError(f"{path}: invalid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise IsbertError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    unknown = sorted(set(document) - {"experiment", "defaults", "run"})
    if unknown:
        raise IsbertError(f"{path}: unknown top-level key(s) {some_names(unknown)}; expected [experiment], "
                          "[defaults] and [[run]] tables")  # fmt: skip

    return document


def _read_head(head: dict[str, Any], path: Path) -> tuple[str, str, Any, list[str], list[int], str | None]:
    """The [experiment] table: name, description, budget, tasks, seeds and trade-off task, each checked."""
    from isbert.evaluation.tasks import canonical_task_names

    where = f"{path}: [experiment]"
    extra = sorted(set(head) - set(EXPERIMENT_KEYS))
    if extra:
        raise IsbertError(f"{where}: unknown key(s) {some_names(extra)}; valid: {', '.join(EXPERIMENT_KEYS)}")
    name = _name(head.get("name", path.stem), where)
    description = head.get("description", "")
    if not isinstance(description, str):
        raise IsbertError(f"{where}: key 'description' must be a string")
    budget = head.get("budget_minutes")
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= MAX_BUDGET_MINUTES
    ):
        raise IsbertError(f"{where}: key 'budget_minutes' must be a positive number up to {MAX_BUDGET_MINUTES:,}, "
                          f"got {budget!r}")  # fmt: skip
    tasks_spec = head.get("tasks", "sts")
    if not isinstance(tasks_spec, str) and not (
        isinstance(tasks_spec, list) and all(isinstance(t, str) for t in tasks_spec)
    ):
        raise IsbertError(f"{where}: key 'tasks' must be a string or a list of strings, got {tasks_spec!r}")
    try:
        tasks = canonical_task_names(tasks_spec)
    except IsbertError as error:
        raise IsbertError(f"{where}: key 'tasks': {error}") from None
    seeds = head.get("seeds", [42])
    if (
        not isinstance(seeds, list)
        or not seeds
        or len(seeds) > MAX_SEEDS
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise IsbertError(f"{where}: key 'seeds' must be a non-empty list of at most {MAX_SEEDS} distinct whole "
                          f"numbers from 0 to {MAX_SEED}, got {seeds!r}")  # fmt: skip

    tradeoff = head.get("tradeoff_task")
    if tradeoff is not None:
        try:
            tradeoff = canonical_task_names([tradeoff])[0] if isinstance(tradeoff, str) else None
        except IsbertError:
            tradeoff = None
        if tradeoff not in tasks:
            raise IsbertError(f"{where}: key 'tradeoff_task' must name one of the evaluated tasks ({', '.join(tasks)})")
    return name, description, budget, tasks, seeds, tradeoff


def _read_runs(document: dict[str, Any], path: Path) -> list[RunSpec]:
    """The [[run]] tables, each checked; run names are unique."""
    raw_runs = document.get("run", [])
    if not isinstance(raw_runs, list) or not all(isinstance(r, dict) for r in raw_runs):
        raise IsbertError(f"{path}: 'run' must be an array of tables ([[run]] entries)")
    if not raw_runs:
        raise IsbertError(f"{path}: no runs; add [[run]] tables")
    runs: list[RunSpec] = []
    for number, raw in enumerate(raw_runs, start=1):
        if "name" not in raw:
            raise IsbertError(f"{path}: run #{number} has no name")
        run_name = _name(raw["name"], f"{path}: run #{number}")
        where = f"{path}: run '{run_name}'"
        if any(r.name == run_name for r in runs):
            raise IsbertError(f"{where}: duplicate run name")
        baseline = raw.get("baseline")
        if baseline is not None and baseline not in BASELINES:
            raise IsbertError(f"{where}: key 'baseline' must be one of {', '.join(BASELINES)}, got {baseline!r}")
        note = raw.get("note")
        if note is not None and not isinstance(note, str):
            raise IsbertError(f"{where}: key 'note' must be a string")
        posthoc = _read_posthoc(raw, baseline, where)
        overrides = _check_settings({k: v for k, v in raw.items() if k not in RUN_KEYS}, where)
        spec = RunSpec(run_name, overrides, baseline, note, posthoc, _read_sif_options(raw, baseline, posthoc, where))
        runs.append(spec)

    return runs


def _read_posthoc(raw: dict[str, Any], baseline: str | None, where: str) -> str | None:
    posthoc = raw.get("posthoc")
    if posthoc is None:
        return None
    if posthoc not in POSTHOC:
        raise IsbertError(f"{where}: key 'posthoc' must be one of {', '.join(POSTHOC)}, got {posthoc!r}")
    if baseline is not None:
        raise IsbertError(f"{where}: key 'posthoc' applies to trained runs; a baseline has no training to follow")
    return str(posthoc)


def _read_sif_options(raw: dict[str, Any], baseline: str | None, posthoc: str | None, where: str) -> dict[str, Any]:
    """The run's ``sif`` table, checked against what its SIF fit accepts (see :meth:`SifSettings.with_options`)."""
    table = raw.get("sif")
    if table is None:
        return {}
    if baseline not in SIF_BASELINES and not posthoc:
        raise IsbertError(f"{where}: key 'sif' applies to the {', '.join(SIF_BASELINES)} baselines and to posthoc")
    if not isinstance(table, dict) or set(table) - set(SIF_OPTIONS):
        raise IsbertError(f"{where}: key 'sif' must be a table of {' and '.join(SIF_OPTIONS)}, got {table!r}")
    a, components = table.get("a"), table.get("components")
    if a is not None and (isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a < math.inf):
        raise IsbertError(f"{where}: sif.a must be a positive finite number, got {a!r}")
    if components is not None and (
        isinstance(components, bool) or not isinstance(components, int) or not 0 <= components <= MAX_COMPONENTS
    ):
        raise IsbertError(f"{where}: sif.components must be a whole number from 0 to {MAX_COMPONENTS}, "
                          f"got {components!r}")  # fmt: skip
    options: dict[str, Any] = {"a": float(a)} if a is not None else {}
    options.update({"components": components} if components is not None else {})
    try:
        NAMED_BASELINES[baseline or "sif"].with_options(**options)
    except IsbertError as error:
        raise IsbertError(f"{where}: key 'sif': {error}") from None
    return options
