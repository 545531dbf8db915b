"""Pure drawing: palettes, mask and instance pictures. Runs no model (report figures that do are in
foodmtl.analysis)."""
