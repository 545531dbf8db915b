"""Sweeps: grid expansion, the emitted torchrun / SLURM / W&B texts parsed back (the W&B file checked
with wandb's sweep-config schema and run through wandb's agent), and a real local sweep."""
import contextlib
import io
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

import wandb_records
from foodmtl.cli import main, parser
from foodmtl.config import load_config, save_config
from foodmtl.errors import ConfigError
from foodmtl.errors import PREEMPTED as EXIT_PREEMPTED
from foodmtl.analysis.pools import ProcessPool, WarmPool, Worker
from foodmtl.analysis.sweep import expand, load_spec, require_current, slurm_script, torchrun_commands, wandb_sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"


def write_spec(folder: Path, methods: dict, single_task: list, seeds: list, overrides: list) -> Path:
    spec = {"base": str(TINY), "group": "abl", "seeds": seeds, "methods": methods,
            "single_task": single_task, "overrides": overrides}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def spec_path(tmp_path):
    methods = {"uniform": ["weighting.name=uniform"],
               "manual": ["weighting.name=manual", "weighting.options.weights={dish: 2}"]}
    return write_spec(tmp_path, methods, ["dish", "ingredients"], [0, 1], [f"output_dir={tmp_path}/runs"])


def test_grid_is_methods_times_seeds_then_single_task_baselines(spec_path, tmp_path):
    runs = expand(load_spec(spec_path))
    assert [r.name for r in runs] == ["uniform-s0", "uniform-s1", "manual-s0", "manual-s1", "single-dish-s0",
                                      "single-dish-s1", "single-ingredients-s0", "single-ingredients-s1"]
    cfgs = {r.name: load_config(r.args[0], r.args[1:]) for r in runs}
    assert all(c.tracking.group == "abl" and c.experiment == "abl" and c.run == n for n, c in cfgs.items())
    assert [cfgs[n].train.seed for n in ("manual-s0", "manual-s1")] == [0, 1]
    assert cfgs["manual-s1"].weighting.options == {"weights": {"dish": 2}}
    single = cfgs["single-ingredients-s0"]
    assert single.tasks == ["ingredients"] and single.weighting.name == "uniform"
    assert single.train.best_metric == "ingredients/mAP"
    assert runs[0].folder == tmp_path / "runs" / "abl" / "uniform-s0"


def test_baselines_keep_the_final_model_where_the_methods_do(tmp_path):
    path = write_spec(tmp_path, {"uniform": []}, ["mass"], [0], [f"output_dir={tmp_path}", "train.best_metric=last"])
    runs = {r.name: load_config(r.args[0], r.args[1:]) for r in expand(load_spec(path))}
    assert runs["single-mass-s0"].train.best_metric == runs["uniform-s0"].train.best_metric == "last"


def test_a_bad_override_fails_before_any_run(tmp_path):
    path = write_spec(tmp_path, {"uniform": ["train.epoch=3"]}, [], [0], [])
    with pytest.raises(ConfigError, match="train.epochs"):
        expand(load_spec(path))


def test_torchrun_lines_parse_back_to_the_runs(spec_path):
    runs = expand(load_spec(spec_path))
    lines = torchrun_commands(runs, nproc=4).splitlines()
    assert len(lines) == len(runs)
    for line, run in zip(lines, runs):
        argv = shlex.split(line)
        assert argv[:5] == ["torchrun", "--nproc_per_node=4", "-m", "foodmtl", "train"]
        args = parser().parse_args(argv[4:])
        assert load_config(args.config, args.overrides).run == run.name


def test_slurm_array_has_one_task_per_run(spec_path):
    spec = load_spec(spec_path)
    runs = expand(spec)
    script = slurm_script(spec, runs, gpus=2)
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert f"#SBATCH --array=0-{len(runs) - 1}\n" in script and "#SBATCH --gpus-per-node=2" in script
    cases = re.findall(r"^  (\d+)\) train (.*) ;;$", script, flags=re.M)
    assert [int(i) for i, _ in cases] == list(range(len(runs)))
    for (_, line), run in zip(cases, runs):
        assert shlex.split(line) == [str(run.folder), *run.args]


def test_slurm_array_throttle_limits_the_tasks_running_at_once(spec_path, capsys):
    spec = load_spec(spec_path)
    runs = expand(spec)
    assert f"#SBATCH --array=0-{len(runs) - 1}%3\n" in slurm_script(spec, runs, throttle=3)
    assert main(["sweep", str(spec_path), "--emit", "slurm", "--throttle", "2"]) == 0
    assert f"#SBATCH --array=0-{len(runs) - 1}%2\n" in capsys.readouterr().out
    assert main(["sweep", str(spec_path), "--emit", "slurm", "--throttle", "-1"]) == 2
    assert "--throttle=-1 must be >= 1" in capsys.readouterr().err


def test_wandb_sweep_file_is_a_grid_over_run_names_that_wandbs_schema_accepts(spec_path):
    import sweeps  # wandb[sweeps]: the schema `wandb sweep --controller` and wandb's local controller check

    spec = load_spec(spec_path)
    runs = expand(spec)
    sweep = yaml.safe_load(wandb_sweep(spec, runs))
    assert sweeps.schema_violations_from_proposed_config(sweep) == []
    assert sweeps.schema_violations_from_proposed_config({**sweep, "method": "grdi"})  # the check can fail
    assert sweep["method"] == "grid" and sweep["name"] == "abl" and sweep["project"] == "foodmtl"
    names = sweep["parameters"]["run"]["values"]
    assert names == [r.name for r in runs]
    command = sweep["command"]
    assert command[:2] == ["${env}", sys.executable]  # the venv's interpreter, not the agent's bare `python`
    assert command[command.index("sweep") + 1] == str(spec_path) and command[-1] == "${args}"
    assert (ROOT / sweep["program"]).is_file()  # what `-m foodmtl` runs
    # the agent expands ${args} to --run=NAME
    assert parser().parse_args(["sweep", str(spec_path), f"--run={names[2]}"]).run == [names[2]]


def test_wandb_agent_runs_the_emitted_sweep_file_as_is(synthfood_root, tmp_path, monkeypatch):
    """wandb's own agent code builds the command of one grid point; it trains that run."""
    import wandb
    from wandb import wandb_agent

    overrides = [f"data.root={synthfood_root}", f"output_dir={tmp_path}/runs", "tasks=[dish]", "train.epochs=1",
                 "train.max_steps=1", "data.limit=32", "tracking.wandb=disabled"]
    path = write_spec(tmp_path, {"uniform": ["weighting.name=uniform"]}, [], [0, 1], overrides)
    spec = load_spec(path)
    sweep = yaml.safe_load(wandb_sweep(spec, expand(spec)))
    for name in (wandb.env.DIR, wandb.env.RUN_ID, wandb.env.SWEEP_PARAM_PATH):  # the agent sets these
        monkeypatch.setenv(name, str(tmp_path) if name == wandb.env.DIR else "unset")
    launched = []

    def record(command=None, env=None, **_):
        launched.append((command, env))
        return SimpleNamespace()

    monkeypatch.setattr(wandb_agent, "AgentProcess", record)
    agent = wandb_agent.Agent(api=None, queue=None)
    agent._sweep_command = sweep["command"]  # what the agent takes from the sweep on the server
    agent._command_run({"args": {"run": {"value": "uniform-s1"}}, "program": sweep["program"], "run_id": "r1"})
    (argv, env), = launched
    assert argv[:2] == ["/usr/bin/env", sys.executable] and argv[-1] == "--run=uniform-s1"
    assert subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, timeout=300).returncode == 0
    assert json.loads((tmp_path / "runs" / "abl" / "uniform-s1" / "summary.json").read_text())["steps"] == 1
    assert not (tmp_path / "runs" / "abl" / "uniform-s0").exists()
    with pytest.raises(KeyError, match="program"):  # why the file must name one
        agent._command_run({"args": {"run": {"value": "uniform-s0"}}, "run_id": "r2"})


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def local_sweep(synthfood_root, tmp_path_factory):
    """One real local sweep of 4 runs, the second broken, ``--jobs 2`` on a 2-CPU machine: its exit
    code, stderr and log, and each warm worker's OMP_NUM_THREADS (the worker processes are the cost).
    The broken run's worker exits with it, so a third worker starts; the fourth run always finds a
    worker idle after a run it finished."""
    tmp = tmp_path_factory.mktemp("sweep")
    methods = {"uniform": ["weighting.name=uniform"],
               "broken": ["weighting.name=manual", "weighting.options.weights={dish: -1}"],  # fails at build
               "uncertainty": ["weighting.name=uncertainty"]}
    overrides = [f"data.root={synthfood_root}", f"output_dir={tmp}/runs", "tasks=[dish,cuisine]",
                 "train.epochs=1", "train.max_steps=2", "data.limit=32", "tracking.wandb=offline"]
    spec = write_spec(tmp, methods, ["cuisine"], [3], overrides)
    threads, log, stderr = [], Records(), io.StringIO()
    real_popen = subprocess.Popen

    def recording_popen(command, env=None, **kwargs):
        threads.append(env["OMP_NUM_THREADS"])
        return real_popen(command, env=env, **kwargs)

    logger = logging.getLogger("foodmtl.analysis")  # the sweep's and its pool's
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(log)
    try:
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(stderr):
            patch.delenv("OMP_NUM_THREADS", raising=False)
            patch.setattr("os.cpu_count", lambda: 2)
            patch.setattr(subprocess, "Popen", recording_popen)
            code = main(["sweep", str(spec), "--jobs", "2"])
    finally:
        logger.removeHandler(log)
        logger.setLevel(level)
    return SimpleNamespace(spec=spec, folder=tmp / "runs" / "abl", code=code, stderr=stderr.getvalue(),
                           log=log.messages, threads=threads, args={r.name: r.args for r in expand(load_spec(spec))})


def test_local_sweep_reports_a_failed_run_and_skips_finished_ones(local_sweep):
    assert local_sweep.code == 1
    assert "1 of 4 run(s) failed: broken-s3" in local_sweep.stderr
    folder = local_sweep.folder
    assert not (folder / "broken-s3" / "summary.json").exists()
    for name, tasks in [("uniform-s3", ["dish", "cuisine"]), ("uncertainty-s3", ["dish", "cuisine"]),
                        ("single-cuisine-s3", ["cuisine"])]:
        config = yaml.safe_load((folder / name / "config.yaml").read_text())
        assert (config["tasks"], config["train"]["seed"], config["tracking"]["group"]) == (tasks, 3, "abl")
        assert json.loads((folder / name / "summary.json").read_text())["steps"] == 2
    finished = (folder / "uniform-s3" / "summary.json").stat().st_mtime_ns
    assert main(["sweep", str(local_sweep.spec), "--run", "uniform-s3"]) == 0
    assert (folder / "uniform-s3" / "summary.json").stat().st_mtime_ns == finished


def test_a_finished_run_trained_otherwise_than_its_grid_point_is_refused_not_reused(tmp_path, capsys):
    spec = write_spec(tmp_path, {"uniform": ["weighting.name=uniform", "optim.lr=0.005"]}, [], [0],
                      [f"output_dir={tmp_path}/runs"])
    (run,) = expand(load_spec(spec))
    run.folder.mkdir(parents=True)
    (run.folder / "summary.json").write_text("{}")
    as_asked = load_config(run.args[0], [*run.args[1:], "launch_dir=/elsewhere", "tracking.wandb=offline"])
    save_config(as_asked, run.folder / "config.yaml")   # where and how it logged: no matter
    require_current([run])
    save_config(load_config(run.args[0], [*run.args[1:], "optim.lr=0.003"]), run.folder / "config.yaml")
    with pytest.raises(ConfigError, match=r"uniform-s0 finished with another configuration .*optim.lr \(0.003 there, "
                                          r"0.005 now\); move it away"):
        require_current([run])
    assert main(["sweep", str(spec), "--emit", "torchrun"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "optim.lr" in err
    (run.folder / "config.yaml").unlink()
    with pytest.raises(ConfigError, match="has a summary.json but no config.yaml"):
        require_current([run])


def test_sigterm_to_a_local_sweep_checkpoints_the_running_training_and_exits_143(synthfood_root, tmp_path):
    overrides = [f"data.root={synthfood_root}", f"output_dir={tmp_path}/runs", "train.epochs=50",
                 "train.checkpoint_every=1", "tracking.wandb=disabled"]
    spec = write_spec(tmp_path, {"uniform": ["weighting.name=uniform"]}, [], [0], overrides)
    sweep = subprocess.Popen([sys.executable, "-m", "foodmtl", "sweep", str(spec)], stderr=subprocess.PIPE)
    checkpoint = tmp_path / "runs" / "abl" / "uniform-s0" / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and sweep.poll() is None:
        time.sleep(0.2)
    sweep.send_signal(signal.SIGTERM)
    assert sweep.wait(timeout=120) == EXIT_PREEMPTED, sweep.stderr.read()[-2000:]
    state = torch.load(checkpoint, weights_only=True)["train_state"]
    assert 0 < state["step"] and state["epoch"] < 50


def test_jobs_runs_several_trainings_at_once_with_the_threads_split(local_sweep):
    events = [m.split()[0] if m.startswith("start") else "end" for m in local_sweep.log
              if m.startswith("start") or " ok in " in m]
    assert events[:2] == ["start", "start"]  # the second run started before the first ended
    assert local_sweep.threads == ["1", "1", "1"]  # 3 warm workers for 4 runs: one trained two of them
    for name in ("uniform-s3", "uncertainty-s3", "single-cuisine-s3"):
        assert json.loads((local_sweep.folder / name / "summary.json").read_text())["steps"] == 2


def test_a_run_trained_after_another_in_a_warm_worker_writes_what_its_own_process_writes(local_sweep, tmp_path):
    """single-cuisine-s3, the sweep's last run, trained in a worker that had trained another run;
    again here in a fresh ``foodmtl train`` process: every logged value is the same, bit for bit,
    but the throughput."""
    alone = tmp_path / "alone"
    args = [*local_sweep.args["single-cuisine-s3"], f"output_dir={alone}"]
    subprocess.run([sys.executable, "-m", "foodmtl", "train", *args], check=True, capture_output=True,
                   env=os.environ | {"OMP_NUM_THREADS": "1"})  # as in the sweep's workers: the same sums
    records = {}
    for where, folder in [("worker", local_sweep.folder), ("alone", alone / "abl")]:
        lines = (folder / "single-cuisine-s3" / "metrics.jsonl").read_text().splitlines()
        records[where] = [{k: v for k, v in json.loads(line).items() if k != "train/images_per_s"} for line in lines]
    assert records["worker"] == records["alone"] and len(records["alone"]) >= 2


def test_each_run_of_a_warm_worker_has_its_own_wandb_run_holding_its_own_records(local_sweep):
    for name in ("uniform-s3", "uncertainty-s3", "single-cuisine-s3"):
        run = local_sweep.folder / name
        (segment,) = wandb_records.segments(run)  # one offline W&B run each, in its own folder
        logged = wandb_records.history(segment)
        kept = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert len(logged) == len(kept) and all(map(wandb_records.same_record, logged, kept)), name
        assert wandb_records.exit_code(segment) == 0


def test_a_warm_worker_runs_one_command_after_another_and_exits_after_a_failed_one(tmp_path):
    worker = Worker(dict(os.environ))
    idle: list = []
    for _ in range(2):
        worker.begin(["config", str(TINY)], idle)
        assert wait_for(worker) == 0 and idle == [worker]
        idle.clear()
    worker.begin(["config", str(tmp_path / "missing.yaml")], idle)
    assert wait_for(worker) == 2 and idle == []
    assert worker.process.returncode == 2  # the failed run's worker is gone
    between = Worker(dict(os.environ))
    between.begin(["config", str(TINY)], idle)
    assert wait_for(between) == 0
    between.send_signal(signal.SIGTERM)  # preempted between two runs: a preemption, not a failure
    assert between.process.wait(timeout=60) == EXIT_PREEMPTED


def test_a_worker_started_by_hand_without_its_result_pipe_is_one_error_line():
    proc = subprocess.run([sys.executable, "-m", "foodmtl.worker"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: usage:") and proc.stderr.count("\n") == 1


def test_a_worker_killed_in_a_run_reports_the_signal_and_the_next_run_gets_a_fresh_one(tmp_path):
    pool = WarmPool(1, dict(os.environ))
    first = pool.start(["config", str(TINY)])
    assert wait_for(first) == 0 and pool.idle == [first]
    first.process.kill()  # the idle worker dies (out of memory, say): not handed the next run
    first.process.wait()
    second = pool.start(["train", str(TINY), f"output_dir={tmp_path}", "tracking.wandb=disabled"])
    assert second is not first
    second.process.kill()  # killed in its run
    assert wait_for(second) == -signal.SIGKILL and pool.idle == []
    pool.close()


def test_process_per_run_starts_each_command_in_its_own_process():
    pool = ProcessPool(2, dict(os.environ))
    done = list(pool.run([("a", ["config", str(TINY)]), ("b", ["config", "missing.yaml"])]))
    assert sorted((key, code) for key, code, _ in done) == [("a", 0), ("b", 2)]


def wait_for(handle, timeout: float = 60) -> int | None:
    deadline = time.time() + timeout
    while handle.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    return handle.poll()
