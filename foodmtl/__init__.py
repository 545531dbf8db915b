"""foodmtl: multi-task food recognition on a shared timm backbone."""
__version__ = "0.1.0"
