"""Execute the notebooks under a profile with papermill and render the jupyter-book.

    python scripts/build_book.py --profile quick            # what `make book` runs
    python scripts/build_book.py --profile paper --no-build # refresh the committed results/
    python scripts/build_book.py --only 01_datasets 02_dqvae --no-build

Executed notebooks go to results/notebooks/ (paper profile, committed) or results/<profile>/notebooks/
(never committed); the book shows them, plus the committed paper-profile notebooks when the run
used another profile. Each page starts with a banner naming its profile, commit and data.

A notebook that fails stops the build (or, with --keep-going, the remaining ones still run): its
executed copy, traceback included, is moved to <output>/failed/, so no failed (or stale) chapter is
ever rendered; the book is not built, and the script exits with status 1 after naming each failed
notebook and its failing cell. Exit status 2 means bad options, 3 a failed jupyter-book render.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import jupytext
import papermill
from papermill.exceptions import PapermillExecutionError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec.data import data_dir  # noqa: E402
from dqrec.experiment import PROFILES, git_sha, results_dir  # noqa: E402

BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"


class NotebookFailed(RuntimeError):
    """A notebook raised while executing; the message names it and its failing cell."""


def source_cell_number(executed: Path | None, cell_index: int) -> int:
    """1-based number of the failing cell in the source notebook: papermill's index counts its injected cell."""
    if executed is None:
        return cell_index + 1
    try:
        cells = nbformat.read(executed, as_version=4).cells[:cell_index]
    except Exception:  # an unreadable partial notebook: the executed index is the best we have
        return cell_index + 1
    return cell_index + 1 - sum("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in cells)


def describe_failure(source: Path, err: Exception, failed_copy: Path | None) -> str:
    """One readable paragraph: which notebook, which cell (number in the source, first lines), what error."""
    if isinstance(err, PapermillExecutionError):
        lines = [line for line in (err.source or "").splitlines() if line.strip()]
        shown = "\n".join(f"    | {line}" for line in lines[:6]) + ("\n    | ..." if len(lines) > 6 else "")
        where = f"cell {source_cell_number(failed_copy, err.cell_index)} (counting every cell of the notebook from 1)"
        what = f"{err.ename}: {err.evalue}"
    else:
        shown, where, what = "", "before or outside any cell", f"{type(err).__name__}: {err}"
    text = f"FAILED {source.relative_to(ROOT) if source.is_relative_to(ROOT) else source}: {where} raised {what}"
    if shown:
        text += f"\n{shown}"
    if failed_copy is not None:
        text += f"\n  executed notebook with the traceback: {failed_copy}"
    return text


def execute(source: Path, out_dir: Path, profile: str, parameters: dict) -> Path:
    """Execute ``source`` (a jupytext .py) into ``out_dir``; raise NotebookFailed, leaving no chapter, on failure."""
    nb = jupytext.read(source)
    tmp = out_dir / f"{source.stem}.input.ipynb"
    nbformat.write(nb, tmp)
    out = out_dir / f"{source.stem}.ipynb"
    failed_dir = out_dir / "failed"
    (failed_dir / out.name).unlink(missing_ok=True)
    out.unlink(missing_ok=True)  # a stale copy of an earlier run must not be rendered if this one fails
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(tmp), str(out), parameters=dict(parameters, profile=profile),
                                   kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False)
    except Exception as err:  # a cell's error, a dead kernel, a missing parameter...
        failed_copy = None
        if out.exists():  # papermill writes the partial notebook: keep it out of the book, but keep it
            failed_dir.mkdir(exist_ok=True)
            failed_copy = failed_dir / out.name
            shutil.move(str(out), failed_copy)
        raise NotebookFailed(describe_failure(source, err, failed_copy)) from err
    finally:
        tmp.unlink(missing_ok=True)
    executed = nbformat.read(out, as_version=4)
    banner = (f"```{{note}}\nExecuted with profile **{profile}** at commit `{git_sha()}` in "
              f"{time.perf_counter() - start:.0f} s on {time.strftime('%Y-%m-%d')}; data read from "
              f"`{data_dir() or 'the download cache'}`. Rerun: `python scripts/build_book.py --profile {profile}`.\n```")
    executed.cells.insert(0, nbformat.v4.new_markdown_cell(banner))
    nbformat.write(executed, out)
    print(f"executed {source.name} ({profile}) in {time.perf_counter() - start:.0f} s", flush=True)
    return out


def book_page(source: Path, target: Path) -> None:
    """Copy an executed notebook into the book with every code cell's input hidden behind a toggle
    (readers see prose, tables and figures first; "Show code cell source" reveals the code)."""
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            tags = cell.metadata.setdefault("tags", [])
            if "hide-input" not in tags:
                tags.append("hide-input")
    nbformat.write(nb, target)


def write_toc(chapters: list[str], paper_chapters: list[str]) -> None:
    lines = ["format: jb-book", "root: intro", "parts:", "  - caption: Chapters", "    chapters:"]
    lines += [f"      - file: {c}" for c in chapters]
    if paper_chapters:
        lines += ["  - caption: Paper-profile runs (committed)", "    chapters:"]
        lines += [f"      - file: {c}" for c in paper_chapters]
    (BOOK / "_toc.yml").write_text("\n".join(lines) + "\n")


def render_book() -> int:
    """Render book/ with jupyter-book (warnings are errors); its exit status."""
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(BOOK), "-W", "-n", "--keep-going"]
    return subprocess.run(cmd).returncode


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=sorted(PROFILES),
                    help="parameter profile passed to every notebook's `parameters` cell (default: quick). 'paper' "
                         "runs the paper's settings and writes the committed results/; any other profile writes "
                         "results/<profile>/ only")
    ap.add_argument("--only", nargs="+", metavar="STEM",
                    help="execute only these notebooks, by file stem (e.g. 01_datasets 04_table1); default: all "
                         "notebooks/NN_*.py. Already executed notebooks of the profile are still rendered")
    ap.add_argument("--no-build", action="store_true",
                    help="execute the notebooks only; do not render the jupyter-book (book/_build/html)")
    ap.add_argument("--missing", choices=["compute", "skip"],
                    help="for the notebooks that run models (their `missing` parameter): 'skip' renders from the run "
                         "cache and lists the runs it lacks instead of computing them (default: the notebooks', "
                         "compute)")
    ap.add_argument("--workers", type=int,
                    help="for the notebooks that run models (their `workers` parameter): compute missing runs on "
                         "that many local Ray workers (default: the notebooks', 0: one after another)")
    ap.add_argument("--keep-going", action="store_true",
                    help="after a failed notebook, still execute the remaining ones (the book is not rendered and "
                         "the exit status is 1 either way)")
    args = ap.parse_args(argv)
    if args.only:
        known = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")}
        unknown = sorted(set(args.only) - known)
        if unknown:
            ap.error(f"--only: no notebook {', '.join(unknown)} in {NOTEBOOKS}; choose from {', '.join(sorted(known))}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    if args.only:
        sources = [s for s in sources if s.stem in args.only]
    out_dir = results_dir(args.profile) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    given = {name: value for name, value in (("missing", args.missing), ("workers", args.workers)) if value is not None}
    for source in sources:
        try:
            execute(source, out_dir, args.profile, {name: value for name, value in given.items()
                                                    if re.search(rf"^{name} = ", source.read_text(), re.M)})
        except NotebookFailed as err:
            failures.append(str(err))
            print(err, file=sys.stderr, flush=True)
            if not args.keep_going:
                break
    if failures:
        skipped = len(sources) - len(failures) if args.keep_going else None
        print(f"\n{len(failures)} notebook(s) failed; the book was not rendered"
              + ("" if skipped is not None else " and the remaining notebooks were not run (see --keep-going)")
              + ":\n" + "\n".join(f.splitlines()[0] for f in failures), file=sys.stderr)
        return 1
    if args.no_build:
        return 0

    pages = BOOK / "notebooks"
    shutil.rmtree(pages, ignore_errors=True)
    pages.mkdir(parents=True)
    chapters, paper_chapters = [], []
    for nb in sorted(out_dir.glob("[0-9][0-9]_*.ipynb")):
        book_page(nb, pages / nb.name)
        chapters.append(f"notebooks/{nb.stem}")
    committed = ROOT / "results" / "notebooks"
    if args.profile != "paper" and committed.exists():
        (pages / "paper").mkdir()
        for nb in sorted(committed.glob("[0-9][0-9]_*.ipynb")):
            book_page(nb, pages / "paper" / nb.name)
            paper_chapters.append(f"notebooks/paper/{nb.stem}")
    write_toc(chapters, paper_chapters)
    status = render_book()
    if status:
        print(f"jupyter-book build failed (exit status {status}); see its output above", file=sys.stderr)
        return 3
    print(f"book: {BOOK / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
