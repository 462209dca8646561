"""Data: IDX files, the fetch chains (MNIST, Fashion-MNIST), and the dataset registry."""
from .datasets import DATASETS, IMAGE_SHAPES, METRIC_NETWORKS, Dataset, load_dataset, load_fashion_mnist, load_mnist
from .idx import IDXError, read_idx, write_idx
from .sources import SOURCES, ChecksumError, DataUnavailable, fetch_dataset, fetch_mnist

__all__ = ["DATASETS", "IMAGE_SHAPES", "METRIC_NETWORKS", "Dataset", "load_dataset", "load_mnist", "load_fashion_mnist",
           "IDXError", "read_idx", "write_idx", "SOURCES", "ChecksumError", "DataUnavailable", "fetch_dataset", "fetch_mnist"]
