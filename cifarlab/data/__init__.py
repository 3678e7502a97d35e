"""CIFAR-10 in every form the ``--data`` option accepts: decoded once, cached, split.

``load_dataset`` reads the official python version, ImageFolder trees and
archives, or downloads the official archive, and returns a :class:`CifarData`;
``split_train_val`` and ``stratified_subset`` pick deterministic,
class-stratified indices; ``decode_image`` turns any image file into a 32x32
RGB array. (Batches on the training device come from ``cifarlab.data.loader``.)
"""

from cifarlab.data.dataset import CifarData, default_cache_dir, load_dataset
from cifarlab.data.images import decode_image
from cifarlab.data.official import CLASSES
from cifarlab.data.split import split_train_val, stratified_subset

__all__ = ["CLASSES", "CifarData", "decode_image", "default_cache_dir", "load_dataset", "split_train_val",
           "stratified_subset"]
