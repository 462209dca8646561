"""Metrics on the shipped MNIST classifier: FID, IS, MSE on missing pixels, memorisation check."""
from .features import CLASSIFIER_PATH, CLASSIFIER_SHA256, Features, Logits, load_classifier
from .scores import FIDReference, features, fid, inception_score, memorization_ratio, missing_mse

__all__ = ["CLASSIFIER_PATH", "CLASSIFIER_SHA256", "Features", "Logits", "load_classifier", "FIDReference",
           "features", "fid", "inception_score", "memorization_ratio", "missing_mse"]
