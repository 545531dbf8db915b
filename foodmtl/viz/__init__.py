"""Figures from runs and models."""
