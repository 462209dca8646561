"""Metrics on the shipped MNIST classifier: FID, IS, MSE on missing pixels."""
from .features import CLASSIFIER_PATH, CLASSIFIER_SHA256, Features, Logits, load_classifier
from .scores import FIDReference, fid, inception_score, missing_mse

__all__ = ["CLASSIFIER_PATH", "CLASSIFIER_SHA256", "Features", "Logits", "load_classifier", "FIDReference",
           "fid", "inception_score", "missing_mse"]
