"""Local mirrors of SNLI 1.0 and MultiNLI 1.0 for tests: the real archives' layout (``snli_1.0/snli_1.0_train.jsonl``,
``multinli_1.0/multinli_1.0_train.jsonl``, dev/test splits, .txt twins, macOS leftovers), a few hundred sentences."""

from __future__ import annotations

import hashlib
import json
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

WORDS = "a man woman dog child plays runs sits on the in park street beach red small old young ball car".split()


@dataclass
class Mirror:
    folder: Path
    train_pairs: dict[str, list[tuple[str, str]]]
    """Per archive file name, its train pairs (sentence1, sentence2) as written."""
    dev_sentences: set[str]

    @property
    def url(self) -> str:
        return self.folder.as_uri()

    def sources_json(self, path: Path) -> Path:
        """A --sources file for the mirror, pinned to the mirror's own archives."""
        items = [
            {
                "name": name,
                "url": (self.folder / archive).as_uri(),
                "kind": "zip",
                "members": {f"{stem}/{stem}_train.jsonl": f"{stem}_train.jsonl"},
                "sha256": hashlib.sha256((self.folder / archive).read_bytes()).hexdigest(),
            }
            for name, archive, stem in (
                ("SNLI 1.0", "snli_1.0.zip", "snli_1.0"),
                ("MultiNLI 1.0", "multinli_1.0.zip", "multinli_1.0"),
            )
        ]
        path.write_text(json.dumps(items), encoding="utf-8")
        return path


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))).capitalize() + "."


def _record(rng: random.Random, premise: str, hypothesis: str, genre: str | None) -> dict[str, object]:
    label = rng.choice(["entailment", "neutral", "contradiction", "-"])  # "-": no gold label, still a sentence
    record: dict[str, object] = {
        "annotator_labels": [label],
        "gold_label": label,
        "pairID": f"{rng.randrange(10**6)}",
        "sentence1": premise,
        "sentence1_binary_parse": "( x )",
        "sentence1_parse": "(ROOT (S x))",
        "sentence2": hypothesis,
        "sentence2_binary_parse": "( y )",
        "sentence2_parse": "(ROOT (S y))",
    }
    if genre:
        record.update(genre=genre, promptID=f"{rng.randrange(10**6)}")
    return record


def _pairs(rng: random.Random, count: int) -> list[tuple[str, str]]:
    premises = [_sentence(rng) for _ in range(count // 3 + 1)]
    # Each premise is used three times, as in the real data; some hypotheses repeat, some carry odd whitespace.
    return [(premises[i // 3], _sentence(rng) + (" \t" if i % 17 == 0 else "")) for i in range(count)]


def write_archive(path: Path, stem: str, train: list[tuple[str, str]], rng: random.Random, genre: bool) -> set[str]:
    """One archive in the real layout; returns the sentences of its other splits (never in the corpus)."""
    others: set[str] = set()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem}/", "")
        splits = {"train": train, "dev_matched" if genre else "dev": _pairs(rng, 12)}
        if not genre:
            splits["test"] = _pairs(rng, 12)
        for split, pairs in splits.items():
            if split != "train":
                others |= {" ".join(s.split()) for pair in pairs for s in pair}
            lines = [json.dumps(_record(rng, a, b, "fiction" if genre else None)) for a, b in pairs]
            archive.writestr(f"{stem}/{stem}_{split}.jsonl", "\n".join(lines) + "\n")
            archive.writestr(f"{stem}/{stem}_{split}.txt", "gold_label\tsentence1\tsentence2\n")
        archive.writestr(f"{stem}/README.txt", "test mirror\n")
        archive.writestr(f"__MACOSX/{stem}/._{stem}_train.jsonl", b"\x00\x05\x16\x07")
    return others


def make_mirror(folder: Path, snli_pairs: int = 90, mnli_pairs: int = 60, seed: int = 0) -> Mirror:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    snli, mnli = _pairs(rng, snli_pairs), _pairs(rng, mnli_pairs)
    mnli[0] = snli[1]  # a sentence in both corpora is kept once
    dev = write_archive(folder / "snli_1.0.zip", "snli_1.0", snli, rng, genre=False)
    dev |= write_archive(folder / "multinli_1.0.zip", "multinli_1.0", mnli, rng, genre=True)
    train = {"snli_1.0.zip": snli, "multinli_1.0.zip": mnli}
    return Mirror(folder, train, dev - {" ".join(s.split()) for p in snli + mnli for s in p})


def expected_corpus(mirror: Mirror) -> list[str]:
    """Written independently of isbert: every sentence of both train splits, whitespace collapsed, first occurrence."""
    out: dict[str, None] = {}
    for archive in ("snli_1.0.zip", "multinli_1.0.zip"):
        for pair in mirror.train_pairs[archive]:
            for text in pair:
                if " ".join(text.split()):
                    out.setdefault(" ".join(text.split()))
    return list(out)
