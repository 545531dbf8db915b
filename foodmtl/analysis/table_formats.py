"""A ``Summary`` as markdown, LaTeX (booktabs) or CSV; each format carries every figure.

markdown / LaTeX: a legend (units, directions, what each figure is), the main table (cells
``mean ± std [95 % interval]``, Δm%, mean rank, seed count; bold = best multi-task value; ▲/▼,
in LaTeX ``^{+}``/``^{-}``, where the paired difference to the reference is significantly
better/worse), then the paired differences to the reference. The LaTeX legend is ``%`` comments
to turn into a caption; a tuned method's legend line says how it was chosen. CSV: one tidy row per
(method, value) with the same figures in the same units and a ``unit`` column, plus a ``mean rank`` row
per multi-task method (tuned runs: a ``chosen`` column); with scalarization runs, a legend line and a
CSV column ``front_dominates`` say which methods their front dominates.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from foodmtl.analysis.scalarization import PREFIX, is_scalarization
from foodmtl.analysis.seed_stats import Estimate
from foodmtl.analysis.tables import DEFAULT_REFERENCE, DELTA, METHOD, RANK, Summary


@dataclass(frozen=True)
class Style:
    pm: str
    dash: str                              # an absent figure
    marks: dict[int, str]                  # Summary.mark -> suffix
    arrows: dict[str, str]                 # direction -> header suffix
    delta: str                             # the Δm% header
    bold: Callable[[str], str]
    escape: Callable[[str], str]
    note: Callable[[list[str]], str]       # legend lines -> text
    grid: Callable[[list[str], list[list[str]]], str]


def render(summary: Summary, fmt: str = "markdown") -> str:
    if fmt == "csv":
        return csv(summary)
    style = LATEX if fmt == "latex" else MARKDOWN
    blocks = [style.note(legend(summary, style)), main_table(summary, style)]
    if summary.compared:
        ref = summary.reference
        blocks += [style.note([f"Paired differences to {ref}: method − {ref} on the seeds both ran, mean "
                               "[95 % t-interval]; % metrics in percentage points."]), paired_table(summary, style)]
    return "\n".join(blocks)


def legend(summary: Summary, style: Style) -> list[str]:
    up, down = style.arrows["max"].strip(), style.arrows["min"].strip()
    lines = [summary.figures] if summary.figures else []
    lines += [f"Units: classification and segmentation metrics in % (fractions × 100, in every format); "
             f"regression metrics in their task's unit (in the header; MAE % in percent). {up} higher / "
             f"{down} lower is better.",
             "Cells: mean ± sample std over seeds [95 % t-interval of the mean]; – where one seed gives none. "
             f"Bold: best multi-task method (the lowest where {down})."]
    if summary.delta_over:
        lines.append(f"Δm%: mean over {', '.join(summary.delta_over)} of ±(M − B)/B × 100 (sign: + where higher "
                     "is better), per seed against the mean B of the single-task baselines; positive = better.")
    else:
        lines.append("No Δm%: no single-task baseline among the runs.")
    if summary.compared:
        better, worse = style.marks[1].strip(), style.marks[-1].strip()
        lines.append(f"{better}/{worse}: the paired difference to {summary.reference} (same seeds) has a 95 % "
                     "t-interval wholly on the better/worse side of 0.")
    elif summary.reference is None:
        lines.append(f"No paired comparison: the default reference {DEFAULT_REFERENCE} did not run (choose one with "
                     "--reference).")
    lines.append(f"Mean rank: over the {len(summary.columns)} metric columns among the multi-task methods (1 = best).")
    if summary.front_dominates:
        lines.append(front_line(summary, style))
    lines += [f"{method}: {summary.chosen[method]}." for method in summary.methods if method in summary.chosen]
    if summary.resolution:
        widest, median, spread = summary.resolution
        ratios = f" (ratios {widest / spread:.2f}, {median / spread:.2f})" if spread > 0 else ""
        lines.append(f"Resolution: 95 % half-widths of Δm% up to {widest:.2f} points, median {median:.2f}, against a "
                     f"spread of {spread:.2f} points between the best and the worst multi-task method{ratios}"
                     f"{', the scalarization points apart' if any(map(is_scalarization, summary.multi)) else ''}.")
    return lines


def front_line(summary: Summary, style: Style) -> str:
    """Which methods the linear-scalarization front dominates (``foodmtl.analysis.pareto``)."""
    points = [m for m in summary.front_dominates if is_scalarization(m)]
    on_front = [m for m in points if not summary.front_dominates[m]]
    others = [m for m in summary.front_dominates if m not in points]

    def listed(methods: list[str]) -> str:
        return ", ".join(style.escape(m) for m in methods) or "none"

    return (f"Front: the {len(on_front)} of {len(points)} {PREFIX}* methods (fixed manual weights) that no other "
            f"dominates on the means of the {len(summary.columns)} metric columns (at least as good on every "
            f"column, better on one). It dominates {listed([m for m in others if summary.front_dominates[m]])}; "
            f"not {listed([m for m in others if not summary.front_dominates[m]])}.")


def main_table(summary: Summary, style: Style) -> str:
    header = [METHOD, *(label(v, summary, style) for v in summary.values), RANK + style.arrows["min"], "seeds"]
    ranks = pd.Series({m: summary.mean_rank(m) for m in summary.multi}, dtype=float)
    rows = []
    for method in summary.methods:
        cells = [value_cell(summary, method, v, style) for v in summary.values]
        rank = ranks.get(method, float("nan"))
        rank_text = style.dash if pd.isna(rank) else f"{rank:.2f}"
        rows.append([style.escape(method), *cells, style.bold(rank_text) if rank == ranks.min() else rank_text,
                     str(len(summary.seeds[method]))])
    return style.grid(header, rows)


def paired_table(summary: Summary, style: Style) -> str:
    header = [METHOD, *(label(v, summary, style) for v in summary.values), "paired seeds"]
    rows = []
    for method in summary.compared:
        shared, unpaired = summary.paired_seeds(method), summary.unpaired_seeds(method)
        seeds = ", ".join(map(str, shared)) + (f" (unpaired: {', '.join(map(str, unpaired))})" if unpaired else "")
        cells = [diff_cell(summary.paired[method, v], len(shared), style) + style.marks[summary.mark(method, v)]
                 for v in summary.values]
        rows.append([style.escape(method), *cells, seeds or style.dash])
    return style.grid(header, rows)


def label(value: str, summary: Summary, style: Style) -> str:
    unit = summary.unit(value)
    name = style.delta if value == DELTA else style.escape(value + (f" ({unit})" if unit else ""))
    return name + style.arrows[summary.directions[value]]


def value_cell(summary: Summary, method: str, value: str, style: Style) -> str:
    est = summary.cells[method, value]
    if est.n == 0:
        return style.dash
    signed = value == DELTA
    text = (f"{number(est.mean, signed)}{style.pm}{style.dash if est.n < 2 else f'{est.std:.2f}'} "
            f"{interval(est, signed, style)}{sample_size(est, len(summary.seeds[method]))}")
    return (style.bold(text) if summary.is_best(method, value) else text) + style.marks[summary.mark(method, value)]


def diff_cell(est: Estimate, pairs: int, style: Style) -> str:
    if est.n == 0:
        return style.dash
    return f"{number(est.mean, True)} {interval(est, True, style)}{sample_size(est, pairs)}"


def number(value: float, signed: bool) -> str:
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def interval(est: Estimate, signed: bool, style: Style) -> str:
    return f"[{style.dash}]" if est.n < 2 else f"[{number(est.low, signed)}, {number(est.high, signed)}]"


def sample_size(est: Estimate, expected: int) -> str:
    """``(n=k)`` where some runs lack the metric, so the figure rests on fewer seeds than the row's."""
    return f" (n={est.n})" if est.n < expected else ""


def csv(summary: Summary) -> str:
    rows = []
    for method in summary.methods:
        rows += [csv_row(summary, method, v) for v in summary.values if summary.cells[method, v].n]
        if method in summary.multi:
            rows.append({METHOD: method, "split": summary.split, "value": RANK, "unit": "", "direction": "min",
                         "seeds": " ".join(map(str, summary.seeds[method])), "mean": summary.mean_rank(method)})
    if summary.chosen:
        rows = [{**row, "chosen": summary.chosen.get(row[METHOD], "")} for row in rows]
    return pd.DataFrame(rows).to_csv(index=False, float_format="%.6g")


def csv_row(summary: Summary, method: str, value: str) -> dict:
    est = summary.cells[method, value]
    row = {METHOD: method, "split": summary.split, "value": value, "unit": summary.unit(value), "direction": summary.directions[value],
           "seeds": " ".join(map(str, summary.seeds[method])), "n": est.n, "mean": est.mean, "std": est.std,
           "ci_low": est.low, "ci_high": est.high}
    if method in summary.multi:
        row |= {"best": summary.is_best(method, value), "rank": summary.ranks.get((method, value)),
                "reference": summary.reference}
    if method in summary.front_dominates:
        row["front_dominates"] = summary.front_dominates[method]
    diff = summary.paired.get((method, value))
    if diff is not None:
        row |= {"paired_seeds": " ".join(map(str, summary.paired_seeds(method))), "paired_n": diff.n,
                "diff_mean": diff.mean, "diff_ci_low": diff.low, "diff_ci_high": diff.high,
                "significant": diff.excludes_zero}
    return row


def markdown_grid(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def latex_grid(header: list[str], rows: list[list[str]]) -> str:
    """A booktabs tabular."""
    return "\n".join(["\\begin{tabular}{l" + "c" * (len(header) - 1) + "}", "\\toprule", " & ".join(header) + " \\\\",
                      "\\midrule", *(" & ".join(row) + " \\\\" for row in rows), "\\bottomrule",
                      "\\end{tabular}"]) + "\n"


def tex_escape(text: str) -> str:
    for char in "&%$#_{}":
        text = text.replace(char, "\\" + char)
    return text


MARKDOWN = Style(pm=" ± ", dash="–", marks={1: " ▲", -1: " ▼", 0: ""}, arrows={"max": " ↑", "min": " ↓"},
                 delta="Δm%", bold=lambda t: f"**{t}**", escape=str,
                 note=lambda lines: "".join(f"- {x}\n" for x in lines), grid=markdown_grid)
LATEX = Style(pm=" $\\pm$ ", dash="--", marks={1: "$^{+}$", -1: "$^{-}$", 0: ""},
              arrows={"max": " $\\uparrow$", "min": " $\\downarrow$"}, delta="$\\Delta_m$ (\\%)",
              bold=lambda t: f"\\textbf{{{t}}}", escape=tex_escape,
              note=lambda lines: "".join(f"% {x}\n" for x in lines), grid=latex_grid)
