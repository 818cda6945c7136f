"""``isbert experiment CONFIG ...``: run experiment files and write their results tables."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from isbert.cli_types import add_data_dir_argument, add_device_argument, add_progress_argument
from isbert.evaluation.tasks import ENV_VAR

if TYPE_CHECKING:
    from isbert.experiments.config import Experiment

RESUME_HINT = "run the same command again: finished runs are reused and this one resumes"

DESCRIPTION = f"""\
Run every [[run]] of each experiment file (TOML) for each seed, evaluate the models chosen by the labeled (STSb
dev) and the label-free criterion, and write RESULTS_DIR/<name>.md (one table row per run), <name>.json and
<name>_dev_curves.png. Each run x seed is stored in RUNS_DIR/<name>/<run>/seed-<seed>/result.json with a hash of
its settings: running the same file again reuses finished runs, redoes those whose settings changed and resumes an
interrupted one. Format (details: experiments/README.md):

  [experiment]
  name = "weak-backbone"          # default: the file's stem
  description = "shown above the table"
  budget_minutes = 40             # stated budget, printed beside the measured time
  tasks = "sts"                   # evaluation tasks ("sts", "all", a list)
  seeds = [42]

  [defaults]                      # isbert.training.TrainConfig fields for every run
  model = "offline-minilm"
  corpus = ["{{data}}/unlabeled/nli_sentences.snli_dev_test.txt"]   # {{data}} = the data directory
  max_steps = 500

  [[run]]
  name = "mean-pooling"
  baseline = "mean"               # no training: mean | cls | first-last-mean | whitening | model2vec | untrained

  [[run]]
  name = "is-relu"
  activation = "relu"             # other keys override [defaults]
  note = "shown below the table"

Relative corpus paths are relative to the file's folder; the data directory comes from --data-dir or
${ENV_VAR}."""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help (except an empty None/False), and the format example above kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from isbert.experiments.jobs import DEFAULT_RESULTS_DIR, DEFAULT_RUNS_DIR

    parser = subparsers.add_parser(
        "experiment",
        help="run experiment files (TOML: runs over shared training settings) and write their results tables",
        description=DESCRIPTION,
        formatter_class=_Formatter,
    )
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="experiment files (.toml)")
    add_data_dir_argument(parser, f"default: ${ENV_VAR}")
    parser.add_argument("--runs-dir", default=str(DEFAULT_RUNS_DIR), help="where each run x seed is stored")
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR), help="where the tables are written")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        default=None,
        help="run only these runs (the table still shows every run with a stored result)",
    )
    add_device_argument(parser, default="the experiment file's device, else the best available")
    parser.add_argument("--keep-models", action="store_true", help="keep the trained models (default: delete them)")
    parser.add_argument("--force", action="store_true", help="ignore stored results: run everything again")
    parser.add_argument(
        "--reuse-from",
        action="append",
        default=[],
        metavar="RESULTS_JSON",
        help="a published results table (experiments/results/<name>.json, of this or another experiment): runs with "
        "the same settings take its results instead of running (repeatable); the table says which were reused",
    )
    parser.add_argument("--list", action="store_true", help="list the runs and whether each has a stored result")
    add_progress_argument(parser)
    parser.set_defaults(func=run_experiment_command, interrupt_hint=RESUME_HINT)


def _list(experiments: list[Experiment], args: argparse.Namespace) -> None:
    from isbert.experiments.runner import list_jobs

    for experiment in experiments:
        print(f"{experiment.name} ({experiment.path}): {len(experiment.runs)} runs, seeds {experiment.seeds}")
        for job, state in list_jobs(experiment, data_dir=args.data_dir, runs_dir=args.runs_dir, device=args.device):
            seed = "" if job.seed is None else f" seed {job.seed}"
            kind = f"baseline {job.spec.baseline}" if job.spec.baseline else "trained"
            print(f"  {job.spec.name}{seed} [{kind}]: {state}  ({job.folder})")


def run_experiment_command(args: argparse.Namespace) -> int:
    from isbert.errors import IsbertError
    from isbert.experiments.config import load_experiment
    from isbert.experiments.reuse import published_results
    from isbert.experiments.runner import ExperimentInterrupted, run_experiment

    experiments = [load_experiment(path) for path in args.configs]  # every file is checked before any run
    for table in args.reuse_from:  # and every published table, before the data directory is looked for
        published_results(table)
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        raise IsbertError(f"two experiment files have the same name ({', '.join(names)}); set [experiment] name")
    if args.only:
        known = {spec.name for e in experiments for spec in e.runs}
        unknown = [name for name in args.only if name not in known]
        if unknown:
            raise IsbertError(f"--only: no run named {', '.join(unknown)}; runs: {', '.join(sorted(known))}")
    if args.list:
        _list(experiments, args)
        return 0

    def say(message: str) -> None:
        print(message, flush=True)

    for experiment, path in zip(experiments, args.configs, strict=True):
        only = [n for n in args.only if any(s.name == n for s in experiment.runs)] if args.only else None
        if only == []:
            continue
        say(f"experiment {experiment.name} ({path}): {len(experiment.runs)} runs, seeds {experiment.seeds}")
        try:
            outcome = run_experiment(
                experiment, data_dir=args.data_dir, runs_dir=args.runs_dir, results_dir=args.results_dir, only=only,
                device=args.device, keep_models=args.keep_models, force=args.force,
                show_progress=not args.no_progress, log=say, command=f"isbert experiment {path}",
                reuse_from=args.reuse_from,
            )  # fmt: skip
        except ExperimentInterrupted as error:
            print(f"isbert experiment: {error}", file=sys.stderr)
            return 130
        done = [r for r in outcome.results if r is not None]
        minutes = sum(r["wall_seconds"] for r in done) / 60
        budget = f" vs {experiment.budget_minutes:g} min stated budget" if experiment.budget_minutes else ""
        say(f"{experiment.name}: {len(done)}/{len(outcome.jobs)} run(s) with results, {minutes:.1f} min measured"
            f"{budget}")  # fmt: skip
        for output in outcome.outputs:
            say(f"wrote {output}")
    return 0
