"""Helpers of the published formats several data sets share: COCO shapes, numbered label lists,
split lists."""
