"""Plain-text metric tables for the terminal."""
from __future__ import annotations


def metrics_table(metrics: dict[str, float]) -> str:
    """Rows = tasks, columns = metrics, as a fixed-width text table; a key without a task (the
    total ``loss``) goes in the last row, ``all``."""
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        task, _, name = key.rpartition("/")
        rows.setdefault(task or "all", {})[name] = value
    columns = sorted({name for row in rows.values() for name in row})
    lines = [f"{'task':<14}" + "".join(f"{c:>10}" for c in columns)]
    for task, row in sorted(rows.items(), key=lambda item: item[0] == "all"):  # the total last
        cells = "".join(f"{row[c]:>10.4f}" if c in row else f"{'':>10}" for c in columns)
        lines.append(f"{task:<14}{cells}")
    return "\n".join(lines)
