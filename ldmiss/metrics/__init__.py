"""Metrics: FID and IS on the shipped MNIST classifier, MSE on missing pixels, memorisation check,
and multiple-imputation quality (coverage, CRPS)."""
from .features import CLASSIFIER_PATH, CLASSIFIER_SHA256, Features, Logits, load_classifier
from .scores import FIDReference, features, fid, inception_score, memorization_ratio, missing_mse
from .uncertainty import central_interval, coverage, crps

__all__ = ["CLASSIFIER_PATH", "CLASSIFIER_SHA256", "Features", "Logits", "load_classifier", "FIDReference",
           "features", "fid", "inception_score", "memorization_ratio", "missing_mse", "central_interval", "coverage", "crps"]
