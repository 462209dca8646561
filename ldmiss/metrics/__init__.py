"""Metrics: FID and IS on a dataset's shipped metric network, MSE/PSNR/SSIM on missing pixels,
memorisation check, and multiple-imputation quality (coverage, CRPS)."""
from .features import (
                       CLASSIFIER_PATH,
                       CLASSIFIER_SHA256,
                       METRIC_NETWORKS,
                       FeatureError,
                       Features,
                       Logits,
                       load_classifier,
                       metric_network,
)
from .scores import (
                       FIDReference,
                       features,
                       fid,
                       inception_score,
                       memorization_ratio,
                       missing_mse,
                       missing_psnr,
                       missing_ssim,
                       ssim_map,
)
from .uncertainty import central_interval, coverage, crps, energy_score, quantile_crps

__all__ = ["CLASSIFIER_PATH", "CLASSIFIER_SHA256", "METRIC_NETWORKS", "FeatureError", "Features", "Logits",
           "load_classifier", "metric_network", "FIDReference", "features", "fid", "inception_score",
           "memorization_ratio", "missing_mse", "missing_psnr", "missing_ssim", "ssim_map", "central_interval", "coverage",
           "crps", "energy_score", "quantile_crps"]
