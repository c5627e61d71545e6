"""The ``gaussum`` command: summaries of data files as crash-safe state files, for shell pipelines.

Sub-commands (``gaussum COMMAND --help`` for each):

- ``summarize DATA... -o STATE.json``: a new state from CSV, ``.npy`` or Parquet inputs;
- ``update STATE.json DATA...``: fold new inputs into a state; inputs already in it are skipped,
  and a counted file that has grown contributes only its new rows;
- ``merge STATE.json... -o OUT.json``: reduce states made elsewhere; an input counted in two of
  them is refused, because the result would count it twice;
- ``show STATE.json``: count, mean and standard deviation per column, and correlations;
- ``compare A.json B.json``: Welch t and Hotelling T² tests from the summaries alone.

The package, one job per module (imports go down the list, never up):

- `parser`: the arguments and `main`;
- `commands`: the sub-commands, each one transaction;
- `rendering`: what ``show`` and ``compare`` print;
- `reading`: inputs into summaries (the ledger's decisions, the core's counts, progress);
- `state`: the state file and its ledger;
- `writing`: atomic replacement, streams as targets, the lock;
- `sources`: the format registry, and one module per format (`sources.csv`, `sources.npy`,
  `sources.parquet`);
- `inputs`: inputs opened once and hashed as read (files, standard input, pipes, compression).
"""

from __future__ import annotations

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
