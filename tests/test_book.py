"""The book's build (one chapter list, smoke runs marked, the generated verdict on the landing page) and
the browser check that reads the rendered pages (scripts/check_book.py, headless Chromium)."""
import importlib.util
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from tests.test_hardening import load_build_book

ROOT = Path(__file__).resolve().parent.parent


def test_quick_build_lists_each_chapter_once_and_marks_the_smoke_run(monkeypatch, tmp_path):
    mod, rendered = load_build_book(monkeypatch, tmp_path, {"01_ok": ["x = 1"], "02_ok": ["y = 2"]})
    (tmp_path / "book").mkdir()
    committed = tmp_path / "results" / "notebooks"  # committed paper-profile chapters must not be listed too
    committed.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), committed / "01_ok.ipynb")
    assert mod.main(["--profile", "quick"]) == 0
    toc = (tmp_path / "book" / "_toc.yml").read_text()
    assert toc.count("01_ok") == 1 and toc.count("02_ok") == 1 and "paper/" not in toc
    assert "smoke run" in toc
    for stem in ("01_ok", "02_ok"):
        page = nbformat.read(tmp_path / "book" / "notebooks" / f"{stem}.ipynb", as_version=4)
        assert page.cells[0].cell_type == "markdown" and "Smoke run" in page.cells[0].source
    verdict = (tmp_path / "book" / "_verdict.md").read_text()
    assert "Smoke run" in verdict and "has not been executed" in verdict


def test_paper_build_has_no_smoke_banner_and_a_generated_verdict(monkeypatch, tmp_path):
    mod, rendered = load_build_book(monkeypatch, tmp_path, {"00_verdict": ["x = 1"]})
    (tmp_path / "book").mkdir()
    (tmp_path / "results").mkdir()
    pd.DataFrame([dict(section="Table 3", claim="w/o User hurts", ours="-1%", verdict="partly reproduced", why="w",
                       evidence="05_ablations")]).to_csv(tmp_path / "results" / "verdict.csv", index=False)
    assert mod.main(["--profile", "paper"]) == 0
    page = nbformat.read(tmp_path / "results" / "notebooks" / "00_verdict.ipynb", as_version=4)
    assert "Smoke run" not in page.cells[0].source and "profile **paper**" in page.cells[0].source
    verdict = (tmp_path / "book" / "_verdict.md").read_text()
    assert "Smoke run" not in verdict and "1 partly reproduced" in verdict
    assert "Ablations (Table 3) (not in this build)" in verdict  # no link to a page this build lacks
    assert "[Verdict](notebooks/00_verdict.ipynb)" in verdict


def test_intro_includes_the_generated_verdict():
    intro = (ROOT / "book" / "intro.md").read_text()
    assert "```{include} _verdict.md" in intro
    assert intro.index("_verdict.md") < intro.index("## How to read")  # up front


# ------------------------------------------------------------------------------------ browser check
def load_check_book():
    spec = importlib.util.spec_from_file_location("check_book_under_test", ROOT / "scripts" / "check_book.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


needs_chromium = pytest.mark.skipif(not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
                                    reason="no chromium (Debian package `chromium`; .ci/run installs it)")

PAGE = """<!DOCTYPE html><html><head><style>article {{ width: 600px; }}</style></head>
<body><main><article class="bd-article">{body}</article></main></body></html>"""
GOOD = ("<h1>Chapter</h1><p>Text with math <span class='math'><mjx-container>a/b</mjx-container></span>.</p>"
        "<div class='cell_output'><div style='overflow-x: auto'><table><tr>{cells}</tr></table></div></div>"
        "<pre>x = 1</pre><h2>What we found</h2><p>Numbers.</p>")
WIDE_CELLS = "".join(f"<td>cell-number-{i}</td>" for i in range(60))


def write_book(tmp_path, pages: dict) -> Path:
    html = tmp_path / "html"
    (html / "notebooks").mkdir(parents=True)
    (html / "index.html").write_text(PAGE.format(body="<h1>Landing</h1>"))
    for name, body in pages.items():
        (html / "notebooks" / name).write_text(PAGE.format(body=body))
    return html


@needs_chromium
def test_browser_check_passes_a_good_page_and_catches_each_problem(tmp_path):
    mod = load_check_book()
    broken = {
        "01_good.html": GOOD.format(cells="<td>a</td><td>b</td>"),
        "02_image.html": GOOD.format(cells="") + "<img src='missing.png'>",
        "03_traceback.html": GOOD.format(cells="") + "<pre class='output traceback'>Traceback (most recent call last):\n"
                                                      "KeyError</pre>",
        "04_math.html": GOOD.format(cells="") + "<p>where $$\\frac{a}{b}$$ holds</p>",
        "05_overflow.html": GOOD.format(cells="").replace("overflow-x: auto", "") + "<table><tr>" + WIDE_CELLS
                            + "</tr></table>",
        "06_no_findings.html": GOOD.format(cells="").replace("What we found", "Discussion"),
        "07_clipped.html": GOOD.format(cells="") + "<div style='overflow: hidden; width: 300px'><table><tr>" + WIDE_CELLS
                           + "</tr></table></div>",
        "08_untypeset.html": GOOD.format(cells="") + "<p>MathJax did not run: <span class='math'>\\(a\\)</span></p>",
        "09_scrolls.html": GOOD.format(cells=WIDE_CELLS),  # in view only once the reader scrolls sideways
        "10_table_scrolls.html": GOOD.format(cells="") + "<table style='display: block; overflow-x: auto'><tr>"
                                 + WIDE_CELLS + "</tr></table>",  # the table its own scroll box, as the theme styles it
        "11_vqrec.html": GOOD.format(cells="<td>VQRec</td><td>0.1</td>"),  # VQRec without its text encoder
        "12_vqrec_named.html": GOOD.format(cells="<td>VQRec</td>") + "<p>VQRec: an offline text encoder.</p>",
        "00_verdict.html": "<h1>Verdict</h1>",  # the verdict page needs no findings section
    }
    report = mod.check_book(write_book(tmp_path, broken))
    assert report["index.html"] == [] and report["notebooks/01_good.html"] == []
    assert report["notebooks/00_verdict.html"] == [] and report["notebooks/12_vqrec_named.html"] == []
    expect = {"02_image": "broken image", "03_traceback": "traceback", "04_math": "un-rendered math",
              "05_overflow": "wider than the page", "06_no_findings": "What we found", "07_clipped": "cut off",
              "08_untypeset": "math not typeset", "09_scrolls": "scrolls sideways",
              "10_table_scrolls": "scrolls sideways", "11_vqrec": "names VQRec but not its text encoder"}
    for stem, words in expect.items():
        problems = report[f"notebooks/{stem}.html"]
        assert any(words in p for p in problems), (stem, problems)
    assert mod.main([str(tmp_path / "html")]) == 1


def test_verdict_page_is_executed_after_the_chapters_it_collects(monkeypatch, tmp_path):
    flag = tmp_path / "chapter-ran"
    mod, rendered = load_build_book(monkeypatch, tmp_path, {
        "00_verdict": [f"from pathlib import Path\nassert Path({str(flag)!r}).exists(), 'chapter not run yet'"],
        "01_ok": [f"from pathlib import Path\nPath({str(flag)!r}).write_text('x')"]})
    assert mod.main(["--profile", "quick", "--no-build"]) == 0
    toc_order = [p.stem for p in sorted((tmp_path / "results" / "quick" / "notebooks").glob("[0-9]*.ipynb"))]
    assert toc_order == ["00_verdict", "01_ok"]  # still first in the book


def test_book_pages_print_long_cells_whole(monkeypatch, tmp_path):
    long = "x" * 120
    mod, rendered = load_build_book(monkeypatch, tmp_path, {"01_ok": [f"import pandas as pd\npd.DataFrame({{'why': ['{long}']}})"]})
    assert mod.main(["--profile", "quick", "--no-build"]) == 0
    nb = nbformat.read(tmp_path / "results" / "quick" / "notebooks" / "01_ok.ipynb", as_version=4)
    html = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "text/html" in o.get("data", {})]
    assert html and long in html[-1]  # not cut to 'xxx...'
    setup = [c for c in nb.cells if "book-setup" in c.metadata.get("tags", [])]
    assert len(setup) == 1 and "remove-cell" in setup[0].metadata.tags  # not shown on the page


def test_verdict_page_shows_no_code_and_chapters_hide_it_behind_a_toggle(monkeypatch, tmp_path):
    mod, rendered = load_build_book(monkeypatch, tmp_path, {})
    for stem in ("00_verdict", "04_table1"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("text")])
        nbformat.write(nb, tmp_path / f"{stem}.ipynb")
        mod.book_page(tmp_path / f"{stem}.ipynb", tmp_path / f"page_{stem}.ipynb")
    verdict, chapter = (nbformat.read(tmp_path / f"page_{s}.ipynb", as_version=4).cells[0].metadata.tags
                        for s in ("00_verdict", "04_table1"))
    assert verdict == ["remove-input"] and chapter == ["hide-input"]
