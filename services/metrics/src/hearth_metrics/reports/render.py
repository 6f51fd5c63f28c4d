"""Rendering a report's main series as CSV, SVG and PNG (matplotlib, Agg: no browser).

matplotlib renders both formats from one figure with its own rasteriser (Agg), needs no
browser, X server or system library, installs as wheels (~90 MB with numpy and fontTools,
about 2 s from the cache) and is imported only here, when a report is rendered.
"""

from __future__ import annotations

import csv
import io
from typing import Any

SERIES = ("new_members", "contributions", "conversions")


def to_csv(doc: dict[str, Any]) -> str:
    """Totals with their comparison, then the daily series (empty cell: suppressed)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["section", "metric", "day", "current", "previous", "change", "change_ratio"])
    for name, t in doc["totals"].items():
        w.writerow(
            [
                "total",
                name,
                "",
                _cell(t["current"]),
                _cell(t["previous"]),
                _cell(t["change"]),
                _cell(t["change_ratio"]),
            ]
        )
    for row in doc["series"]:
        for name in SERIES:
            w.writerow(["daily", name, row["day"], _cell(row[name]), "", "", ""])
    for name, t in doc["trend"].items():
        w.writerow(["trend_slope_per_day", name, "", _cell(t["slope"]), "", "", ""])
    corr = doc["correlation"]
    w.writerow(["correlation_r", corr["name"], "", _cell(corr["r"]), "", "", ""])
    w.writerow(["correlation_n", corr["name"], "", corr["n"], "", "", ""])
    return out.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def charts(doc: dict[str, Any]) -> tuple[str, bytes]:
    """The daily series (with the contributions' trend line) as SVG text and PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.add_subplot()
    days = [row["day"] for row in doc["series"]]
    xs = list(range(len(days)))
    for name in SERIES:
        ys = [row[name] for row in doc["series"]]
        if any(y is None for y in ys):
            continue  # suppressed under the privacy floor: not drawn at all
        ax.plot(xs, ys, marker="o", markersize=3, label=name.replace("_", " "))
    t = doc["trend"].get("contributions", {})
    if t.get("slope") is not None:
        ax.plot(
            xs,
            [t["slope"] * x + t["intercept"] for x in xs],
            linestyle="--",
            label=f"contributions trend ({t['slope']:+.2f}/day)",
        )
    step = max(1, len(days) // 8)
    ax.set_xticks(xs[::step], [d[5:] for d in days[::step]])
    ax.set_title(f"{doc['period'].capitalize()} from {doc['period_start']} ({doc['time_zone']})")
    ax.set_ylabel("per day")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    svg = io.StringIO()
    fig.savefig(svg, format="svg", metadata={"Date": None})
    png = io.BytesIO()
    fig.savefig(png, format="png")
    return svg.getvalue(), png.getvalue()
