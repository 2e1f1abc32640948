"""Host input pipeline: clean photos in, (JPEG-compressed, clean, Q-map) batches out.

One concept per module:
  config           DataConfig: sources, patch, batch and the degradation recipe
  sources          source strings, image loading, the in-memory image bank
  degrade          the JPEG recipe (single and double JPEG) in NumPy + Pillow
  tf_pipeline      the stream as a tf.data graph (libjpeg inside TensorFlow)
  pillow_pipeline  the same recipe in worker processes, without TensorFlow

Batches are dicts of NumPy arrays: 'compressed' and 'target' [B, P, P, C]
float32 in [0, 1]; 'qmap' [B, P, P, K] (steps / 255) of the *effective*
tables (the file's for a single JPEG, the elementwise max of both saves for a
double one); 'tables' [B, 2, 8, 8] int32, the file's own (luma, chroma);
'quality' [B] int32, the file's IJG quality (0 where a random table was
used); 'effective_quality' [B] int32, the IJG quality nearest the effective
luma table (what the quality estimator learns); 'grid_shift' [B, 2] int32,
where the 8x8 grid of the coarser save starts (non-zero for a double JPEG
whose coarser first save was cropped). B is the per-host batch.
"""

from __future__ import annotations

from typing import Dict, Iterator

import numpy as np

from qgac_jax.data.options import PIPELINES, DataConfig
from qgac_jax.data.sources import (IMAGE_SUFFIXES, ImageBank, build_bank, builtin_files, check_source, list_images,
                                   load_image, load_source, pad_to_patch, parse_source, source_files, to_array)


def train_batches(config: DataConfig, start_step: int = 0, **kwargs) -> Iterator[Dict[str, np.ndarray]]:
    """NumPy batches from `config.pipeline` (`compact=True`: for `on_device.make_prepare`; see the module docstring)."""
    if config.pipeline == "pillow":
        from qgac_jax.data import pillow_pipeline

        return pillow_pipeline.train_batches(config, start_step, **kwargs)
    from qgac_jax.data import tf_pipeline

    return iter(tf_pipeline.make_train_dataset(config, start_step, **kwargs).as_numpy_iterator())


__all__ = ["DataConfig", "IMAGE_SUFFIXES", "ImageBank", "PIPELINES", "build_bank", "builtin_files", "check_source",
           "list_images", "load_image", "load_source", "pad_to_patch", "parse_source", "source_files", "to_array",
           "train_batches"]
