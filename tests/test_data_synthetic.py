"""The synthetic dataset helpers other tests build on: reproducible and learnable."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic

from cifarlab.data import load_dataset


def test_same_arguments_give_the_same_bytes(tmp_path):
    a = synthetic.make_official_archive(tmp_path / "a.tar.gz")
    b = synthetic.make_official_archive(tmp_path / "b.tar.gz")
    assert a.read_bytes() == b.read_bytes()
    a = synthetic.make_imagefolder_archive(tmp_path / "a.zip", fmt="jpg")
    b = synthetic.make_imagefolder_archive(tmp_path / "b.zip", fmt="jpg")
    assert a.read_bytes() == b.read_bytes()
    assert not np.array_equal(synthetic.make_arrays(2, seed=0)[0], synthetic.make_arrays(2, seed=1)[0])


def test_folder_arguments_get_default_archive_names(tmp_path):
    assert synthetic.make_official_archive(tmp_path).name == "cifar-10-python.tar.gz"
    assert synthetic.make_imagefolder_archive(tmp_path, kind="zip").name == "cifar10.zip"
    with pytest.raises(ValueError, match="kind"):
        synthetic.make_imagefolder_archive(tmp_path / "data.rar")


def _mean_colours(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1, 3).mean(axis=1)


def test_classes_are_learnable_but_not_trivially_identical(tmp_path):
    data = load_dataset(synthetic.make_imagefolder_archive(tmp_path / "d.tar.gz", 6, 4, fmt="jpg"), progress=False)
    # Nearest class-mean colour, fitted on train, is perfect on test even after JPEG...
    means = np.stack([_mean_colours(data.train_images[data.train_labels == k]).mean(axis=0) for k in range(10)])
    distances = ((_mean_colours(data.test_images)[:, None, :] - means[None]) ** 2).sum(-1)
    assert (distances.argmin(axis=1) == data.test_labels).all()
    # ...while images of one class still differ from each other (noise), so a model must generalise.
    same_class = data.train_images[data.train_labels == 0].astype(int)
    assert np.abs(same_class[0] - same_class[1]).mean() > 5
