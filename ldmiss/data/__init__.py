"""Data: IDX files, the MNIST fetch chain, and the dataset registry."""
from .datasets import DATASETS, Dataset, load_dataset, load_mnist
from .idx import IDXError, read_idx, write_idx
from .sources import ChecksumError, DataUnavailable, fetch_mnist

__all__ = ["DATASETS", "Dataset", "load_dataset", "load_mnist", "IDXError", "read_idx", "write_idx",
           "ChecksumError", "DataUnavailable", "fetch_mnist"]
