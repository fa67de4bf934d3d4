"""The corruption gallery writes a non-empty PNG+PDF grid with one panel per (corruption, severity)."""

from __future__ import annotations

import numpy as np
import pytest

from harness import DATASETS
from harness.run.gallery import make_gallery


def test_gallery_grid(tmp_path):
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    ds = DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=1, min_utts=2, max_utts=2, seed=3)
    names = ["video-gaussian-blur", "audio-white", "text-asr", "feature-gaussian"]
    fig, paths = make_gallery(ds.splits["test"], names, tmp_path / "gallery", seed=0)
    try:
        assert len(fig.axes) == len(names) * 6
        assert [ax.get_ylabel() for ax in fig.axes[::6]] == names
        for p in paths:
            assert p.exists() and p.stat().st_size > 1000
        img = mpimg.imread(paths[0])
        assert img.shape[0] > 100 and img.shape[1] > 100
        assert np.std(img[..., :3]) > 0.05  # not a blank image
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="names"):
        make_gallery(ds.splits["test"], [], tmp_path / "x")
