"""A sweep's tuning stage: tune every method with the same budget on validation, then test fresh seeds.

A sweep file's ``tune:`` section (docs/ablations.md, "Tuned comparison")::

    tune:
      trials: 8                  # configurations per method and per single-task baseline, the same for all
      sampler: random            # random (seeded) | grid (each grid must have exactly `trials` points)
      seed: 0                    # of the random draws
      seeds: [100]               # training seeds of every trial (the test stage trains the sweep's `seeds`)
      select: dm                 # dm: Δm% against the tuned single-task baselines | a metric, e.g. dish/top1
      space: {optim.lr: {log: [3.0e-4, 1.0e-2]}, optim.weight_decay: [0.0, 0.05]}   # shared by all
      methods: {cagrad: {weighting.options.c: [0.2, 0.4, 0.8]}}                    # each one's own keys

Two stages, each a list of ``foodmtl train`` runs like a plain sweep's grid:

* tune: run ``<method>-t<k>-s<seed>`` (and ``single-<task>-t<k>-s<seed>``) in W&B group and folder
  ``<group>-tune``, apart from the test runs, so no table of ``runs/<group>`` picks a trial up. A trial
  selects its best.pt on and is scored on ``data.eval_split=val``, and never sees the test split
  (``data.test_split=null``).
* test: the finished trials' validation figures (summary.json ``final``) choose one configuration per
  method (``select``), written to ``runs/<group>/tuning.json``; then ``<method>-s<seed>`` trains it on
  the sweep's ``seeds``, again choosing best.pt on val, and scores the test split once. Each test run's
  config records how it was chosen (``selection``), which ``foodmtl table`` prints and checks.

``select: dm``: the baselines are tuned first, each on its task's primary metric; each method's trial
is then scored by Δm% (``foodmtl.analysis.tables.delta_m``, over the same default columns as the
table) against the selected baselines' validation figures. A metric: its task kind's direction; the
baselines still select on their own primary metric. A trial's score is the mean over ``seeds``; a
non-finite score is the worst. Ties go to the earlier trial.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from foodmtl.config import load_config
from foodmtl.errors import ConfigError
from foodmtl.tasks import TASK_KINDS, get_kind, metric_direction
from foodmtl.utils.output import atomic_write
from foodmtl.utils.registry import unknown_name_error
from foodmtl.analysis.search_space import SAMPLERS, Dimension, override, parse_space, trials
from foodmtl.analysis.sweep import SweepRun, SweepSpec, methods_of, single_task_overrides, sweep_run
from foodmtl.analysis.tables import METHOD, PRIMARY, delta_m

log = logging.getLogger(__name__)

STAGES = ("tune", "test", "all")
DM = "dm"
SPLIT = "val"
TRIAL_SPLITS = [f"data.eval_split={SPLIT}", "data.test_split=null"]  # trials never look at the test split
TEST_SPLITS = [f"data.eval_split={SPLIT}"]  # test runs choose best.pt as the trials did; data.test_split scores
TUNE_KEYS = {"trials", "sampler", "seed", "seeds", "select", "space", "methods"}
RECORD = "tuning.json"


@dataclass
class TuneSpec:
    trials: int
    seeds: list[int]
    sampler: str = "random"
    seed: int = 0
    select: str = DM
    space: dict[str, Dimension] = field(default_factory=dict)
    methods: dict[str, dict[str, Dimension]] = field(default_factory=dict)


@dataclass
class Trial:
    candidate: str              # a method, or single-<task>
    index: int                  # k of <candidate>-t<k>
    values: dict[str, Any]      # the drawn configuration
    run: SweepRun


def tune_spec(spec: SweepSpec) -> TuneSpec:
    """The sweep's ``tune:`` section, checked; ConfigError naming the key."""
    raw, where = spec.tune, f"{spec.path}: tune"
    if not raw:
        raise ConfigError(f"{spec.path} has no tune: section, so it has no stages; drop --stage")
    unknown = set(raw) - TUNE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {', '.join(sorted(TUNE_KEYS))}")
    if not isinstance(raw.get("trials"), int) or raw["trials"] < 1 or not raw.get("seeds"):
        raise ConfigError(f"{where} needs trials (>= 1, the same for every method) and seeds (the trials' "
                          "training seeds)")
    tune = TuneSpec(trials=raw["trials"], seeds=[int(s) for s in raw["seeds"]],
                    sampler=str(raw.get("sampler", "random")), seed=int(raw.get("seed", 0)),
                    select=str(raw.get("select", DM)), space=parse_space(raw.get("space") or {}, f"{where}.space"))
    if tune.sampler not in SAMPLERS:
        raise unknown_name_error("tune.sampler", tune.sampler, SAMPLERS)
    known = candidates(spec)
    for name, space in (raw.get("methods") or {}).items():
        if name not in known:
            raise unknown_name_error("tune.methods entry", name, known)
        tune.methods[name] = parse_space(space or {}, f"{where}.methods.{name}")
    if tune.select == DM and not spec.single_task:
        raise ConfigError(f"{where}.select=dm needs single-task baselines (single_task:); or select a metric, "
                          "e.g. dish/top1")
    return tune


def candidates(spec: SweepSpec) -> dict[str, list[str]]:
    """What is tuned, with its fixed overrides: the methods, the scalarization points (each tuned like a
    method, its weights fixed), then ``single-<task>`` per baseline."""
    return methods_of(spec) | {f"single-{t}": single_task_overrides(t, spec) for t in spec.single_task}


def tune_group(spec: SweepSpec) -> str:
    return f"{spec.group}-tune"


def plan_trials(spec: SweepSpec, tune: TuneSpec) -> list[Trial]:
    """Every trial run: per candidate, ``tune.trials`` configurations x ``tune.seeds``."""
    out = []
    for candidate, fixed in candidates(spec).items():
        space = tune.space | tune.methods.get(candidate, {})
        for k, values in enumerate(trials(space, tune.trials, tune.sampler, tune.seed, candidate)):
            drawn = [override(key, value) for key, value in values.items()]
            out += [Trial(candidate, k, values, sweep_run(spec, tune_group(spec), f"{candidate}-t{k}-s{seed}", seed,
                                                          [*fixed, *drawn, *TRIAL_SPLITS]))
                    for seed in tune.seeds]
    return out


def record_path(spec: SweepSpec) -> Path:
    return Path(load_config(spec.base, spec.overrides).output_dir) / spec.group / RECORD


def choose(spec: SweepSpec, tune: TuneSpec, planned: list[Trial]) -> dict[str, Any]:
    """The tuning record from the finished trials (see the module docstring), written to tuning.json;
    ConfigError naming the trials that have not finished."""
    missing = [t.run.name for t in planned if not (t.run.folder / "summary.json").is_file()]
    if missing:
        raise ConfigError(f"{len(missing)} of {len(planned)} tuning trials have not finished ({', '.join(missing[:3])}"
                          f"{', ...' if len(missing) > 3 else ''}): run `foodmtl sweep {spec.path} --stage tune` first")
    figures = trial_figures(planned)
    chosen = {f"single-{t}": choose_one(figures[f"single-{t}"], primary_metric(t)) for t in spec.single_task}
    baselines = {metric: value for t in spec.single_task
                 for metric, value in figures[f"single-{t}"][chosen[f"single-{t}"]["trial"]].items()
                 if metric.split("/", 1)[0] == t and metric.split("/", 1)[1] in PRIMARY}
    for candidate in methods_of(spec):
        scores = dm_scores(figures[candidate], baselines) if tune.select == DM else None
        chosen[candidate] = choose_one(figures[candidate], tune.select, scores)
    values = {(t.candidate, t.index): t.values for t in planned}
    record = {"criterion": tune.select, "split": SPLIT, "sampler": tune.sampler, "seed": tune.seed,
              "trials": tune.trials, "seeds": tune.seeds, "baselines": baselines,
              "methods": {c: {**pick, "overrides": values[c, pick["trial"]],
                              "trial_overrides": [values[c, k] for k in range(tune.trials)]}
                          for c, pick in ((c, chosen[c]) for c in candidates(spec))}}
    path = record_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1)
    atomic_write(path, lambda f: f.write(text.encode()))
    for candidate, entry in record["methods"].items():
        log.info("%s: trial %d of %d by %s = %s (%s)", candidate, entry["trial"], tune.trials, entry["criterion"],
                 entry["score"], ", ".join(override(k, v) for k, v in entry["overrides"].items()) or "no overrides")
    return record


def trial_figures(planned: list[Trial]) -> dict[str, list[dict[str, float]]]:
    """Candidate -> per trial index, its validation figures (summary.json ``final``) averaged over seeds."""
    rows = [{METHOD: t.candidate, "trial": t.index,
             **json.loads((t.run.folder / "summary.json").read_text()).get("final", {})} for t in planned]
    means = pd.DataFrame(rows).groupby([METHOD, "trial"], sort=False).mean()
    out: dict[str, list[dict[str, float]]] = {}
    for (candidate, _), row in means.iterrows():
        out.setdefault(candidate, []).append(row.dropna().to_dict())
    return out


def primary_metric(task: str) -> str:
    return f"{task}/{get_kind(TASK_KINDS[task]).primary_metric}"


def dm_scores(figures: list[dict[str, float]], baselines: dict[str, float]) -> list[float]:
    """Δm% of each trial against ``baselines`` (metric -> the selected baseline's value)."""
    used = {m: b for m, b in baselines.items() if b != 0}
    frame = pd.DataFrame([{METHOD: "trial", **{m: f.get(m, math.nan) for m in used}} for f in figures])
    return [float(v) for v in delta_m(frame, used, {m: metric_direction(m) for m in used})]


def choose_one(figures: list[dict[str, float]], criterion: str, scores: list[float] | None = None) -> dict[str, Any]:
    """The best trial by ``criterion`` (a metric, or Δm% given as ``scores``); non-finite is worst."""
    if scores is None:
        if not any(criterion in f for f in figures):
            raise ConfigError(f"tune.select={criterion} is not among the trials' validation metrics "
                              f"({', '.join(sorted(figures[0]))})")
        scores = [f.get(criterion, math.nan) for f in figures]
    sign = -1.0 if criterion != DM and metric_direction(criterion) == "min" else 1.0
    ranked = [sign * s if math.isfinite(s) else -math.inf for s in scores]
    best = ranked.index(max(ranked))
    return {"criterion": criterion, "trial": best, "score": finite(scores[best]),
            "scores": [finite(s) for s in scores]}


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def test_runs(spec: SweepSpec, tune: TuneSpec, record: dict[str, Any]) -> list[SweepRun]:
    """``<method>-s<seed>`` (and ``single-<task>-s<seed>``) over the sweep's seeds, each with its selected
    overrides and a ``selection`` record of how they were chosen."""
    runs = []
    for candidate, fixed in candidates(spec).items():
        entry = record["methods"][candidate]
        selection = {"criterion": entry["criterion"], "split": record["split"], "sampler": record["sampler"],
                     "trials": record["trials"], "seeds": record["seeds"], "selected": entry["overrides"],
                     "tuning": str(record_path(spec))}
        extra = [*fixed, *(override(k, v) for k, v in entry["overrides"].items()), *TEST_SPLITS,
                 override("selection", selection)]
        runs += [sweep_run(spec, spec.group, f"{candidate}-s{seed}", seed, extra) for seed in spec.seeds]
    return runs


def stage_runs(spec: SweepSpec, stage: str) -> list[SweepRun]:
    """The runs of ``stage`` (tune | test); test first chooses from the finished trials."""
    tune = tune_spec(spec)
    planned = plan_trials(spec, tune)
    if stage == "tune":
        return [t.run for t in planned]
    return test_runs(spec, tune, choose(spec, tune, planned))
