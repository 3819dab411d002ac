"""Open every page of the rendered book in headless Chromium and fail on what a reader would see wrong.

    python scripts/check_book.py                      # book/_build/html, exit status 1 on any problem
    python scripts/check_book.py --screenshots /tmp/shots

Per page, a copy with a checking script appended is loaded with ``chromium --headless --dump-dom``
(the script runs after the page's own scripts and images have loaded, and writes its findings into
the DOM that Chromium prints). A page fails on:

* a broken image (not loaded, or zero width);
* a raw traceback or an error output cell;
* un-rendered math: ``$$``, ``\\frac``, ``\\begin{``, ``\\hat{``, ... in text outside math, code and
  pre blocks (MyST puts what it parsed as math into ``.math`` elements), or a ``.math`` element that
  MathJax left untypeset (MathJax is served from the book's ``_static``, so this holds offline);
* horizontal overflow: a table, figure, image or output wider than the article column unless it
  scrolls inside its own box, a table that does scroll inside its box (part of it is out of view until
  the reader scrolls sideways), anything clipped by an ``overflow: hidden`` box, or a page wider than
  the window;
* a chapter (``notebooks/NN_*.html`` other than the verdict page) without a "What we found" heading;
* a page that names a model run differently from its paper without saying how (:data:`MODEL_NOTES`:
  VQRec's item codes come from an offline text encoder here, and every page showing VQRec says so).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "book" / "_build" / "html"
NO_FINDINGS_NEEDED = {"00_verdict"}  # the verdict page is the findings
MODEL_NOTES = {"VQRec": "text encoder"}  # a page naming the model must also hold these words (dqrec.report.model_notes)

CHECK_JS = r"""
(function () {
  const SKIP = 'pre, code, script, style, textarea, .math, mjx-container, .MathJax, .highlight';
  const RAW_MATH = /\$\$|\\frac|\\begin\{|\\hat\{|\\mathbf|\\mathcal|\\sum_|\\operatorname|\\left[(\[|]|\\cdot|\\top\b|\^\{|_\{/;
  function describe(el) {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    if (el.className && typeof el.className === 'string') s += '.' + el.className.trim().split(/\s+/).slice(0, 2).join('.');
    const cap = el.querySelector && el.querySelector('caption');
    if (cap) return s + ' "' + cap.textContent.trim().slice(0, 60) + '"';
    const heads = el.tagName === 'TABLE' ? Array.from(el.querySelectorAll('th')).slice(0, 5).map(h => h.textContent.trim()) : [];
    return s + (heads.length ? ' with columns ' + heads.join(' | ').slice(0, 80) : '');
  }
  function overhang(el) {  // px of content past the box's right edge (typeset math: its container's glyph box)
    const mjx = el.matches('.math') && el.querySelector('mjx-container');
    if (mjx) return mjx.getBoundingClientRect().right - el.getBoundingClientRect().right;
    return el.scrollWidth - el.clientWidth;
  }
  function scrollsSideways(table, scroller, problems) {  // a table partly out of view in a scroll box
    if (scroller.scrollWidth > scroller.clientWidth + 2)
      problems.push('table scrolls sideways, ' + (scroller.scrollWidth - scroller.clientWidth) + ' px out of view: ' + describe(table));
  }
  function run() {
    const problems = [];
    const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
    const box = article.getBoundingClientRect();
    document.querySelectorAll('img').forEach(img => {
      if (!img.complete || img.naturalWidth === 0) problems.push('broken image: ' + img.getAttribute('src'));
    });
    if (/Traceback \(most recent call last\)/.test(article.innerText)) problems.push('raw traceback in the text');
    article.querySelectorAll('.output.traceback, .output.error, div.cell_output .error').forEach(
      el => problems.push('error output: ' + el.innerText.trim().split('\n')[0].slice(0, 120)));
    const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || parent.closest(SKIP)) continue;
      const m = node.textContent.match(RAW_MATH);
      if (m) problems.push('un-rendered math "' + m[0] + '" in: ' + node.textContent.trim().slice(0, 100));
    }
    article.querySelectorAll('.math').forEach(el => {
      if (!el.querySelector('mjx-container')) problems.push('math not typeset: ' + el.textContent.trim().slice(0, 80));
    });
    const candidates = article.querySelectorAll('table, img, figure, svg, pre, div.cell_output, div.output, .math');
    candidates.forEach(el => {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) return;
      let scrolls = false, clipped = null;
      for (let a = el.parentElement; a && a !== article.parentElement; a = a.parentElement) {
        const ox = getComputedStyle(a).overflowX;
        const ar = a.getBoundingClientRect();
        if ((ox === 'auto' || ox === 'scroll') && ar.right <= box.right + 2) {
          scrolls = true;
          if (el.tagName === 'TABLE') scrollsSideways(el, a, problems);
          break;
        }
        if ((ox === 'hidden' || ox === 'clip') && (r.right > ar.right + 2 || r.left < ar.left - 2)) { clipped = a; break; }
      }
      const selfOx = getComputedStyle(el).overflowX;
      if (el.tagName === 'TABLE' && (selfOx === 'auto' || selfOx === 'scroll')) scrollsSideways(el, el, problems);
      if (clipped) problems.push('cut off by an overflow:hidden box: ' + describe(el));
      else if (!scrolls && (r.right > box.right + 2 || r.left < box.left - 2))
        problems.push('wider than the page (' + Math.round(r.width) + ' px, column ' + Math.round(box.width) + ' px): ' + describe(el));
      else if (el.tagName !== 'IMG' && (selfOx === 'hidden' || selfOx === 'clip') && overhang(el) > 2)
        problems.push('content cut off inside: ' + describe(el));
    });
    if (document.documentElement.scrollWidth > window.innerWidth + 2)
      problems.push('the page scrolls horizontally (' + document.documentElement.scrollWidth + ' px > ' + window.innerWidth + ' px)');
    const headings = Array.from(article.querySelectorAll('h1, h2, h3')).map(h => h.textContent.replace(/[#¶]/g, '').trim());
    document.body.setAttribute('data-book-check', JSON.stringify({problems: problems, headings: headings}));
  }
  function typesetThenRun() {  // MathJax typesets asynchronously: wait for it when the page loaded it
    const mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
    (mj ? mj.then(run, run) : Promise.resolve().then(run));
  }
  if (document.readyState === 'complete') setTimeout(typesetThenRun, 300);
  else window.addEventListener('load', () => setTimeout(typesetThenRun, 300));
})();
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("check_book: no chromium on PATH (Debian: apt-get install chromium)")


def browser_args(width: int, height: int, profile_dir: str) -> list[str]:
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",  # offline: fail fast
            f"--user-data-dir={profile_dir}", f"--window-size={width},{height}"]


def check_page(page: Path, width: int = 1280, height: int = 2000, timeout: int = 120) -> tuple[list[str], list[str]]:
    """(problems, headings) of one rendered page."""
    copy = page.with_name(f".check-{page.name}")
    source = page.read_text(encoding="utf-8")
    script = f"<script>{CHECK_JS}</script>"
    copy.write_text(source.replace("</body>", script + "</body>") if "</body>" in source else source + script,
                    encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory(prefix="chr-") as profile_dir:
            out = subprocess.run(browser_args(width, height, profile_dir) + ["--virtual-time-budget=15000", "--dump-dom",
                                                                             copy.as_uri()],
                                 capture_output=True, text=True, timeout=timeout)
    finally:
        copy.unlink(missing_ok=True)
    found = re.search(r'data-book-check="([^"]*)"', out.stdout)
    if not found:
        return [f"the checking script did not report (chromium exit {out.returncode}: {out.stderr.strip()[-300:]})"], []
    import html

    result = json.loads(html.unescape(found.group(1)))
    return result["problems"], result["headings"]


def screenshot(page: Path, target: Path, width: int = 1280, height: int = 4000) -> None:
    with tempfile.TemporaryDirectory(prefix="chr-") as profile_dir:
        subprocess.run(browser_args(width, height, profile_dir) + ["--virtual-time-budget=15000", f"--screenshot={target}",
                                                                   page.as_uri()],
                       capture_output=True, timeout=120)


def pages(html_dir: Path) -> list[Path]:
    """The book's pages: index (landing page) and every rendered chapter."""
    found = [p for p in sorted(html_dir.rglob("*.html")) if not p.name.startswith((".", "_"))
             and not {"_static", "_sources", "_images"} & set(p.relative_to(html_dir).parts)
             and p.name not in ("genindex.html", "search.html")]
    return found


def check_book(html_dir: Path, width: int = 1280, screenshots: Path | None = None) -> dict[str, list[str]]:
    """{page: problems} for every page of the book (empty lists where a page passes)."""
    if not (html_dir / "index.html").exists():
        raise SystemExit(f"check_book: no rendered book at {html_dir} (run `make book` first)")
    report = {}
    for page in pages(html_dir):
        rel = page.relative_to(html_dir).as_posix()
        if re.search(r'<meta http-equiv="refresh"', page.read_text(encoding="utf-8"), re.I):
            continue  # a redirect (jupyter-book's index.html -> the root page), checked where it leads
        problems, headings = check_page(page, width)
        stem = page.stem
        if rel.startswith("notebooks/") and re.match(r"\d\d_", stem) and stem not in NO_FINDINGS_NEEDED \
                and not any(h.lower().startswith("what we found") for h in headings):
            problems.append('no "What we found" section (headings: ' + "; ".join(headings[:12]) + ")")
        text = re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))
        problems += [f"names {model} but not its {words}" for model, words in MODEL_NOTES.items()
                     if re.search(rf"\b{model}\b", text) and words not in text]
        report[rel] = problems
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            screenshot(page, screenshots / (rel.replace("/", "_").removesuffix(".html") + ".png"), width)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html", nargs="?", type=Path, default=HTML, help=f"rendered book (default: {HTML})")
    ap.add_argument("--width", type=int, default=1280, help="browser window width in px (default 1280)")
    ap.add_argument("--screenshots", type=Path, help="also save a full-page PNG of every page into this folder")
    args = ap.parse_args(argv)
    report = check_book(args.html, args.width, args.screenshots)
    bad = {page: probs for page, probs in report.items() if probs}
    for page, probs in report.items():
        print(f"{'FAIL' if probs else 'ok  '} {page}")
        for p in probs:
            print(f"       - {p}")
    print(f"{len(report)} pages checked in headless Chromium at {args.width} px; {len(bad)} with problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
