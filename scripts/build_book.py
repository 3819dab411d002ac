"""Execute the notebooks under a profile with papermill and render the jupyter-book.

    python scripts/build_book.py --profile quick            # what `make book` runs
    python scripts/build_book.py --profile paper --no-build # refresh the committed results/
    python scripts/build_book.py --only 01_datasets 02_dqvae --no-build
    python scripts/build_book.py --profile paper --no-execute   # render the committed paper book as it is

Executed notebooks go to results/notebooks/ (paper profile, committed) or results/<profile>/notebooks/
(never committed); the book shows the chapters of that one profile. Each page starts with a banner naming
its profile, commit and data; under any profile but `paper` the banner, the sidebar caption and the landing
page say it is a smoke run, not the book's results. The landing page (book/intro.md) includes
book/_verdict.md, generated here from the verdict page's results (verdict.csv).

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
VERDICT = "00_verdict"  # first in the book, executed last
# Run before each notebook's own cells, and not shown (tag remove-cell): tables print every character of
# a cell (an error message, a path), never pandas' "..." after 50.
SETUP_TAG = "book-setup"
SETUP_CELL = 'import pandas as pd\n\npd.set_option("display.max_colwidth", None)'



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
    return cell_index + 1 - sum(bool({"injected-parameters", SETUP_TAG} & set(c.get("metadata", {}).get("tags", [])))
                                for c in cells)


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
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP_CELL, metadata={"tags": ["remove-cell", SETUP_TAG]}))
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
    executed.cells.insert(0, nbformat.v4.new_markdown_cell(banner(profile, time.perf_counter() - start)))
    nbformat.write(executed, out)
    print(f"executed {source.name} ({profile}) in {time.perf_counter() - start:.0f} s", flush=True)
    return out


SMOKE_NOTE = ("**Smoke run, not the book's results.** This page was executed with the `{profile}` profile, "
              "which runs the code on a small budget to check that it works; its numbers are not the "
              "reproduction. The book's results are the `paper` profile's "
              "(`python scripts/build_book.py --profile paper`, committed under `results/`).")


def banner(profile: str, seconds: float) -> str:
    """The note opening every executed page: profile, commit, time, data; a smoke-run warning for any
    profile but ``paper``. The commits of the cached runs behind a table are in that table's
    provenance section and on the page "Settings and provenance"."""
    text = (f"Executed with profile **{profile}** at commit `{git_sha()}` in {seconds:.0f} s on "
            f"{time.strftime('%Y-%m-%d')}; data read from `{data_dir() or 'the download cache'}`. Model runs "
            "read back from the run cache keep the commit that computed them: see each table's provenance and "
            f"the page *Settings and provenance*. Rerun: `python scripts/build_book.py --profile {profile}`.")
    if profile != "paper":
        return f"```{{warning}}\n{SMOKE_NOTE.format(profile=profile)}\n\n{text}\n```"
    return f"```{{note}}\n{text}\n```"


def verdict_include(profile: str, results: Path, chapters: list[str]) -> str:
    """Markdown for the landing page (``book/_verdict.md``, included by ``intro.md``): the verdict counts and
    one row per claim, generated from ``<results>/verdict.csv`` (written by notebooks/00_verdict)."""
    from dqrec.report import verdict_summary

    path = results / "verdict.csv"
    head = f"```{{warning}}\n{SMOKE_NOTE.format(profile=profile)}\n```\n\n" if profile != "paper" else ""
    if not path.exists():
        return head + f"The verdict page has not been executed under the `{profile}` profile ({path} is missing).\n"
    import pandas as pd

    claims = pd.read_csv(path).fillna("")
    stems = {c.removeprefix("notebooks/") for c in chapters}
    more = ("\n\nEach claim in detail, with our numbers and the reason for its verdict: "
            f"[Verdict](notebooks/{VERDICT}.ipynb).\n" if VERDICT in stems else "\n")
    return head + verdict_summary(claims, prefix="notebooks/", chapters=stems) + more


def book_page(source: Path, target: Path) -> None:
    """Copy an executed notebook into the book with every code cell's input hidden behind a toggle
    (readers see prose, tables and figures first; "Show code cell source" reveals the code). The
    verdict page shows no code at all (tag remove-input): it is outputs of :mod:`dqrec.report`, the
    page a reader opens first."""
    nb = nbformat.read(source, as_version=4)
    tag = "remove-input" if source.stem == VERDICT else "hide-input"
    for cell in nb.cells:
        if cell.cell_type == "code":
            tags = cell.metadata.setdefault("tags", [])
            if tag not in tags:
                tags.append(tag)
    nbformat.write(nb, target)


def write_toc(chapters: list[str], profile: str) -> None:
    """One chapter list: the chapters executed under ``profile`` (a smoke run says so in its caption)."""
    caption = "Chapters" if profile == "paper" else f"Chapters (smoke run, profile {profile})"
    lines = ["format: jb-book", "root: intro", "parts:", f"  - caption: {caption}", "    chapters:"]
    lines += [f"      - file: {c}" for c in chapters]
    (BOOK / "_toc.yml").write_text("\n".join(lines) + "\n")


def render_book() -> int:
    """Render book/ afresh with jupyter-book (warnings are errors; no page of an earlier build survives);
    its exit status."""
    shutil.rmtree(BOOK / "_build", ignore_errors=True)
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
    ap.add_argument("--no-execute", action="store_true",
                    help="execute nothing; render the notebooks already executed under the profile (for the paper "
                         "profile: the committed results/notebooks/)")
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
    if args.no_execute and (args.only or args.no_build):
        ap.error("--no-execute renders only: it takes neither --only nor --no-build")
    if args.only:
        known = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")}
        unknown = sorted(set(args.only) - known)
        if unknown:
            ap.error(f"--only: no notebook {', '.join(unknown)} in {NOTEBOOKS}; choose from {', '.join(sorted(known))}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # The verdict page collects every chapter's results, so it is executed after them.
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"), key=lambda s: (s.stem == VERDICT, s.name))
    if args.only:
        sources = [s for s in sources if s.stem in args.only]
    if args.no_execute:
        sources = []
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
    chapters = []
    for nb in sorted(out_dir.glob("[0-9][0-9]_*.ipynb")):
        if nb.name.endswith(".input.ipynb"):  # papermill's input copy of a run in progress elsewhere
            continue
        book_page(nb, pages / nb.name)
        chapters.append(f"notebooks/{nb.stem}")
    write_toc(chapters, args.profile)
    (BOOK / "_verdict.md").write_text(verdict_include(args.profile, results_dir(args.profile), chapters))
    status = render_book()
    if status:
        print(f"jupyter-book build failed (exit status {status}); see its output above", file=sys.stderr)
        return 3
    print(f"book: {BOOK / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
