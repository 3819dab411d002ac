"""Execute the notebooks under a profile with papermill and render the jupyter-book.

    python scripts/build_book.py --profile quick            # what `make book` runs
    python scripts/build_book.py --profile paper --no-build # refresh the committed results/

Executed notebooks go to results/notebooks/ (paper profile, committed) or results/<profile>/notebooks/
(never committed); the book shows them, plus the committed paper-profile notebooks when the run
used another profile. Each page starts with a banner naming its profile, commit and data.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import jupytext
import papermill

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dqrec.data import data_dir  # noqa: E402
from dqrec.experiment import git_sha, results_dir  # noqa: E402

BOOK = ROOT / "book"


def execute(source: Path, out_dir: Path, profile: str, parameters: dict) -> Path:
    nb = jupytext.read(source)
    tmp = out_dir / f"{source.stem}.input.ipynb"
    nbformat.write(nb, tmp)
    out = out_dir / f"{source.stem}.ipynb"
    start = time.perf_counter()
    papermill.execute_notebook(str(tmp), str(out), parameters=dict(parameters, profile=profile),
                               kernel_name="python3", cwd=str(ROOT / "notebooks"), progress_bar=False)
    tmp.unlink()
    executed = nbformat.read(out, as_version=4)
    banner = (f"```{{note}}\nExecuted with profile **{profile}** at commit `{git_sha()}` in "
              f"{time.perf_counter() - start:.0f} s on {time.strftime('%Y-%m-%d')}; data read from "
              f"`{data_dir() or 'the download cache'}`. Rerun: `python scripts/build_book.py --profile {profile}`.\n```")
    executed.cells.insert(0, nbformat.v4.new_markdown_cell(banner))
    nbformat.write(executed, out)
    print(f"executed {source.name} ({profile}) in {time.perf_counter() - start:.0f} s", flush=True)
    return out


def write_toc(chapters: list[str], paper_chapters: list[str]) -> None:
    lines = ["format: jb-book", "root: intro", "parts:", "  - caption: Chapters", "    chapters:"]
    lines += [f"      - file: {c}" for c in chapters]
    if paper_chapters:
        lines += ["  - caption: Paper-profile runs (committed)", "    chapters:"]
        lines += [f"      - file: {c}" for c in paper_chapters]
    (BOOK / "_toc.yml").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--only", nargs="*", help="notebook stems to run (default: all)")
    ap.add_argument("--no-build", action="store_true", help="execute only, do not render the book")
    args = ap.parse_args()

    sources = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    if args.only:
        sources = [s for s in sources if s.stem in args.only]
    out_dir = results_dir(args.profile) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    for source in sources:
        execute(source, out_dir, args.profile, {})
    if args.no_build:
        return

    pages = BOOK / "notebooks"
    shutil.rmtree(pages, ignore_errors=True)
    pages.mkdir()
    chapters, paper_chapters = [], []
    for nb in sorted(out_dir.glob("[0-9][0-9]_*.ipynb")):
        shutil.copy(nb, pages / nb.name)
        chapters.append(f"notebooks/{nb.stem}")
    committed = ROOT / "results" / "notebooks"
    if args.profile != "paper" and committed.exists():
        (pages / "paper").mkdir()
        for nb in sorted(committed.glob("[0-9][0-9]_*.ipynb")):
            shutil.copy(nb, pages / "paper" / nb.name)
            paper_chapters.append(f"notebooks/paper/{nb.stem}")
    write_toc(chapters, paper_chapters)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(BOOK), "-W", "-n", "--keep-going"],
                   check=True)
    print(f"book: {BOOK / '_build' / 'html' / 'index.html'}")


if __name__ == "__main__":
    main()
