"""Every derived column of ``isbert eval``'s report, recomputed from the raw per-task numbers: the averages, the
``--compare`` delta (this run minus the baseline, signed) and the STS12-16 aggregations, each in its own column."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from isbert.evaluation.report import PAPER_STS, PAPER_TRANSFER, format_markdown
from isbert.evaluation.tasks import STS_SUBSETS, STS_TASKS, TRANSFER_TASKS

SCORES = st.floats(-100, 100, allow_nan=False).map(lambda x: round(x, 2))  # what the harness stores (2 decimals)


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """Each table of the Markdown report by title: its rows (header first), as lists of cells."""
    found: dict[str, list[list[str]]] = {}
    title = None
    for line in markdown.splitlines():
        if line.startswith("**") and line.endswith("**"):
            title, found[line.strip("*")] = line.strip("*"), []
        elif line.startswith("| ") and title is not None:
            found[title].append([cell.strip() for cell in line.strip("|").split("|")])
    return found


def row(table: list[list[str]], label: str) -> list[str]:
    matches = [cells for cells in table if cells[0] == label]
    assert len(matches) == 1, (label, table)
    return matches[0][1:]


def expect(values: list[float | None], signed: bool = False) -> list[str]:
    form = "+.2f" if signed else ".2f"
    cells = ["-" if v is None else format(v, form) for v in values]
    average = "-" if None in values else format(sum(values) / len(values), form)  # type: ignore[arg-type]
    return [*cells, average]


@st.composite
def runs(draw: st.DrawFn, tasks: tuple[str, ...], metric: str) -> dict:
    present = draw(st.lists(st.sampled_from(tasks), min_size=1, unique=True))
    run = {task: {metric: draw(SCORES)} for task in present}
    for task in set(present) & set(STS_SUBSETS):  # STS12-16 also carry their aggregations
        every = run[task][metric]
        run[task] |= {"all": every, "mean": every, "wmean": every, "subsets": {"x": {"spearman": every}}}
    return run


@given(ours=runs(STS_TASKS, "spearman"), theirs=runs(STS_TASKS, "spearman"))
def test_sts_rows_average_and_signed_delta(ours: dict, theirs: dict) -> None:
    ours, theirs = {"model": "mine", **ours}, {"model": "base", **theirs}
    table = tables(format_markdown(ours, theirs))["STS (cosine Spearman x100)"]
    mine = [ours[t]["spearman"] if t in ours else None for t in STS_TASKS]
    base = [theirs[t]["spearman"] if t in theirs else None for t in STS_TASKS]
    assert table[0] == ["Model", *STS_SUBSETS, "STSb", "SICK-R", "Avg."]
    assert row(table, "mine (this run)") == expect(mine)
    assert row(table, "base (--compare)") == expect(base)
    delta = [None if a is None or b is None else a - b for a, b in zip(mine, base, strict=True)]
    assert row(table, "delta") == expect(delta, signed=True)
    for name, values in PAPER_STS.items():
        assert row(table, f"{name} (paper)") == expect(list(values))


@given(ours=runs(TRANSFER_TASKS, "accuracy"))
def test_transfer_rows_and_average(ours: dict) -> None:
    table = tables(format_markdown(ours))["Transfer (accuracy x100)"]
    assert table[0] == ["Model", "MR", "CR", "SUBJ", "MPQA", "SST", "TREC", "MRPC", "Avg."]
    assert row(table, "model (this run)") == expect(
        [ours[t]["accuracy"] if t in ours else None for t in TRANSFER_TASKS]
    )
    for name, values in PAPER_TRANSFER.items():
        assert row(table, f"{name} (paper)") == expect(list(values))
    assert "STS (cosine Spearman x100)" not in tables(format_markdown(ours))


def test_a_known_delta_is_this_run_minus_the_baseline() -> None:
    ours = {"model": "a", "STSBenchmark": {"spearman": 80.0}, "SICK-R": {"spearman": 70.0}}
    theirs = {"model": "b", "STSBenchmark": {"spearman": 75.5}, "SICK-R": {"spearman": 71.0}}
    table = tables(format_markdown(ours, theirs))["STS (cosine Spearman x100)"]
    assert row(table, "delta")[-3:] == ["+4.50", "-1.00", "-"]  # no average over missing tasks


@given(aggregates=st.lists(st.tuples(SCORES, SCORES, SCORES), min_size=5, max_size=5))
def test_sts12_16_aggregations_each_in_their_column(aggregates: list[tuple[float, float, float]]) -> None:
    results = {}
    for task, (every, mean, wmean) in zip(STS_SUBSETS, aggregates, strict=True):
        subsets = {name: {"spearman": every - 1} for name in STS_SUBSETS[task]}
        results[task] = {"spearman": every, "all": every, "mean": mean, "wmean": wmean, "subsets": subsets}
    table = tables(format_markdown(results))["STS12-16 aggregations (Spearman x100)"]
    assert table[0] == ["Task", "all", "mean", "wmean", "sub-datasets"]
    for (task, names), (every, mean, wmean) in zip(STS_SUBSETS.items(), aggregates, strict=True):
        subs = ", ".join(f"{name} {every - 1:.2f}" for name in names)
        assert row(table, task) == [f"{every:.2f}", f"{mean:.2f}", f"{wmean:.2f}", subs]
