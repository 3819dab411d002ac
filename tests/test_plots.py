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


def test_table1_bars_draw_the_means_in_the_given_order_with_readable_names():
    """Twenty models: each bar is its (model, split, protocol) mean, in the order asked for, and the
    rotated names sit far enough apart not to run into each other, all inside the figure."""
    import numpy as np

    models = [f"Model{i:02d}Name" for i in range(20)]
    rows = [dict(dataset="d", metric="Recall", k=10, model=m, split=s, protocol=p, mean=(i + 1) / 100 + (s == "random") / 2
                 + (p == "full") / 4, std=0.001)
            for i, m in enumerate(models) for s in ("temporal", "random") for p in ("full", "in_batch")]
    order = models[::-1]
    fig = plots.table1_bars(pd.DataFrame(rows), "d", models=order)
    assert [ax.get_title() for ax in fig.axes] == ["in_batch protocol", "full protocol"]  # the paper's first
    for ax, full in zip(fig.axes, (0, 1)):
        assert [t.get_text() for t in ax.get_xticklabels()] == order
        heights = sorted((round(p.get_x() + p.get_width() / 2), p.get_height()) for p in ax.patches)
        expected = sorted((x, (int(order[x][5:7]) + 1) / 100 + r / 2 + full / 4) for x in range(20) for r in (0, 1))
        assert np.allclose([h for _, h in heights], [h for _, h in expected])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for ax in fig.axes:
        labels = ax.get_xticklabels()
        ticks = ax.transData.transform([(x, 0) for x in range(len(labels))])[:, 0]
        font_px = labels[0].get_fontsize() * fig.dpi / 72
        rotation = np.deg2rad(labels[0].get_rotation())
        assert np.diff(ticks).min() * np.sin(rotation) > 1.2 * font_px  # parallel names do not touch
        for t in labels:
            e = t.get_window_extent(renderer)
            assert e.x0 >= box.x0 and e.y0 >= box.y0 and e.x1 <= box.x1  # nothing cut off


def test_validation_curves_draw_each_variants_curve_and_mark_its_best_epoch():
    """One panel per model; each variant's line is its mean curve over seeds, its dot the epoch with the
    highest mean score; the profile's variant (the first) is drawn on top."""
    import numpy as np

    rows = [dict(model=m, patience=p, seed=s, epoch=e, valid=(e if e <= 3 else 6 - e) / 10 + s / 100 + (m == "B"))
            for m in ("A", "B") for p, n in ((5, 4), (20, 6)) for s in (0, 1) for e in range(1, n + 1)]
    fig = plots.validation_curves(pd.DataFrame(rows), ncols=2)
    for ax, offset in zip(fig.axes[:2], (0, 1)):
        lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        dots = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
        assert [len(ln.get_xdata()) for ln in lines] == [6, 4]  # patience 20 first, 5 drawn over it
        assert np.allclose(lines[1].get_ydata(), [0.105 + offset, 0.205 + offset, 0.305 + offset, 0.205 + offset])
        assert [(d.get_xdata()[0], round(d.get_ydata()[0], 3)) for d in dots] == [(3, 0.305 + offset)] * 2
    assert [ax.get_title() for ax in fig.axes[:2]] == ["A", "B"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["patience 5", "patience 20", "epoch kept (best)"]
