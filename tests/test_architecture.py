"""The layout holds (docs/architecture.md): few top-level modules, kinds asked rather than compared
outside foodmtl/tasks, and the layer contract that `make test` runs with lint-imports."""
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "foodmtl"
KINDS = ("multiclass", "multilabel", "regression", "segmentation", "instances")
# a kind's or a task kind's name compared outside tasks/: ask the kind (get_kind(...).dense, .likelihood, ...)
COMPARISON = re.compile(r"""(\.kind\s*(==|!=|in\b))|((==|!=|in)\s*\(?["'](%s)["'])""" % "|".join(KINDS))


def test_the_top_of_the_package_holds_only_the_entry_points_and_the_errors():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py", "cli.py", "errors.py", "worker.py"]


def test_no_module_outside_tasks_compares_a_kind():
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in PACKAGE.rglob("*.py") if "tasks" not in path.relative_to(PACKAGE).parts
             for number, line in enumerate(path.read_text().splitlines(), start=1) if COMPARISON.search(line)]
    assert not found, "ask the kind instead:\n" + "\n".join(found)


def test_the_comparison_check_catches_what_it_looks_for():
    assert COMPARISON.search('if spec.kind == "segmentation":')
    assert COMPARISON.search("return 0.5 if kinds.get(task) == 'regression' else 1.0")
    assert COMPARISON.search('if t.kind in ("segmentation", "instances"):')
    assert not COMPARISON.search('if get_kind(spec.kind).dense:')
    assert not COMPARISON.search('if kind == "cos":')


def test_an_upward_import_breaks_the_layer_contract(tmp_path):
    """lint-imports on a copy of the package with one upward import (tasks -> engine) fails."""
    copy = tmp_path / "src"
    copy.mkdir()
    subprocess.run(["cp", "-r", str(PACKAGE), str(copy / "foodmtl")], check=True)
    (copy / "foodmtl" / "tasks" / "base.py").open("a").write("\nimport foodmtl.engine.trainer  # upward\n")
    config = PACKAGE.parent / "pyproject.toml"
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--config", str(config), "--no-cache"], cwd=copy, capture_output=True, text=True,
                         env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert run.returncode != 0 and "foodmtl.tasks.base -> foodmtl.engine.trainer" in run.stdout
    kept = subprocess.run([str(lint), "--config", str(config), "--no-cache"], cwd=PACKAGE.parent, capture_output=True,
                          text=True, env={"PYTHONPATH": str(PACKAGE.parent), "PATH": "/usr/bin:/bin"})
    assert kept.returncode == 0, kept.stdout
