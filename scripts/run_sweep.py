"""The old sweep command, kept as an alias of ``python -m dqrec.sweep`` (see that module):

    python scripts/run_sweep.py --table 1 --profile paper [--datasets ...] [--models ...] [--seeds ...]

is ``python -m dqrec.sweep table1 --profile paper ...``; ``--table`` takes 1, loss, 3 or fig3 and every
other option is passed on unchanged (``--workers``, ``--address``, ``--gpus-per-run``, ``--missing``...).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dqrec import sweep  # noqa: E402

TABLES = {"1": "table1", "loss": "loss", "3": "table3", "fig3": "fig3"}

if __name__ == "__main__":
    argv = sys.argv[1:]
    table = "1"
    if "--table" in argv:
        i = argv.index("--table")
        table = argv[i + 1] if i + 1 < len(argv) else ""
        del argv[i:i + 2]
    if table not in TABLES:
        sys.exit(f"run_sweep.py: --table takes one of {sorted(TABLES)}, not {table!r}")
    sweep.main([TABLES[table], *argv])
