"""CIFAR-10 in every form the ``--data`` option accepts (:func:`load_dataset`): decoded once, cached, split.

``decode_image`` turns any image file into a 32x32 RGB array. (Device batches: ``cifarlab.data.loader``.)
"""

from cifarlab.data.dataset import CifarData, default_cache_dir, load_dataset
from cifarlab.data.images import decode_image
from cifarlab.data.official import CLASSES
from cifarlab.data.split import split_train_val, stratified_subset

__all__ = ["CLASSES", "CifarData", "decode_image", "default_cache_dir", "load_dataset", "split_train_val",
           "stratified_subset"]
