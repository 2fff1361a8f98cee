"""Synthetic multi-person evaluation: scenes with ground truth, a perturbed-ground-truth estimator, metrics."""
