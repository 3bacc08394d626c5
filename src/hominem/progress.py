"""Progress bars (counts and rates) that stay quiet when not on a terminal unless asked."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def bar(total: int | None = None, desc: str = "", initial: int = 0, unit: str = "it"):
    disable = os.environ.get("HOMINEM_PROGRESS", "auto") == "off" or (
        os.environ.get("HOMINEM_PROGRESS", "auto") == "auto" and not sys.stderr.isatty())
    return tqdm(total=total, desc=desc, initial=initial, unit=unit, disable=disable, dynamic_ncols=True,
                mininterval=0.5)


def say(msg: str) -> None:
    """One status line on stderr (the run's narrative), kept out of stdout's machine output."""
    print(msg, file=sys.stderr, flush=True)
