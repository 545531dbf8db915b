"""Task kinds' evaluation metrics (torchmetrics / pycocotools underneath)."""
