"""The training-free baseline beside a finished run: on a backbone whose token vectors do not depend on the context,
SIF (Arora et al., 2017) fitted on the run's own corpus often beats training (docs/results.md), so a run with a
labeled dev set says how SIF does on the same dev pairs, and whether the saved model is beyond noise above it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from isbert.errors import IsbertError

if TYPE_CHECKING:
    from isbert.training.config import TrainConfig
    from isbert.training.selection.evaluators import StsbDevEvaluator


def training_free_line(config: TrainConfig, dev: StsbDevEvaluator, step: int | None) -> str | None:
    """One sentence comparing the saved model (evaluated at ``step``) with SIF on the run's backbone and corpus, or
    None when the backbone has context (SIF does not apply) or the saved step's scores are not in this process."""
    from isbert.evaluation.sts import spearman
    from isbert.evaluation.verdict import compare
    from isbert.sif import SifSettings
    from isbert.sif_model import context_free_reason, fit_baseline

    if step is None or step not in dev.similarities or context_free_reason(config.model, config.encoder_layers):
        return None
    zipf = config.model == "offline-glove"  # a frequency-sorted vocabulary: p(w) from ranks, our best GloVe row
    settings = SifSettings("sif", probabilities="zipf" if zipf else "corpus")
    reader: dict[str, Any] = {
        "text_field": config.text_field,
        "column": config.column,
        "encoding_errors": config.encoding_errors,
    }
    try:
        fitted = fit_baseline(config.model, config.corpus, settings, encoder_layers=config.encoder_layers, **reader)
    except IsbertError as error:  # e.g. no known word in the corpus: the run's result stands without the line
        return f"training-free baseline: SIF could not be fitted ({error})"
    baseline = dev.pair_similarities(fitted.model)
    layers = [] if config.encoder_layers is None else ["--encoder-layers", str(config.encoder_layers)]
    words = ["isbert baseline sif", config.model, *layers, *(["--probabilities", "zipf"] if zipf else [])]
    command = " ".join([*words, "-i", *config.corpus, "-o", "FOLDER"])
    outcome = compare({"STSb dev": (dev.similarities[step], dev.scores)}, {"STSb dev": (baseline, dev.scores)},
                      ("the saved model", "SIF"))  # fmt: skip
    head = f"training-free baseline: SIF on this backbone and corpus ({command}) scores "
    head += f"{spearman(baseline, dev.scores):.2f} on STSb dev"
    return head + (f"; {outcome.sentence().removeprefix('verdict: ')}" if outcome else "")
