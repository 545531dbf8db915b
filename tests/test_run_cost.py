"""What keeps a run cheap (issue 26 item 6; the figures are benchmarks/run_cost.py's): W&B's offline
start without W&B Launch, and the compact Food2K index."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd

from foodmtl.data.columns import StringColumn
from foodmtl.data.table import COLUMNS, NA_COLUMNS, empty_columns
from foodmtl.tracking.wandb_run import LAUNCH_INPUTS, skip_unstaged_launch_inputs

START_OFFLINE = """
import sys, tempfile
from pathlib import Path
from foodmtl.tracking.wandb_run import WandbWriter
with tempfile.TemporaryDirectory() as folder:
    writer = WandbWriter("offline", Path(folder), "run", {"a": 1}, "project")
    assert writer.run is not None and writer.run.offline
    writer.log({"step": 1, "eval/dish/top1": 0.5})
    writer.finish()
print(sorted(m for m in sys.modules if m.startswith("wandb.sdk.launch")))
"""


def test_an_offline_wandb_run_does_not_import_wandb_launch(tmp_path):
    env = os.environ | {"WANDB_SILENT": "true", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", START_OFFLINE], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_staged_launch_inputs_are_still_applied(monkeypatch):
    applied = []

    class Run:
        def _detect_and_apply_job_inputs(self):
            applied.append(self)

    skip_unstaged_launch_inputs(Run)
    skip_unstaged_launch_inputs(Run)  # once wrapped, left as it is
    monkeypatch.delitem(sys.modules, LAUNCH_INPUTS, raising=False)
    run = Run()
    run._detect_and_apply_job_inputs()
    assert applied == []
    monkeypatch.setitem(sys.modules, LAUNCH_INPUTS, object())  # a Launch job imported it: inputs may be staged
    run._detect_and_apply_job_inputs()
    assert applied == [run]


def test_compact_missing_columns_read_as_unlabelled():
    frame = pd.DataFrame({"image": ["/a/0/1.jpg", "/a/1/2.jpg"], "split": "train", "dish": ["x", "y"],
                          "source": "food2k"})
    plain, compact = empty_columns(frame), empty_columns(frame, compact=True)
    assert list(compact.columns) == list(COLUMNS) == list(plain.columns)
    for column in COLUMNS:
        if column in frame:
            assert compact[column].tolist() == plain[column].tolist()
        elif column in NA_COLUMNS:  # NA, as a data set's own unlabelled rows there
            assert isinstance(compact[column].dtype, pd.CategoricalDtype)
            assert compact[column].isna().all() and compact[column].memory_usage(index=False) < 8 * len(frame)
        else:  # None, as the table's contract says (ingredients, mask, instances, ...)
            assert compact[column].tolist() == [None, None]
    assert compact[compact["split"] == "train"]["category"].isna().all()


def test_string_column_encodes_in_chunks(monkeypatch):
    monkeypatch.setattr(StringColumn, "CHUNK", 3)
    values = ["/d/0/a.jpg", None, "/d/ü/é.png", float("nan"), "", "/d/1/" + "x" * 300, "/d/2/b.jpg"]
    column = StringColumn(values)
    assert column.tolist() == [v if isinstance(v, str) else None for v in values]
    assert column.buffer.dtype == np.uint8 and column.buffer.nbytes == sum(len(v.encode()) for v in values
                                                                           if isinstance(v, str))
