"""Runs -> paper tables: per metric the mean, std and 95 % t-interval over seeds, Δm% against the
single-task baselines, the mean rank, and paired differences to a reference method.

Units: classification and segmentation metrics are fractions in the runs and percent here, in
every output format; regression metrics keep their task's unit, which each run records in its
summary.json (``units``; ``foodmtl.tasks.metric_unit`` says which metric is in it) and runs that
disagree on are refused. Directions: each metric's
task kind declares whether lower is better (``foodmtl.tasks.metric_direction``); "best", ranks,
Δm% and the better/worse marks follow it.

Δm% (Maninis et al. 2019; Vandenhende et al. 2021), positive = better than single-task:

    Δm = 100/T · Σ_t (−1)^{l_t} (M_t − B_t) / B_t,    l_t = 1 where lower is better,

over the T metric columns that have a single-task baseline (a run with exactly one task), B_t the
mean of that task's baseline runs. Δm is computed for each seed of a method against the baseline
*means* (the baselines' seeds need not match), so its mean over seeds is Δm of the method's means
and its interval is the method's seed spread only.

Paired comparison: each multi-task method minus the reference (default ``uniform``), per metric
and for Δm, over the seeds both ran (matched by seed number); a difference whose t-interval
excludes 0 is marked better or worse. Baselines enter only through Δm.

Mean rank (as LibMTL, Nash-MTL and FAMO report it): the multi-task methods ranked on each metric
column by their means (1 = best, ties averaged as ``scipy.stats.rankdata`` does), averaged over
the columns; Δm% is not one of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from foodmtl.config.schema import LAST_EVALUATION
from foodmtl.errors import ConfigError
from foodmtl.utils.registry import unknown_name_error
from foodmtl.analysis.runs import EVAL, TEST, Run
from foodmtl.analysis.scalarization import is_scalarization
from foodmtl.analysis.search_space import override
from foodmtl.analysis.seed_stats import Estimate, estimate, paired_difference
from foodmtl.tasks import Direction, metric_direction, metric_is_fraction, metric_unit

METHOD = "method"
DELTA = "Δm%"
RANK = "mean rank"
SINGLE = "single-task"
PRIMARY = ("top1", "f1_micro", "mAP", "mIoU", "mae")  # metric names that make the default columns
DEFAULT_REFERENCE = "uniform"


@dataclass
class Summary:
    """Every figure of a table, in display units; ``values`` are the metric columns, then Δm%."""

    methods: list[str]                          # multi-task methods A-Z, then the baselines A-Z
    columns: list[str]                          # metric columns
    directions: dict[str, Direction]            # per value (Δm%: max)
    delta_over: list[str]                       # the columns Δm% averages (empty: no baseline, no Δm%)
    seeds: dict[str, list[int]]                 # method -> its seeds
    cells: dict[tuple[str, str], Estimate]      # (method, value) -> over the method's seeds
    ranks: dict[tuple[str, str], float]         # (multi-task method, column) -> rank on that column
    reference: str | None                       # the method the others are paired with; None: no comparison
    paired: dict[tuple[str, str], Estimate]     # (compared method, value) -> method minus reference
    units: dict[str, str] = field(default_factory=dict)  # value -> its display unit ("" where none is known)
    split: str = ""                             # the runs' split the figures are on: test | eval
    figures: str = ""                           # which split and model the figures are (``figures_note``)
    front_dominates: dict[str, bool] = field(default_factory=dict)  # multi-task method -> a scalarization front
    #                                             point dominates it (``analysis/pareto.py``); empty: no front
    chosen: dict[str, str] = field(default_factory=dict)  # method -> how it was tuned (``selection_notes``)

    def unit(self, value: str) -> str:
        return self.units.get(value, "")

    @property
    def values(self) -> list[str]:
        return [*self.columns, DELTA] if self.delta_over else list(self.columns)

    @property
    def multi(self) -> list[str]:
        return [m for m in self.methods if not is_single(m)]

    @property
    def compared(self) -> list[str]:
        """The methods with a paired comparison: every multi-task method but the reference."""
        return [m for m in self.multi if self.reference and m != self.reference]

    def mean_rank(self, method: str) -> float:
        return float(pd.Series([self.ranks.get((method, c), float("nan")) for c in self.columns]).mean())

    def is_best(self, method: str, value: str) -> bool:
        means = pd.Series({m: self.cells[m, value].mean for m in self.multi}, dtype=float)
        best = means.max() if self.directions[value] == "max" else means.min()
        return method in self.multi and self.cells[method, value].mean == best

    def mark(self, method: str, value: str) -> int:
        """+1 / −1 where the paired interval lies wholly on the better / worse side of 0, else 0."""
        diff = self.paired.get((method, value))
        if diff is None or not diff.excludes_zero:
            return 0
        return 1 if (diff.mean > 0) == (self.directions[value] == "max") else -1

    @property
    def resolution(self) -> tuple[float, float, float] | None:
        """(widest and median 95 % half-width of Δm% among the multi-task methods, best − worst Δm%
        mean), or None without Δm% or without two methods with an interval. A half-width below a third
        of the spread: the ends of the table are told apart (the benchmark's target, docs/ablations.md).
        The scalarization points are the front, not methods: they count only in a table of points alone."""
        methods = [m for m in self.multi if not is_scalarization(m)] or self.multi
        cells = [self.cells[m, DELTA] for m in methods] if self.delta_over else []
        cells = [c for c in cells if c.n >= 2]
        if len(cells) < 2:
            return None
        halves, means = [(c.high - c.low) / 2 for c in cells], [c.mean for c in cells]
        return max(halves), float(np.median(halves)), max(means) - min(means)

    def paired_seeds(self, method: str) -> list[int]:
        """Seeds that both ``method`` and the reference ran: the pairs of the comparison."""
        return sorted(set(self.seeds[method]) & set(self.seeds[self.reference]))

    def unpaired_seeds(self, method: str) -> list[int]:
        """Seeds that only one of ``method`` and the reference ran (left out of the comparison)."""
        return sorted(set(self.seeds[method]) ^ set(self.seeds[self.reference]))


def runs_units(runs: list[Run]) -> dict[str, str]:
    """Task -> the unit its runs recorded; ConfigError where two runs name different units."""
    units: dict[str, str] = {}
    where: dict[str, str] = {}
    for run in runs:
        for task, unit in run.units.items():
            if units.setdefault(task, unit) != unit:
                raise ConfigError(f"runs {where[task]} and {run.name} give {task} in different units ({units[task]} "
                                  f"and {unit}); compare runs of one unit, e.g. with --where")
            where.setdefault(task, run.name)
    return units


def reported_split(runs: list[Run], split: str | None = None) -> str:
    """The split a table reports: ``split`` when given, else ``test`` where every run scored its
    selected model on a test split, ``eval`` where none did; runs that differ are refused, so test
    and validation figures never share a table."""
    if split not in (None, TEST, EVAL):
        raise unknown_name_error("split", split, [TEST, EVAL])
    tested = [r.name for r in runs if r.test]
    if split == TEST and len(tested) < len(runs):
        missing = [r.name for r in runs if not r.test]
        raise ConfigError(f"{len(missing)} run(s) have no test figures ({', '.join(missing[:3])}); "
                          "their config set no data.test_split apart from data.eval_split: use --split eval")
    if split is None and 0 < len(tested) < len(runs):
        raise ConfigError(f"{len(tested)} of {len(runs)} runs scored a test split (e.g. {tested[0]}) and the others "
                          "did not: choose the figures with --split test|eval, or the runs with --where")
    return split or (TEST if tested else EVAL)


def figures_note(runs: list[Run], split: str) -> str:
    """What the figures are, for the legend: the split, and how each run's model was chosen."""
    def values(section: str, key: str) -> str:
        found = sorted({str((r.config.get(section) or {}).get(key)) for r in runs})
        return found[0] if len(found) == 1 else f"its {section}.{key}, one of {', '.join(found)}"

    if split == TEST:
        chosen = values("train", "best_metric")
        how = ("the final model" if chosen == LAST_EVALUATION else
               f"chosen on the {values('data', 'eval_split')} split by {chosen}")
        return f"Figures: each run's best.pt ({how}) scored once on the {values('data', 'test_split')} split."
    return f"Figures: each run's last evaluation on its eval split ({values('data', 'eval_split')})."


def selection_notes(runs: list[Run]) -> dict[str, str]:
    """Method -> how a sweep's tuning stage chose its hyperparameters (the runs' ``selection``, the same
    for every seed of a method): criterion, split, trials and the selected values; untuned methods: none."""
    notes = {}
    for run in runs:
        chosen = run.config.get("selection") or {}
        if chosen and run.method not in notes:
            criterion = DELTA if chosen["criterion"] == "dm" else chosen["criterion"]
            values = ", ".join(override(k, v) for k, v in (chosen.get("selected") or {}).items())
            seeds = len(chosen.get("seeds") or [])
            notes[run.method] = (f"chosen by {criterion} on {chosen['split']} over {chosen['trials']} "
                                 f"{chosen.get('sampler', '')} trials ({seeds} seed{'s' if seeds != 1 else ''} "
                                 f"each): {values or 'nothing searched'}")
    return notes


def runs_frame(runs: list[Run], split: str = EVAL) -> pd.DataFrame:
    """One row per run: method, seed, run name, then its figures on ``split`` (``Run.figures``)."""
    return pd.DataFrame([{METHOD: r.method, "seed": r.seed, "run": r.name, **r.figures(split)} for r in runs])


def metric_columns(frame: pd.DataFrame, metrics: list[str] | None = None) -> list[str]:
    if metrics:
        for name in metrics:
            if name not in frame.columns:
                raise unknown_name_error("metric", name, [c for c in frame.columns if "/" in c])
        return metrics
    columns = sorted(c for c in frame.columns if "/" in c and c.split("/", 1)[1] in PRIMARY)
    if not columns:
        raise ConfigError(f"the runs have none of the default metrics ({', '.join(PRIMARY)}); "
                          "choose columns with --metrics")
    return columns


def summarize(frame: pd.DataFrame, metrics: list[str] | None = None, reference: str | None = None,
              units: dict[str, str] | None = None, split: str = "", figures: str = "",
              chosen: dict[str, str] | None = None) -> Summary:
    """Every figure of the table; ``reference``: None for ``uniform`` where it ran, else no comparison;
    ``units``: task -> unit (``runs_units``); ``chosen``: method -> how it was tuned (``selection_notes``)."""
    columns = metric_columns(frame, metrics)
    check_one_run_per_seed(frame)
    frame = in_display_units(frame, columns)
    kept = [m for m, group in frame.groupby(METHOD) if group[columns].notna().any(axis=None)]
    frame = frame[frame[METHOD].isin(kept)]  # e.g. baselines of tasks left out by ``metrics``
    directions: dict[str, Direction] = {c: metric_direction(c) for c in columns} | {DELTA: "max"}
    baselines = single_task_baselines(frame, columns)
    if baselines:
        frame = frame.assign(**{DELTA: delta_m(frame, baselines, directions)})
    methods = sorted(kept, key=lambda m: (is_single(m), m))
    multi = [m for m in methods if not is_single(m)]
    values = [*columns, DELTA] if baselines else columns
    per_seed = {m: group.set_index("seed") for m, group in frame.groupby(METHOD)}
    cells = {(m, v): estimate(per_seed[m][v]) for m in methods for v in values}
    reference = pick_reference(multi, reference)
    paired = {(m, v): paired_difference(per_seed[m][v], per_seed[reference][v])
              for m in multi if reference and m != reference for v in values}
    return Summary(methods=methods, columns=columns, directions=directions, delta_over=list(baselines),
                   seeds={m: sorted(per_seed[m].index) for m in methods}, cells=cells,
                   ranks=column_ranks(cells, multi, columns, directions), reference=reference, paired=paired,
                   units={v: "%" if v == DELTA else metric_unit(v, units or {}) for v in values}, split=split,
                   figures=figures, chosen={m: note for m, note in (chosen or {}).items() if m in methods})


def check_one_run_per_seed(frame: pd.DataFrame) -> None:
    """Seeds pair runs across methods, so a method may hold only one run of each."""
    twice = frame[frame.duplicated([METHOD, "seed"], keep=False)]
    if len(twice):
        first = twice[(twice[METHOD] == twice[METHOD].iloc[0]) & (twice["seed"] == twice["seed"].iloc[0])]
        names = list(first["run"])
        raise ConfigError(f"{first[METHOD].iloc[0]} has {len(names)} runs of seed {first['seed'].iloc[0]} "
                          f"({', '.join(names)}); keep one, e.g. with --where run={names[0]}")


def is_single(method: str) -> bool:
    return method.startswith(SINGLE)


def in_display_units(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Fractions (their kind says which) × 100: percent."""
    return frame.assign(**{c: frame[c] * 100.0 for c in columns if metric_is_fraction(c)})


def single_task_baselines(frame: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    """Metric -> mean of the single-task runs of its own task (none where that mean is 0)."""
    out = {}
    for column in columns:
        values = frame.loc[frame[METHOD] == f"{SINGLE} ({column.split('/')[0]})", column].dropna()
        if len(values) and values.mean() != 0:
            out[column] = float(values.mean())
    return out


def delta_m(frame: pd.DataFrame, baselines: dict[str, float], directions: dict[str, Direction]) -> pd.Series:
    """Per run: Δm% against the baseline means; NaN for baselines and runs lacking a column."""
    terms = [(frame[c] - b) / b * (1.0 if directions[c] == "max" else -1.0) for c, b in baselines.items()]
    return (100.0 * sum(terms) / len(terms)).where(~frame[METHOD].map(is_single))


def column_ranks(cells: dict[tuple[str, str], Estimate], multi: list[str], columns: list[str],
                 directions: dict[str, Direction]) -> dict[tuple[str, str], float]:
    out = {}
    for column in columns:
        means = pd.Series([cells[m, column].mean for m in multi], dtype=float)
        ranks = rankdata(means if directions[column] == "min" else -means, nan_policy="omit")
        out |= {(m, column): float(r) for m, r in zip(multi, ranks)}
    return out

def pick_reference(multi: list[str], name: str | None) -> str | None:
    if name is None:
        return DEFAULT_REFERENCE if DEFAULT_REFERENCE in multi else None
    if name not in multi:
        raise unknown_name_error("reference method", name, multi)
    return name
