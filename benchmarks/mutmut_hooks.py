"""What the mutant-run hooks (tools/mutmut_conftest.py: likely killers first, the inherited heap frozen) save.

mutmut itself runs the same sample of a module's mutants twice in a copy kept by a module's run, one worker, without
the hooks and with them (the copy's root conftest.py removed, then put back), with its debug log on: the seconds of
each mutant are the fork server's own ("Completed NAME: exit=E (Ts)", fork to exit). The sample is every mutant that
ran tests of functions drawn at random, which mutmut runs one function after another. The verdicts must agree. The
copy's verdict files are restored afterwards.

    python tools/mutmut_modules.py --keep search/serve.py      # prints the copy's folder
    python benchmarks/mutmut_hooks.py /tmp/mutmut-search-serve.py-XXXX --mutants 60

Writes benchmarks/results/mutmut_hooks_<module>.{json,md}. Run it alone: the ratio is of two timings on one machine.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))

from mutmut_conftest import function_of  # noqa: E402
from mutmut_modules import HOOKS, MUTMUT, mutmut_environment  # noqa: E402

COMPLETED = re.compile(r"Completed (\S+): exit=(-?\d+) \(([\d.]+)s\)")


def draw(verdicts: dict[str, int | None], count: int, seed: int) -> list[str]:
    """Every mutant that ran tests (killed or survived) of functions drawn at random, until ``count``."""
    ran = [name for name, code in verdicts.items() if code in (0, 1)]
    functions = sorted({function_of(name) for name in ran})
    random.Random(seed).shuffle(functions)
    sample: list[str] = []
    for function in functions:
        if len(sample) >= count:
            break
        sample += [name for name in ran if function_of(name) == function]
    return sample


def run_mutmut(copy: Path, names: list[str], hooks: bool) -> dict[str, tuple[int, float]]:
    """mutmut over ``names`` in the copy, one worker: each mutant's (exit code, seconds) from the fork server's log."""
    mutants = copy / "mutants"
    (mutants / "mutmut-kills.tsv").unlink(missing_ok=True)
    (mutants / "mutmut-debug.log").unlink(missing_ok=True)
    if hooks:
        shutil.copy2(HOOKS, mutants / "conftest.py")
    else:
        (mutants / "conftest.py").unlink(missing_ok=True)
    command = [str(MUTMUT), "run", "--max-children", "1", *names]
    subprocess.run(command, cwd=copy, env=mutmut_environment(), capture_output=True)
    log = (mutants / "mutmut-debug.log").read_text(encoding="utf-8")
    return {name: (int(code), float(seconds)) for name, code, seconds in COMPLETED.findall(log)}


def measure(copy: Path, count: int, seed: int) -> dict[str, object]:
    pyproject = copy / "pyproject.toml"
    metas = {path: path.read_bytes() for path in (copy / "mutants" / "src").rglob("*.meta")}
    conftest = copy / "mutants" / "conftest.py"
    hooks_before = conftest.read_bytes() if conftest.exists() else None
    text = pyproject.read_text(encoding="utf-8")
    try:
        pyproject.write_text(text.rstrip("\n") + "\nlog_to_file = true\n", encoding="utf-8")  # [tool.mutmut] is last
        verdicts: dict[str, int | None] = {}
        for content in metas.values():
            verdicts.update(json.loads(content)["exit_code_by_key"])
        sample = draw(verdicts, count, seed)
        off = run_mutmut(copy, sample, hooks=False)
        on = run_mutmut(copy, sample, hooks=True)
    finally:
        pyproject.write_text(text, encoding="utf-8")
        for path, content in metas.items():
            path.write_bytes(content)
        if hooks_before is None:
            conftest.unlink(missing_ok=True)
        else:
            conftest.write_bytes(hooks_before)
    missing = [name for name in sample if name not in off or name not in on]
    if missing:
        raise SystemExit(f"mutmut did not report {len(missing)} of the mutants, e.g. {missing[0]}")
    seconds = {"off": sum(off[n][1] for n in sample), "on": sum(on[n][1] for n in sample)}
    return {
        "copy": str(copy),
        "mutants": len(sample),
        "survived": sum(on[name][0] == 0 for name in sample),
        "seconds": {key: round(value, 1) for key, value in seconds.items()},
        "on_over_off": round(seconds["on"] / seconds["off"], 3),
        "verdicts_disagree": [name for name in sample if (off[name][0] == 0) != (on[name][0] == 0)],
        "per_mutant": {name: {"off": off[name], "on": on[name]} for name in sample},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("copy", type=Path, help="a copy kept by tools/mutmut_modules.py --keep")
    parser.add_argument("--mutants", type=int, default=60, help="draw functions until this many mutants")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = measure(args.copy.resolve(), args.mutants, args.seed)
    module = args.copy.resolve().name.removeprefix("mutmut-").rsplit("-", 1)[0]
    (HERE / "results" / f"mutmut_hooks_{module}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = (
        "| module | mutants (survived) | without hooks (s) | with hooks (s) | with / without | verdicts that differ |\n"
        "|---|---|---|---|---|---|\n"
        f"| {module} | {result['mutants']} ({result['survived']}) | {result['seconds']['off']} | "
        f"{result['seconds']['on']} | {result['on_over_off']} | {len(result['verdicts_disagree'])} |\n"
    )
    source = f"`benchmarks/mutmut_hooks.py {args.copy.name} --mutants {args.mutants} --seed {args.seed}`"
    (HERE / "results" / f"mutmut_hooks_{module}.md").write_text(f"{source}, one mutmut worker.\n\n{table}")
    print(table)


if __name__ == "__main__":
    main()
