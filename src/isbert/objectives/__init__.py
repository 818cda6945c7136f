"""The training objectives, one module each, and their one registry: :data:`OBJECTIVES`.

Everything that depends on which objective a run trains is read from here: the ``--objective`` choices and their
help, validation (pooled, anchorable), the loss a run builds and the columns it reads, the experiments' check that
a backbone applies, and the model card (its title, text, paper and citation). Adding an objective is one module
with its :class:`Objective` plus one entry below.
"""

from __future__ import annotations

from isbert.errors import IsbertError
from isbert.objectives import ct, infomax, is_simcse, simcse, tsdae
from isbert.objectives.base import Objective, Settings

OBJECTIVES: dict[str, Objective] = {
    objective.name: objective
    for objective in (infomax.OBJECTIVE, simcse.OBJECTIVE, is_simcse.OBJECTIVE, tsdae.OBJECTIVE, ct.OBJECTIVE)
}
"""Every ``--objective`` by name, in the order ``--help`` lists them; the first is the default."""

NAMES: tuple[str, ...] = tuple(OBJECTIVES)
"""The allowed ``--objective`` values."""


def objective(name: str) -> Objective:
    """The registered objective ``name``; an unknown name is a one-line error listing the known ones."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise IsbertError(f"--objective must be one of {', '.join(NAMES)}, got {name!r}") from None


def help_text() -> str:
    """The ``--objective`` help: each name and what it is."""
    return "; ".join(f"{name}: {entry.help}" for name, entry in OBJECTIVES.items())


__all__ = ["NAMES", "OBJECTIVES", "Objective", "Settings", "help_text", "objective"]
