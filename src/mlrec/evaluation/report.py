"""The quality report's three forms: a console table, a JSON file and a Recall@K plot (PNG).

Each form carries the dataset name and the protocol line, so a number copied out of any of them
still says how it was measured.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlrec.core import io
from mlrec.core.constants import RECALL_SIZE
from mlrec.evaluation.quality import QualityReport

# drawn on the plot, in this order: (method name, line style)
PLOTTED = (
    ("system", "-"),
    ("recall_order", "--"),
    ("ease_channel", ":"),
    ("seq_channel", ":"),
    ("es_channel", ":"),
    ("ease", "-."),
    ("itemknn", "-."),
    ("als", "-."),
    ("popular_rated", "-"),
    ("popular", "-"),
    ("mf", "-"),
)


def output_paths(out_dir: Path, dataset: str) -> tuple[Path, Path]:
    """``<out>/quality_<dataset>.json`` and ``.png``."""
    return out_dir / f"quality_{dataset}.json", out_dir / f"quality_{dataset}.png"


def format_table(report: QualityReport) -> str:
    """Fixed-width table: one row per method, HitRate/Recall/NDCG at each K, coverage, recall@200."""
    ks = [k for k in (10, report.config["k"]) if k <= report.config["k"]]
    ks = sorted(set(ks))
    cols = (
        [(f"HR@{k}", f"hit_rate@{k}") for k in ks]
        + [(f"R@{k}", f"recall@{k}") for k in ks]
        + [(f"NDCG@{k}", f"ndcg@{k}") for k in ks]
        + [(f"Cov@{ks[-1]}", f"coverage@{ks[-1]}"), (f"R@{RECALL_SIZE}", f"recall@{RECALL_SIZE}")]
    )
    u = report.users
    lines = [
        f"quality on {report.dataset}: {report.protocol_line}",
        f"users: {u['total']} total, {u['evaluated']} evaluated, {u['skipped_no_positive']} skipped "
        f"(no held-out positive), {u['held_out_positives']} held-out positives, "
        f"{u['served_fallback']} answered by the popular fallback",
        f"{'method':<15}" + "".join(f"{name:>9}" for name, _ in cols) + "  source",
    ]
    for m in report.methods:
        cells = "".join(f"{m.metrics[key]:>9.4f}" if key in m.metrics else f"{'-':>9}" for _, key in cols)
        lines.append(f"{m.name:<15}{cells}  {m.source}")
    cand = report.stages[f"candidate_recall@{RECALL_SIZE}"]
    lift = report.stages["ranker_lift"]
    lines.append(f"candidate recall@{RECALL_SIZE}: " + ", ".join(f"{s} {v:.4f}" for s, v in cand.items()))
    per_channel = report.stages["candidate_recall_per_channel"]
    union_key = next(key for key in report.stages if key.startswith("candidate_recall_union@"))
    lines.append(
        "candidate recall per channel: "
        + ", ".join(f"{c} {v:.4f}" for c, v in per_channel.items())
        + f"; union (all {union_key.split('@')[1]}) {report.stages[union_key]:.4f}"
    )
    lines.append(
        "ranker lift (NDCG served - NDCG recall order): " + ", ".join(f"@{k} {lift[f'ndcg@{k}_lift']:+.4f}" for k in ks)
    )
    return "\n".join(lines)


def write_json(report: QualityReport, path: Path) -> None:
    """Strict JSON (no NaN), written atomically; readable by everyone like any docs file."""
    with io.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    path.chmod(0o644)


def plot_recall_curves(report: QualityReport, path: Path) -> None:
    """Recall@K, K = 1..k, for the system, the recall order, the baselines and the single stages."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    by_name = {m.name: m for m in report.methods}
    for name, style in PLOTTED:
        m = by_name.get(name)
        if m is None or not m.curve:
            continue
        k = len(m.curve)
        ax.plot(
            range(1, k + 1),
            m.curve,
            style,
            linewidth=2.2 if name == "system" else 1.5,
            label=f"{m.label}  (R@{k} {m.curve[-1]:.3f})",
        )
    ax.set_xlabel("K (items recommended)")
    ax.set_ylabel("Recall@K (mean over users)")
    ax.set_xlim(1, report.config["k"])
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    u = report.users
    ax.set_title(f"{report.dataset}: Recall@K, served system vs baselines ({u['evaluated']} users)", fontsize=11)
    fig.text(0.5, 0.01, report.protocol_line, ha="center", fontsize=7.5, color="0.3")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    path.chmod(0o644)
