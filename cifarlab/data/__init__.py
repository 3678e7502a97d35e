"""CIFAR-10 in every form the ``--data`` option accepts, cached, split, and on the device.

``load_dataset`` reads the official python version, ImageFolder trees and
archives, or downloads the official archive; ``split_train_val`` holds out a
stratified validation split; ``DeviceLoader`` feeds batches from device memory.
"""

from cifarlab.data.dataset import CifarData, default_cache_dir, load_dataset
from cifarlab.data.images import decode_image
from cifarlab.data.split import split_train_val, stratified_subset

__all__ = ["CifarData", "decode_image", "default_cache_dir", "load_dataset", "split_train_val",
           "stratified_subset"]
