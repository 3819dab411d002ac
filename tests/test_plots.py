"""Figures that carry numbers a reader takes from them: what is drawn is what the results say."""
import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from dqrec import plots  # noqa: E402


def test_verdict_overview_draws_each_chapters_counts_in_verdict_colours():
    claims = pd.DataFrame(dict(verdict=["reproduced", "not reproduced", "not reproduced", "not testable here",
                                        "partly reproduced"],
                               evidence=["04_table1", "04_table1", "04_table1#what-we-found", "01_datasets", "01_datasets"]))
    fig = plots.verdict_overview(claims, labels={"04_table1": "Table 1", "01_datasets": "Table 2"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Table 1", "Table 2"]  # the first chapter on top
    bars = {(round(p.get_y() + p.get_height() / 2), matplotlib.colors.to_hex(p.get_facecolor())): p.get_width()
            for p in ax.patches if p.get_width() > 0}
    colour = {v: matplotlib.colors.to_hex(c) for v, c in plots.VERDICT_COLOURS.items()}
    assert bars == {(0, colour["reproduced"]): 1, (0, colour["not reproduced"]): 2,
                    (1, colour["partly reproduced"]): 1, (1, colour["not testable here"]): 1}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["reproduced (1)", "partly reproduced (1)", "not reproduced (2)", "not testable here (1)"]
