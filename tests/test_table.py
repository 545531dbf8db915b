"""Paper tables and curves from real (tiny) run folders and hand-computed cases: mean ± std and
95 % t-intervals over seeds, Δm% with metric directions, mean rank, paired differences, refusing
runs that measured different things, PNG figures."""
import io
import json
import math
import shutil
import statistics
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
import yaml

from foodmtl.cli import main
from foodmtl.analysis.comparable import check_comparable, select
from foodmtl.config import Config, load_config, to_dict
from foodmtl.errors import ConfigError
from foodmtl.engine.trainer import train
from foodmtl.utils.registry import UnknownNameError
from foodmtl.analysis.runs import Run, load_group, method_name
from foodmtl.analysis.seed_stats import estimate
from foodmtl.analysis.table_formats import render
from foodmtl.analysis.tables import runs_frame, runs_units, summarize
from foodmtl.analysis.curves import seed_mean
TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"
RUNS = {"uniform-s0": [], "uniform-s1": [], "uncertainty-s0": ["weighting.name=uncertainty"],
        "single-dish-s0": ["tasks=[dish]"], "single-ingredients-s0": ["tasks=[ingredients]",
                                                                      "train.best_metric=ingredients/mAP"]}
# known final metrics written over the real ones: (dish/top1, ingredients/f1_micro, ingredients/mAP)
KNOWN = {"uniform-s0": (0.5, 0.2, 0.4), "uniform-s1": (0.7, 0.4, 0.4), "uncertainty-s0": (0.55, 0.5, 0.25),
         "single-dish-s0": (0.5, None, None), "single-ingredients-s0": (None, 0.4, 0.5)}


@pytest.fixture(scope="module")
def runs_dir(synthfood_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for name, extra in RUNS.items():
        cfg = load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={out}", f"run={name}",
                                 "experiment=abl", "tasks=[dish,ingredients]", f"train.seed={name[-1]}",
                                 "train.epochs=2", "train.max_steps=4", "data.limit=32", "tracking.wandb=disabled",
                                 *extra])
        train(cfg)
    return out / "abl"


@pytest.fixture
def known_dir(runs_dir, tmp_path):
    """The real run folders with their figures (the last evaluation and best.pt's on test) replaced by KNOWN."""
    folder = tmp_path / "abl"
    shutil.copytree(runs_dir, folder, ignore=shutil.ignore_patterns("checkpoints"))
    for name, values in KNOWN.items():
        summary = json.loads((folder / name / "summary.json").read_text())
        keys = ("dish/top1", "ingredients/f1_micro", "ingredients/mAP")
        summary["final"] = summary["test"] = {k: v for k, v in zip(keys, values) if v is not None}
        (folder / name / "summary.json").write_text(json.dumps(summary))
    return folder


T1, T2, T3 = 12.7062, 4.3027, 3.1824  # t_{0.975, 1}, t_{0.975, 2}, t_{0.975, 3} from a printed t table
PCT = {"dish/top1": 100.0, "ingredients/f1_micro": 100.0, "ingredients/mAP": 100.0}  # fractions -> %


def set_key(config: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for part in parents:
        config = config.setdefault(part, {})
    config[last] = value


def test_real_runs_summarize_to_their_mean_std_and_delta_m(runs_dir):
    summary = summarize(runs_frame(load_group(str(runs_dir))))
    final = {n: json.loads((runs_dir / n / "summary.json").read_text())["final"] for n in RUNS}
    assert summary.methods == ["uncertainty", "uniform", "single-task (dish)", "single-task (ingredients)"]
    assert {m: len(s) for m, s in summary.seeds.items()} == {"uncertainty": 1, "uniform": 2, "single-task (dish)": 1,
                                                              "single-task (ingredients)": 1}
    for metric in ("dish/top1", "ingredients/mAP"):
        pair = [100 * final["uniform-s0"][metric], 100 * final["uniform-s1"][metric]]
        assert summary.cells["uniform", metric].mean == pytest.approx(statistics.mean(pair))
        assert summary.cells["uniform", metric].std == pytest.approx(statistics.stdev(pair))
    base = {m: final["single-dish-s0" if m.startswith("dish") else "single-ingredients-s0"][m]
            for m in ("dish/top1", "ingredients/f1_micro", "ingredients/mAP")}
    expected = 100 / 3 * sum((final["uncertainty-s0"][m] - b) / b for m, b in base.items())
    assert summary.cells["uncertainty", "Δm%"].mean == pytest.approx(expected)


def test_known_values_by_hand(known_dir):
    summary = summarize(runs_frame(load_group(str(known_dir))))
    top1 = summary.cells["uniform", "dish/top1"]  # 50 % and 70 %
    assert (top1.n, top1.mean, top1.std) == (2, pytest.approx(60), pytest.approx(200 ** 0.5))
    assert (top1.low, top1.high) == pytest.approx((60 - T1 * 10, 60 + T1 * 10), rel=1e-5)  # s/√n = 10
    # Δm per seed against the baseline means 50 (dish/top1), 40 (f1_micro), 50 (mAP):
    # s0: 100/3 * (0/50 - 20/40 - 10/50) = -70/3, s1: 100/3 * (20/50 + 0/40 - 10/50) = 20/3
    delta = summary.cells["uniform", "Δm%"]
    assert (delta.mean, delta.std) == (pytest.approx(-25 / 3), pytest.approx(30 / 2 ** 0.5))
    assert delta.low == pytest.approx(-25 / 3 - T1 * 15, rel=1e-5)
    assert summary.cells["uncertainty", "Δm%"].mean == pytest.approx(100 / 3 * (0.1 + 0.25 - 0.5))
    assert summary.cells["single-task (dish)", "Δm%"].n == 0
    one = summary.cells["uncertainty", "dish/top1"]
    assert one.n == 1 and math.isnan(one.std) and math.isnan(one.low) and not one.excludes_zero
    # ranks: dish/top1 uniform 1, uncertainty 2; f1_micro 2, 1; mAP 1, 2
    assert (summary.mean_rank("uniform"), summary.mean_rank("uncertainty")) == pytest.approx((4 / 3, 5 / 3))
    # uncertainty ran seed 0 only: one pair, no interval, no mark
    assert summary.compared == ["uncertainty"] and summary.unpaired_seeds("uncertainty") == [1]
    assert summary.paired["uncertainty", "ingredients/f1_micro"].mean == pytest.approx(50 - 20)
    assert summary.paired["uncertainty", "ingredients/f1_micro"].n == 1
    assert summary.mark("uncertainty", "ingredients/f1_micro") == 0
    assert summary.resolution is None  # only uniform has two seeds, so only one Δm% interval


def test_resolution_is_the_widest_delta_m_interval_against_the_spread_of_delta_m_means():
    frame = pd.DataFrame([{"method": m, "seed": seed, "run": f"{m}-s{seed}", "dish/top1": v}
                          for m, values in {"a": (0.5, 0.7), "b": (0.8, 0.8), "single-task (dish)": (0.5,)}.items()
                          for seed, v in enumerate(values)])
    summary = summarize(frame)
    # Δm per seed against B = 50: a 0 and +40 (mean 20, s = 28.28, half-width T1 · 20); b +60, +60 (half-width 0)
    assert summary.resolution == pytest.approx((T1 * 20, T1 * 10, 60 - 20), rel=1e-5)  # median of T1 · 20 and 0
    legend = render(summary).splitlines()
    assert f"- Resolution: 95 % half-widths of Δm% up to {T1 * 20:.2f} points, median {T1 * 10:.2f}, against a " \
           f"spread of 40.00 points between the best and the worst multi-task method " \
           f"(ratios {T1 * 20 / 40:.2f}, {T1 * 10 / 40:.2f})." in legend


def test_resolution_leaves_the_scalarization_points_to_the_front():
    values = {"a": (0.5, 0.7), "b": (0.8, 0.8), "scalarization-dish0-mass2": (0.0, 0.4), "single-task (dish)": (0.5,)}
    frame = pd.DataFrame([{"method": m, "seed": seed, "run": f"{m}-s{seed}", "dish/top1": v}
                          for m, vals in values.items() for seed, v in enumerate(vals)])
    summary = summarize(frame)
    assert summary.resolution == pytest.approx((T1 * 20, T1 * 10, 60 - 20), rel=1e-5)  # a and b, as without it
    assert "spread of 40.00 points between the best and the worst multi-task method (ratios " in render(summary)
    assert render(summary).count(", the scalarization points apart.") == 1
    points = summarize(frame[frame["method"].str.startswith(("scalarization", "single"))])
    assert points.resolution is None   # one point: no two intervals


def test_markdown_marks_the_best_multi_task_value(known_dir, capsys):
    assert main(["table", str(known_dir)]) == 0
    out = capsys.readouterr().out
    assert "classification and segmentation metrics in % (fractions × 100, in every format)" in out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0] == ("| method | dish/top1 (%) ↑ | ingredients/f1_micro (%) ↑ | ingredients/mAP (%) ↑ | Δm% ↑ "
                       "| mean rank ↓ | seeds |")
    assert rows[1] == ("| uncertainty | 55.00 ± – [–] | **50.00 ± – [–]** | 25.00 ± – [–] | **-5.00 ± – [–]** "
                       "| 1.67 | 1 |")
    ci = f"{60 - T1 * 10:.2f}, {60 + T1 * 10:.2f}"
    assert rows[2].startswith(f"| uniform | **60.00 ± 14.14 [{ci}]** | 30.00 ± 14.14 [")
    assert rows[2].endswith("| **40.00 ± 0.00 [40.00, 40.00]** | -8.33 ± 21.21 [-198.93, +182.26] | **1.33** | 2 |")
    assert rows[3] == "| single-task (dish) | 50.00 ± – [–] | – | – | – | – | 1 |"
    assert "- Paired differences to uniform" in out
    # seed 0: 55 − 50, 50 − 20, 25 − 40; Δm −5 − (−70/3)
    assert "| uncertainty | +5.00 [–] | +30.00 [–] | -15.00 [–] | +18.33 [–] | 0 (unpaired: 1) |" in out


def test_csv_and_latex(known_dir, tmp_path, capsys):
    assert main(["table", str(known_dir), "--format", "csv", "--out", str(tmp_path / "t.csv")]) == 0
    frame = pd.read_csv(tmp_path / "t.csv").set_index(["method", "value"])
    assert frame.loc[("uncertainty", "ingredients/f1_micro"), "mean"] == pytest.approx(50)  # percent, as markdown
    assert frame.loc[("uncertainty", "ingredients/f1_micro"), "unit"] == "%"
    assert frame.loc[("uniform", "Δm%"), "mean"] == pytest.approx(-25 / 3, abs=1e-4)
    assert frame.loc[("uniform", "mean rank"), "mean"] == pytest.approx(4 / 3, abs=1e-4)
    capsys.readouterr()
    assert main(["table", str(known_dir), "--format", "latex", "--metrics", "ingredients/f1_micro"]) == 0
    tex = capsys.readouterr().out
    assert "method & ingredients/f1\\_micro (\\%) $\\uparrow$ & $\\Delta_m$ (\\%) $\\uparrow$ & mean rank " \
           "$\\downarrow$ & seeds \\\\" in tex
    assert ("uncertainty & \\textbf{50.00 $\\pm$ -- [--]} & \\textbf{+25.00 $\\pm$ -- [--]} & \\textbf{1.00} "
            "& 1 \\\\") in tex
    assert "single-task (dish)" not in tex and "single-task (ingredients) & 40.00 $\\pm$ -- [--] & -- & -- & 1" in tex
    assert tex.startswith("% Figures: each run's best.pt (chosen on the val split") and "\n% Units:" in tex and tex.rstrip().endswith("\\end{tabular}")
    assert tex.count("\\begin{tabular}{lcccc}") == 1 and tex.count("\\begin{tabular}{lccc}") == 1  # + paired table


def test_runs_of_two_groups_need_a_group(known_dir):
    config_path = known_dir / "uncertainty-s0" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["tracking"]["group"] = "other"
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="abl, other"):
        load_group(str(known_dir))
    assert [r.name for r in load_group(str(known_dir), "other")] == ["uncertainty-s0"]
    assert main(["table", str(known_dir)]) == 2


# ---- a hand-computed ablation: three multi-task methods, three baselines, a lower-is-better metric ----
HAND_KEYS = ("dish/top1", "ingredients/mAP", "mass/mae")  # fractions, fractions, grams
HAND = {"uniform": {0: (.50, .40, 10), 1: (.60, .44, 12), 2: (.70, .42, 14), 3: (.64, .46, 12)},
        "famo": {0: (.46, .50, 9), 1: (.55, .52, 11), 2: (.66, .51, 13.5), 4: (.80, .30, 30)},
        "uncertainty": {0: (.55, .45, 12)},
        "single-dish": {0: (.60, None, None), 1: (.70, None, None)},
        "single-ingredients": {0: (None, .50, None)},
        "single-mass": {0: (None, None, 10), 1: (None, None, 14)}}
BASE = (65.0, 50.0, 12.0)  # baseline means in display units: %, %, grams


def hand_dm(top1: float, mAP: float, mae: float) -> float:
    """Δm% of one run (display units); mae is lower-is-better, so its term is negated."""
    return 100 / 3 * ((top1 - BASE[0]) / BASE[0] + (mAP - BASE[1]) / BASE[1] - (mae - BASE[2]) / BASE[2])


def hand_run(method: str, seed: int, values: tuple, **changes) -> Run:
    config = to_dict(Config())
    task = method.removeprefix("single-") if method.startswith("single-") else None
    config |= {"run": f"{method}-s{seed}", "experiment": "hand",
               "tasks": [task] if task else ["dish", "ingredients", "mass"]}
    config["train"]["seed"] = seed
    config["weighting"]["name"] = "uniform" if task else method
    for key, value in changes.items():
        set_key(config, key.replace("__", "."), value)
    final = {k: v for k, v in zip(HAND_KEYS, values) if v is not None}
    return Run(name=config["run"], method=method_name(config), group="hand", seed=seed, config=config, final=final,
               history=[], where="", units={"mass": "g"} if "mass" in config["tasks"] else {})


@pytest.fixture
def hand_runs() -> list[Run]:
    return [hand_run(m, seed, v) for m, seeds in HAND.items() for seed, v in seeds.items()]


def test_interval_is_students_t_by_hand():
    est = estimate([50, 60, 70, float("nan")])  # NaN: a run without the metric
    assert (est.n, est.mean, est.std) == (3, 60, 10)
    assert (est.low, est.high) == pytest.approx((60 - T2 * 10 / 3 ** 0.5, 60 + T2 * 10 / 3 ** 0.5), rel=1e-5)
    one, none = estimate([5.0]), estimate([])
    assert (one.n, one.mean) == (1, 5.0) and math.isnan(one.low) and not one.excludes_zero
    assert none.n == 0 and math.isnan(none.mean)


def test_hand_computed_summary(hand_runs):
    s = summarize(runs_frame(hand_runs))
    assert s.methods == ["famo", "uncertainty", "uniform", "single-task (dish)", "single-task (ingredients)",
                         "single-task (mass)"]
    assert s.columns == ["dish/top1", "ingredients/mAP", "mass/mae"] and s.delta_over == s.columns
    assert s.directions == {"dish/top1": "max", "ingredients/mAP": "max", "mass/mae": "min", "Δm%": "max"}
    top1 = s.cells["uniform", "dish/top1"]  # 50, 60, 70, 64 %: mean 61, std √(246.67/... ) by hand below
    assert top1.mean == pytest.approx(61) and top1.std == pytest.approx(((11 ** 2 + 1 + 9 ** 2 + 3 ** 2) / 3) ** 0.5)
    mae = s.cells["famo", "mass/mae"]  # grams, not percent
    assert mae.mean == pytest.approx(15.875) and s.cells["single-task (mass)", "mass/mae"].mean == pytest.approx(12)
    # Δm per seed against the baseline means (65 %, 50 %, 12 g)
    uniform_dm = [hand_dm(50, 40, 10), hand_dm(60, 44, 12), hand_dm(70, 42, 14), hand_dm(64, 46, 12)]
    famo_dm = [hand_dm(46, 50, 9), hand_dm(55, 52, 11), hand_dm(66, 51, 13.5), hand_dm(80, 30, 30)]
    assert s.cells["uniform", "Δm%"].mean == pytest.approx(statistics.mean(uniform_dm))
    assert s.cells["famo", "Δm%"].std == pytest.approx(statistics.stdev(famo_dm))
    assert s.cells["uncertainty", "Δm%"].mean == pytest.approx(hand_dm(55, 45, 12))
    # mean of per-seed Δm = Δm of the means (the table's point estimate)
    assert s.cells["famo", "Δm%"].mean == pytest.approx(hand_dm(61.75, 45.75, 15.875))
    # ranks: top1 famo 61.75 > uniform 61 > uncertainty 55; mAP famo 45.75 > uncertainty 45 > uniform 43;
    # mae (lower is better) uncertainty 12 = uniform 12 < famo 15.875: the tie shares ranks 1 and 2
    assert [s.ranks[m, "mass/mae"] for m in ("famo", "uncertainty", "uniform")] == [3, 1.5, 1.5]
    assert [s.mean_rank(m) for m in ("famo", "uncertainty", "uniform")] == pytest.approx([5 / 3, 6.5 / 3, 6.5 / 3])
    assert s.is_best("uniform", "mass/mae") and s.is_best("uncertainty", "mass/mae")  # the lowest, tied
    assert not s.is_best("famo", "mass/mae")


def test_hand_computed_paired_comparison(hand_runs):
    s = summarize(runs_frame(hand_runs))
    assert s.reference == "uniform" and s.compared == ["famo", "uncertainty"]
    assert s.unpaired_seeds("famo") == [3, 4]  # uniform's seed 3 and famo's seed 4 are left out
    # famo − uniform on seeds 0, 1, 2: top1 −4, −5, −4; mAP +10, +8, +9; mae −1, −1, −0.5
    for value, diffs, mark in (("dish/top1", [-4, -5, -4], -1), ("ingredients/mAP", [10, 8, 9], 1),
                               ("mass/mae", [-1, -1, -0.5], 1)):
        mean, half = statistics.mean(diffs), T2 * statistics.stdev(diffs) / 3 ** 0.5
        est = s.paired["famo", value]
        assert est.n == 3 and (est.low, est.mean, est.high) == pytest.approx((mean - half, mean, mean + half), rel=1e-4)
        assert s.mark("famo", value) == mark  # lower mae is better: a negative difference is marked better
    dm = [hand_dm(46, 50, 9) - hand_dm(50, 40, 10), hand_dm(55, 52, 11) - hand_dm(60, 44, 12),
          hand_dm(66, 51, 13.5) - hand_dm(70, 42, 14)]
    assert s.paired["famo", "Δm%"].mean == pytest.approx(statistics.mean(dm))
    assert s.paired["famo", "Δm%"].high == pytest.approx(statistics.mean(dm) + T2 * statistics.stdev(dm) / 3 ** 0.5,
                                                         rel=1e-4)
    assert s.paired["uncertainty", "dish/top1"].n == 1 and s.mark("uncertainty", "dish/top1") == 0
    assert all(s.mark("uniform", v) == 0 for v in s.values)  # the reference against itself: no mark


def test_every_format_carries_every_figure(hand_runs):
    s = summarize(runs_frame(hand_runs), units=runs_units(hand_runs))
    md = render(s, "markdown")
    assert ("| method | dish/top1 (%) ↑ | ingredients/mAP (%) ↑ | mass/mae (g) ↓ | Δm% ↑ | mean rank ↓ | seeds |"
            in md)
    rows = {line.split(" | ")[0][2:]: line for line in md.splitlines() if line.startswith("| ")}  # last wins
    famo = next(line for line in md.splitlines() if line.startswith("| famo | **61.75"))  # the main table's
    half = T2 * statistics.stdev([-4, -5, -4]) / 3 ** 0.5
    sd = statistics.stdev([46, 55, 66, 80])
    assert famo.startswith(f"| famo | **61.75 ± {sd:.2f} [{61.75 - T3 * sd / 2:.2f}, {61.75 + T3 * sd / 2:.2f}]** ▼ |")
    assert "**45.75 ± " in famo and " 15.88 ± " in famo and "**15.88" not in famo and "| **1.67** | 4 |" in famo
    assert "▼" in famo.split(" | ")[1] and "▲" in famo.split(" | ")[2] and "▲" in famo.split(" | ")[3]
    assert "| uncertainty | 55.00 ± – [–] | 45.00 ± – [–] | **12.00 ± – [–]** |" in md
    assert "▲" not in rows["uniform"] and "▼" not in rows["uniform"] and "| **12.00 ± 1.63 [" in rows["uniform"]
    paired = next(line for line in md.splitlines() if line.startswith("| famo | -4.33 ["))
    assert f"-4.33 [{-13 / 3 - half:.2f}, {-13 / 3 + half:.2f}] ▼" in paired
    assert paired.endswith("| 0, 1, 2 (unpaired: 3, 4) |")
    assert "▲/▼: the paired difference to uniform" in md

    table = pd.read_csv(io.StringIO(render(s, "csv"))).set_index(["method", "value"])
    row = table.loc[("famo", "dish/top1")]
    assert (row["unit"], row["direction"], row["n"], row["mean"]) == ("%", "max", 4, pytest.approx(61.75))
    assert row["paired_n"] == 3 and row["paired_seeds"] == "0 1 2" and bool(row["significant"])
    assert row["diff_ci_high"] == pytest.approx(-13 / 3 + half, rel=1e-4) and row["rank"] == 1
    assert table.loc[("famo", "mass/mae"), "unit"] == "g" and table.loc[("famo", "mass/mae"), "direction"] == "min"
    assert not bool(table.loc[("uncertainty", "dish/top1"), "significant"])
    assert table.loc[("uniform", "mass/mae"), "best"] and not table.loc[("famo", "mass/mae"), "best"]
    assert pd.isna(table.loc[("uniform", "dish/top1"), "diff_mean"])  # the reference itself
    assert table.loc[("uncertainty", "mean rank"), "mean"] == pytest.approx(6.5 / 3, abs=1e-5)

    tex = render(s, "latex")
    assert "mass/mae (g) $\\downarrow$" in tex and "dish/top1 (\\%) $\\uparrow$" in tex
    assert "famo & \\textbf{61.75 $\\pm$" in tex and "$^{-}$ & \\textbf{45.75" in tex
    assert "% $^{+}$/$^{-}$: the paired difference to uniform" in tex


def test_a_run_without_a_metric_narrows_only_its_figures(hand_runs):
    next(r for r in hand_runs if r.name == "famo-s0").final.pop("ingredients/mAP")
    s = summarize(runs_frame(hand_runs))
    assert s.cells["famo", "ingredients/mAP"].mean == pytest.approx((52 + 51 + 30) / 3)
    assert s.cells["famo", "Δm%"].n == 3 and s.cells["famo", "dish/top1"].n == 4  # Δm of famo-s0 is undefined
    assert s.paired["famo", "ingredients/mAP"].mean == pytest.approx((8 + 9) / 2)
    md = render(s, "markdown")
    assert f"| {(52 + 51 + 30) / 3:.2f} ± " in md and "] (n=3) ▲ |" in md  # over 3 of famo's 4 seeds
    assert "| +8.50 [" in md and "] (n=2) ▲ |" in md  # over 2 of the 3 paired seeds


def test_reference_method_is_chosen_or_absent(hand_runs):
    famo = summarize(runs_frame(hand_runs), reference="famo")
    assert famo.compared == ["uncertainty", "uniform"]
    assert famo.paired["uniform", "dish/top1"].mean == pytest.approx(13 / 3)
    with pytest.raises(UnknownNameError, match="did you mean: famo"):
        summarize(runs_frame(hand_runs), reference="fam0")
    without = summarize(runs_frame([r for r in hand_runs if r.method != "uniform"]))
    assert without.reference is None and without.paired == {}
    assert "No paired comparison: the default reference uniform did not run" in render(without)


def test_two_runs_of_one_seed_are_refused(hand_runs):
    with pytest.raises(ConfigError, match=r"famo has 2 runs of seed 0 \(famo-s0, famo-s0\)"):
        summarize(runs_frame([*hand_runs, hand_run("famo", 0, (.1, .1, 1))]))


def test_runs_of_other_data_or_backbone_are_refused_naming_the_keys(hand_runs):
    check_comparable(hand_runs)  # baselines differ in tasks, weighting and best_metric by design
    other = [*hand_runs, hand_run("famo", 5, (.5, .5, 5), model__backbone="resnet50", data__image_size=224)]
    with pytest.raises(ConfigError) as info:
        check_comparable(other)
    message = str(info.value)
    assert "data.image_size (128: uniform-s0, uniform-s1 and 12 more; 224: famo-s5)" in message
    assert "model.backbone (resnet18: uniform-s0, uniform-s1 and 12 more; resnet50: famo-s5)" in message
    assert "\n" not in message and "--where data.image_size=128" in message
    assert check_comparable(select(other, ["model.backbone=resnet18"])) is None
    assert [r.name for r in select(other, ["data.image_size=224"])] == ["famo-s5"]
    with pytest.raises(ConfigError, match=r"differ in tasks \(\[dish, ingredients, mass\]: uniform-s0, "):
        check_comparable([*hand_runs, hand_run("pcgrad", 0, (.5, .5, 5), tasks=["dish", "mass"])])


def test_seeds_of_one_method_must_share_its_settings(hand_runs):
    changed = [*hand_runs, hand_run("famo", 5, (.5, .5, 5), optim__lr=0.01)]
    with pytest.raises(ConfigError, match=r"the runs of famo differ in optim.lr \(0.001: famo-s0, famo-s1 and 2 more; "
                                          r"0.01: famo-s5\)"):
        check_comparable(changed)
    # other methods may differ in weighting and optimiser settings: that is the ablation
    check_comparable([*hand_runs, hand_run("lr", 0, (.5, .5, 5), optim__lr=0.01, weighting__options={"a": 1})])
    incidental = dict(data__num_workers=7, train__device="cuda", tracking__group="x", resumed_from="a/last.pt")
    check_comparable([*hand_runs, hand_run("famo", 5, (.5, .5, 5), **incidental)])
    extra = hand_run("famo", 6, (.5, .5, 5))
    extra.config |= {"git_sha": "abc", "world_size": 4}  # W&B configs carry provenance keys
    check_comparable([*hand_runs, extra])


def test_where_names_unknown_keys_and_empty_selections(hand_runs):
    with pytest.raises(UnknownNameError, match="did you mean: model.backbone"):
        select(hand_runs, ["model.backbon=resnet50"])
    with pytest.raises(ConfigError, match="no run has model.backbone=resnet50"):
        select(hand_runs, ["model.backbone=resnet50"])
    assert len(select(hand_runs, ["tasks=[mass, dish, ingredients]"])) == 9  # task order does not matter


def test_cli_refuses_a_mixed_folder_in_one_line_and_where_picks_a_setting(known_dir, capsys):
    config_path = known_dir / "uncertainty-s0" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["data"]["image_size"] = 999
    config_path.write_text(yaml.safe_dump(config))
    assert main(["table", str(known_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: these runs measure different things") and "\n" not in err
    assert "data.image_size (" in err and "999: uncertainty-s0" in err
    size = yaml.safe_load((known_dir / "uniform-s0" / "config.yaml").read_text())["data"]["image_size"]
    assert main(["table", str(known_dir), "--where", f"data.image_size={size}"]) == 0
    assert "uncertainty" not in capsys.readouterr().out


@pytest.mark.parametrize("config, method", [
    ({"run": "famo-s2", "tasks": ["a", "b"], "train": {"seed": 2}, "weighting": {"name": "famo"}}, "famo"),
    ({"run": "manual-x2-s0", "tasks": ["a", "b"], "train": {"seed": 0}, "weighting": {"name": "manual"}},
     "manual-x2"),
    ({"run": "uniform-s0-20260101-120000", "tasks": ["a", "b"], "train": {"seed": 0},
      "weighting": {"name": "uniform"}}, "uniform"),
    ({"run": "single-dish-s1", "tasks": ["dish"], "train": {"seed": 1}, "weighting": {"name": "uniform"}},
     "single-task (dish)"),
])
def test_method_names(config, method):
    assert method_name(config) == method


def test_seed_mean_is_the_mean_and_std_at_each_step():
    a = pd.DataFrame({"step": [1, 2], "weight/dish": [1.0, 2.0]})
    b = pd.DataFrame({"step": [1, 2], "weight/dish": [3.0, 2.0]})
    mean, std = seed_mean([a, b], "step")
    assert mean["weight/dish"].tolist() == [2.0, 2.0]
    assert std["weight/dish"].tolist() == pytest.approx([2 ** 0.5, 0.0])


def test_plot_writes_png_figures_and_logs_them_to_wandb(runs_dir, tmp_path):
    assert main(["plot", str(runs_dir), "--out", str(tmp_path), "--wandb", "offline"]) == 0
    for name in ("abl-weights.png", "abl-validation.png"):
        path = tmp_path / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = matplotlib.image.imread(path).shape
        assert width > 400 and height > 300
    offline = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("files/media/images/plots/*.png"))


class FakeWandbRun:
    def __init__(self, folder: Path):
        # as the trainer logs it: the resolved config and provenance, which differs between runs
        self.config = yaml.safe_load((folder / "config.yaml").read_text()) | {"git_sha": folder.name, "world_size": 1}
        self.url = f"https://wandb.ai/ent/proj/runs/{folder.name}"
        self.rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        self.summary = json.loads((folder / "summary.json").read_text())  # what tracker.summary sent W&B

    def scan_history(self):  # W&B rows carry every key, None where a step did not log it
        keys = {k for row in self.rows for k in row}
        return [{k: row.get(k) for k in keys} for row in self.rows]


def test_wandb_runs_read_final_metrics_from_the_history(runs_dir, monkeypatch, capsys):
    import wandb

    calls = []

    class FakeApi:
        def __init__(self, timeout):
            pass

        def runs(self, path, filters):
            calls.append((path, filters))
            return [FakeWandbRun(folder) for folder in sorted(runs_dir.iterdir())]

    monkeypatch.setattr(wandb, "Api", FakeApi)
    runs = load_group("wandb:ent/proj", "abl")
    assert calls == [("ent/proj", {"state": "finished", "group": "abl"})]
    local = {r.name: r for r in load_group(str(runs_dir))}
    for run in runs:
        assert run.final == pytest.approx(local[run.name].final) and run.test == local[run.name].test != {}
        assert run.history == local[run.name].history
    capsys.readouterr()
    monkeypatch.setattr("foodmtl.analysis.wandb_api.require_api", lambda source: None)  # no key or server here
    assert main(["table", "wandb:ent/proj", "--group", "abl", "--format", "csv"]) == 0
    from_wandb = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert main(["table", str(runs_dir), "--format", "csv"]) == 0
    pd.testing.assert_frame_equal(from_wandb, pd.read_csv(io.StringIO(capsys.readouterr().out)))
