"""Reading finished runs: run folders, comparability, tables and their statistics, sweeps, W&B
groups, and the report figures (curves, confusion matrices, t-SNE)."""
