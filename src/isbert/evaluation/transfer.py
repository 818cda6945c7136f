"""SentEval transfer tasks: frozen embeddings + scikit-learn logistic regression, accuracy x100.

``full=True`` follows SentEval's scikit-learn path (``usepytorch=False``, ``kfold=10``): the C grid
2^-2..2^3; MR/CR/SUBJ/MPQA by 10-fold CV with C chosen by an inner 10-fold CV on each training part;
SST-2 with C chosen on dev; TREC/MRPC with C chosen by 10-fold CV on train, then trained on all of train.
The fast default keeps the protocol but cuts the work about 30x: 5 outer folds, C from {2^-1, 2^1, 2^3}
chosen on one stratified 20% hold-out instead of an inner k-fold. Folds use SentEval's seed (1111) and
sentence order, so ``full`` is comparable to published SentEval numbers made with the sklearn classifier.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from isbert.evaluation.sts import check_finite
from isbert.evaluation.tasks import LabeledSplit, TransferTask


@dataclass(frozen=True)
class TransferConfig:
    """How the classifier is selected; see the module docstring for what ``full`` changes."""

    full: bool = False
    seed: int = 1111
    standardize: bool = False
    """Scale features to unit variance first (not in SentEval; helps unit-norm embeddings at small C)."""
    max_iter: int = 1000

    @property
    def kfold(self) -> int:
        return 10 if self.full else 5

    @property
    def grid(self) -> tuple[float, ...]:
        return tuple(2.0**t for t in range(-2, 4)) if self.full else (0.5, 2.0, 8.0)


def _classifier(c: float, config: TransferConfig):
    model = LogisticRegression(C=c, max_iter=config.max_iter, random_state=config.seed)
    return make_pipeline(StandardScaler(), model) if config.standardize else model


def _accuracy(c: float, x_train, y_train, x_test, y_test, config: TransferConfig) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _classifier(c, config).fit(x_train, y_train)
    return float(model.score(x_test, y_test))


def select_c(x: np.ndarray, y: np.ndarray, config: TransferConfig) -> tuple[float, float]:
    """C with the best mean validation accuracy (first of ties, as SentEval's argmax), and that accuracy."""
    if config.full:
        splits: Iterable = StratifiedKFold(config.kfold, shuffle=True, random_state=config.seed).split(x, y)
    else:
        splits = StratifiedShuffleSplit(1, test_size=0.2, random_state=config.seed).split(x, y)
    splits = list(splits)
    scores = [np.mean([_accuracy(c, x[tr], y[tr], x[va], y[va], config) for tr, va in splits]) for c in config.grid]
    best = int(np.argmax(scores))
    return config.grid[best], float(scores[best])


def cross_validate(x: np.ndarray, y: np.ndarray, config: TransferConfig) -> dict[str, object]:
    """SentEval's InnerKFoldClassifier: outer stratified k-fold, C selected inside each training part."""
    outer = StratifiedKFold(config.kfold, shuffle=True, random_state=config.seed)
    tests, devs, cs = [], [], []
    for train, test in outer.split(x, y):
        c, dev = select_c(x[train], y[train], config)
        tests.append(_accuracy(c, x[train], y[train], x[test], y[test], config))
        devs.append(dev)
        cs.append(c)
    return {
        "accuracy": 100.0 * float(np.mean(tests)),
        "dev_accuracy": 100.0 * float(np.mean(devs)),
        "C": cs,
        "folds": config.kfold,
        "n": len(y),
    }


def _features(split: LabeledSplit, embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Sentence embeddings, or SentEval's ``[|u-v|, u*v]`` for sentence pairs (MRPC)."""
    u = np.asarray(embed(split.texts), dtype=np.float64)
    check_finite(u)
    if split.texts_b is None:
        return u
    v = np.asarray(embed(split.texts_b), dtype=np.float64)
    check_finite(v)
    return np.hstack([np.abs(u - v), u * v])


def evaluate_transfer(
    task: TransferTask, embed: Callable[[list[str]], np.ndarray], config: TransferConfig | None = None
) -> dict[str, object]:
    """Accuracy x100 on one transfer task; ``embed`` maps sentences to (already computed) embedding rows."""
    config = config or TransferConfig()
    setting = "full" if config.full else "fast"
    if task.protocol == "cv":
        split = task.splits["all"]
        return {**cross_validate(_features(split, embed), split.labels, config), "setting": setting}
    train, test = task.splits["train"], task.splits["test"]
    x_train, x_test = _features(train, embed), _features(test, embed)
    if task.protocol == "dev":
        dev = task.splits["dev"]
        x_dev = _features(dev, embed)
        scores = [_accuracy(c, x_train, train.labels, x_dev, dev.labels, config) for c in config.grid]
        best = int(np.argmax(scores))
        c, dev_accuracy = config.grid[best], scores[best]
    else:
        c, dev_accuracy = select_c(x_train, train.labels, config)
    accuracy = _accuracy(c, x_train, train.labels, x_test, test.labels, config)
    return {
        "accuracy": 100.0 * accuracy,
        "dev_accuracy": 100.0 * dev_accuracy,
        "C": c,
        "n_train": len(train),
        "n_test": len(test),
        "setting": setting,
    }
