"""Data: IDX files, the fetch chains (MNIST, Fashion-MNIST), the user's folders and .npz files, and the
dataset registry."""
from .datasets import (
                       DATASETS,
                       REGISTRY,
                       Dataset,
                       DatasetInfo,
                       dataset_info,
                       load_dataset,
                       load_fashion_mnist,
                       load_mnist,
                       register_dataset,
                       suggest_likelihood,
)
from .idx import IDXError, read_idx, write_idx
from .sources import SOURCES, ChecksumError, DataUnavailable, fetch_dataset, fetch_mnist
from .user import DatasetError, is_user_dataset

__all__ = ["DATASETS", "REGISTRY", "Dataset", "DatasetInfo", "dataset_info", "load_dataset", "register_dataset",
           "load_mnist", "load_fashion_mnist", "suggest_likelihood", "IDXError", "read_idx", "write_idx", "SOURCES",
           "ChecksumError", "DataUnavailable", "fetch_dataset", "fetch_mnist", "DatasetError", "is_user_dataset"]
