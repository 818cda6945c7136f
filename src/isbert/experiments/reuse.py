"""Reuse published results: the runs behind a results table (``experiments/results/<name>.json``) put back into the
runs folder, so new rows can be added to an experiment without training its old rows again.

A published table keeps every run x seed's whole ``result.json`` (settings, hash, scores, history, machine). A job
takes a published result only when its settings are the same as the job's (the same test as a stored result in
its own folder), whichever experiment or run name published it; the copy says where it came from
(``reused_from``), and its machine, timings and version stay those of the run that measured it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from isbert.atomic import write_json_atomic
from isbert.errors import IsbertError

if TYPE_CHECKING:
    from isbert.experiments.jobs import Job

MAX_RESULTS_BYTES = 64 * 1024 * 1024
"""A results table of a few hundred runs with their histories is a few MB; anything far larger is not one."""


def published_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every run x seed result stored in one published results table; a file that is not one is a one-line error."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO planted at the name is never waited on
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise IsbertError(f"{path}: not a regular file: not a results table")
            data = handle.read(MAX_RESULTS_BYTES + 1)
    except OSError as error:
        raise IsbertError(f"{path}: cannot read the results table ({error.strerror or error})") from None
    if len(data) > MAX_RESULTS_BYTES:
        raise IsbertError(f"{path}: over {MAX_RESULTS_BYTES >> 20} MiB: not a results table")
    try:
        table = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise IsbertError(f"{path}: not a results table (invalid JSON: {error})") from None
    runs = table.get("runs") if isinstance(table, dict) else None
    if not isinstance(runs, list):
        raise IsbertError(f"{path}: not a results table (no 'runs' list); give an experiments/results/<name>.json")
    found = []
    for run in runs:
        results = run.get("results") if isinstance(run, dict) else None
        for result in (results or {}).values() if isinstance(results, dict) else ():
            if isinstance(result, dict) and isinstance(result.get("settings"), dict):
                found.append(result)
    return found


def reuse_published(
    jobs: Iterable[Job], paths: Iterable[str | os.PathLike[str]], log: Callable[[str], None] = print
) -> int:
    """Store, for each job with no result of its own, the first published result with the same settings; returns
    how many were stored."""
    candidates = [(str(path), result) for path in paths for result in published_results(path)]
    reused = 0
    for job in jobs:
        if job.stored() is not None:
            continue
        match = next(((path, r) for path, r in candidates if job.matches(r)), None)
        if match is None:
            continue
        path, result = match
        origin = {"file": path, "experiment": result.get("experiment"), "run": result.get("run")}
        copy = {**result, "experiment": job.experiment.name, "run": job.spec.name, "reused_from": origin}
        job.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(job.result_path, copy)
        log(f"{job.label}: reused the published result of {origin['experiment']}/{origin['run']} ({path})")
        reused += 1
    return reused


__all__ = ["MAX_RESULTS_BYTES", "published_results", "reuse_published"]
