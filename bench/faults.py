"""The fault table: every fault of tests/fault_cases.py injected into real files and servers on
loopback, each followed by a rerun once the fault has cleared; one line per fault.

    python bench/faults.py [--only TEXT] [--keep DIR]

Columns: how the run under the fault ended, how the rerun ended, and the checks against a clean
run of the same days: counts rows lost / duplicated / changed, store objects missing / extra /
partial, and what the scene registry recorded. Exit status 1 when any fault is not recovered.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect.testing.utilities import prefect_test_harness
from rich.console import Console
from rich.table import Table

from tests.fault_cases import CASES
from tests.fault_lab import Lab
from tests.faultkit import FaultRow


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the faults whose name contains this text")
    parser.add_argument("--keep", type=Path, help="keep the worlds in this folder")
    return parser.parse_args(argv)


def table(rows: list[tuple[FaultRow, float]]) -> Table:
    out = Table(title="railwatch under faults (each: run under the fault, then a rerun once cleared)")
    for column in ("layer", "fault", "run under the fault", "rerun", "lost", "dup", "changed",
                   "partial", "scene registry", "s", "result"):
        out.add_column(column, overflow="fold")
    for row, seconds in rows:
        objects = row.objects_missing + row.objects_extra
        out.add_row(row.layer, row.fault, row.during.describe()[:160], row.after.describe()[:60],
                    str(row.diff.lost), str(row.diff.duplicated), str(row.diff.changed),
                    f"{row.partial}" + (f" (+{objects} objects differ)" if objects else ""),
                    row.registry[:160], f"{seconds:.0f}",
                    "[green]recovered[/]" if row.recovered else "[red]NOT recovered[/]")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="railwatch-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    console = Console(width=220)
    rows: list[tuple[FaultRow, float]] = []
    with prefect_test_harness(server_startup_timeout=300):  # one Prefect API for every world
        run_cases(Lab(root), args.only, rows, console)
    console.print(table(rows))
    bad = sum(not r.recovered for r, _ in rows)
    console.print(f"{len(rows)} fault(s): {len(rows) - bad} recovered with 0 lost / 0 duplicated, "
                  f"{bad} not")
    return 1 if bad else 0


def run_cases(lab: Lab, only: str, rows: list[tuple[FaultRow, float]], console: Console) -> None:
    try:
        for case in CASES:
            if only.lower() not in f"{case.layer} {case.fault}".lower():
                continue
            started = time.perf_counter()
            rows.append((case.run(lab, case.layer, case.fault), time.perf_counter() - started))
            console.print(f"{case.layer}: {case.fault}: "
                          f"{'recovered' if rows[-1][0].recovered else 'NOT recovered'}")
    finally:
        lab.close()


if __name__ == "__main__":
    raise SystemExit(main())
