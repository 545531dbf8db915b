"""SynthFood: a generated food data set written in published layouts, so every part of foodmtl runs
end to end on a CPU (``python data_prep/make_synthfood.py``)."""
