"""The training stream as a tf.data graph (host CPU only; TensorFlow never sees an accelerator).

The IJG single-JPEG path encodes with `EncodeJpegVariableQuality` (libjpeg,
tensor quality, IJG tables, 4:2:0) and decodes with
`decode_jpeg(dct_method="INTEGER_ACCURATE")`, bit-exact with Pillow, which
restore and evaluation use; it runs in tf.data's threads without Python.
Random tables, 4:4:4 / 4:2:2 and double JPEG go through `degrade`'s Pillow
code in `tf.numpy_function`: slower, but the rarer cases. The Q-map is
built in the graph by `qmap_tf` from the tables actually used.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

import qgac_jax.data.degrade as dg
from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax.data.options import DataConfig
from qgac_jax.data.sources import ImageBank, host_share


def import_tf():
    """Imports TensorFlow hidden from every accelerator: it only feeds the host."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banner in users' logs
    try:
        import tensorflow as tf
    except ImportError as err:
        raise ValueError(f"the tf.data pipeline needs TensorFlow, which does not import here ({err}); "
                         "install tensorflow-cpu or set --config.data.pipeline=pillow") from None

    try:
        tf.config.set_visible_devices([], "GPU")
        tf.config.set_visible_devices([], "TPU")
    except (RuntimeError, ValueError):  # already initialised, or no such device type
        pass
    return tf


def qmap_tf(luma, chroma, height: int, width: int, subsampling: Optional[str] = "4:2:0"):
    """In-graph twin of `quantization.qmap`: [8, 8] tables -> float32 [H, W, K].

    `chroma=None` gives the grey map (K = 1). Tables may be any integer or
    float dtype; `height` and `width` are Python ints.
    """
    import tensorflow as tf  # plain import: this runs inside traced tf.data functions

    def tile(table, sv, sh):
        table = tf.repeat(tf.repeat(tf.cast(table, tf.float64), sv, axis=0), sh, axis=1)
        reps = [-(-height // (8 * sv)), -(-width // (8 * sh))]
        return tf.tile(table, reps)[:height, :width]

    channels = [tile(luma, 1, 1)]
    if chroma is not None:
        channels.append(tile(chroma, *qz.SUBSAMPLING_FACTORS[subsampling]))
    return tf.cast(tf.stack(channels, axis=-1) * qz.QMAP_SCALE, tf.float32)


def _ijg_table_bank():
    """[101, 2, 8, 8] int32: the IJG (luma, chroma) tables of every quality (row 0 unused)."""
    bank = np.ones((101, 2, 8, 8), np.int32)
    for q in range(1, 101):
        bank[q] = np.stack(qz.ijg_tables(q))
    return bank


def _pillow_jpeg(crop, seed, quality, use_random, double, config: DataConfig):
    """numpy_function body for what libjpeg-in-TF cannot do: (bytes, file tables, guide tables, target)."""
    rng = np.random.default_rng([int(s) & 0xFFFFFFFF for s in seed])
    tables = dg.draw_tables(rng, int(quality), bool(use_random))
    data, target, guide, grid = dg.jpeg_pair(config, crop, tables, bool(double), rng)
    return data, np.stack(tables).astype(np.int32), np.stack(guide).astype(np.int32), target, grid


def make_example_fn(config: DataConfig, bank: ImageBank, keep_jpeg: bool = False, compact: bool = False):
    """Returns f(index, seed [2] int64) -> example dict, a pure function of its arguments.

    `compact`: uint8 images and 'guide_tables' instead of floats and 'qmap' (see on_device).
    """
    tf = import_tf()
    patch, size, channels = config.patch_size, config.crop_size, config.channels
    flat = tf.constant(bank.flat)
    offsets = tf.constant(bank.offsets)
    shapes = tf.constant(bank.shapes)
    with np.errstate(divide="ignore"):  # weight 0 -> log 0 = -inf: never drawn
        log_probs = tf.constant(np.log(bank.probs)[None, :], tf.float32)
    ijg_bank = tf.constant(_ijg_table_bank())
    ijg_log_luma = tf.constant(np.log(_ijg_table_bank()[1:, 0].astype(np.float64)))  # [100, 8, 8]
    tf_ijg = config.subsampling == "4:2:0" or config.grey  # what EncodeJpegVariableQuality writes

    def example(index, seed):
        seeds = tf.random.experimental.stateless_split(tf.random.experimental.stateless_fold_in(seed, index), 7)
        k = tf.random.stateless_categorical(log_probs, 1, seeds[0], dtype=tf.int32)[0, 0]
        shape = shapes[k]
        img = tf.reshape(flat[offsets[k]: offsets[k] + tf.reduce_prod(shape)], shape)
        img = tf.image.stateless_random_crop(img, [size, size, channels], seeds[1])
        turn = tf.random.stateless_uniform([], seeds[2], 0, 8, dtype=tf.int32)  # 4 rotations x flip
        img = tf.image.rot90(img, turn % 4)
        img = tf.cond(turn >= 4, lambda: tf.image.flip_left_right(img), lambda: img)
        img = tf.ensure_shape(img, [size, size, channels])

        quality = tf.random.stateless_uniform([], seeds[3], config.q_min, config.q_max + 1, dtype=tf.int32)
        use_random = tf.random.stateless_uniform([], seeds[4]) < config.p_random_table
        double = tf.random.stateless_uniform([], seeds[6]) < config.p_double

        def via_pillow():
            data, tables, guide, target, grid = tf.numpy_function(
                lambda im, s, q, r, d: _pillow_jpeg(im, s, q, r, d, config),
                [img, seeds[5], quality, use_random, double], [tf.string, tf.int32, tf.int32, tf.uint8, tf.int32],
                stateful=False,
            )
            return (tf.ensure_shape(data, []), tf.ensure_shape(tables, [2, 8, 8]), tf.ensure_shape(guide, [2, 8, 8]),
                    tf.ensure_shape(target, [patch, patch, channels]), tf.ensure_shape(grid, [2]))

        def via_tf():
            target = img[:patch, :patch]
            data = tf.raw_ops.EncodeJpegVariableQuality(images=target, quality=quality)
            return data, ijg_bank[quality], ijg_bank[quality], target, tf.zeros([2], tf.int32)

        if tf_ijg:
            data, tables, guide, target, grid = tf.cond(use_random | double, via_pillow, via_tf)
        else:
            data, tables, guide, target, grid = via_pillow()
        compressed = tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")
        compressed = tf.ensure_shape(compressed, [patch, patch, channels])
        chroma = None if config.grey else guide[1]
        log_luma = tf.math.log(tf.cast(guide[0], tf.float64))
        effective = tf.argmin(tf.reduce_mean(tf.abs(ijg_log_luma - log_luma), axis=[1, 2]), output_type=tf.int32) + 1
        if compact:
            out = {"compressed": compressed, "target": target, "guide_tables": guide}
        else:
            out = {"compressed": tf.cast(compressed, tf.float32) / 255.0, "target": tf.cast(target, tf.float32) / 255.0,
                   "qmap": qmap_tf(guide[0], chroma, patch, patch, config.subsampling)}
        out |= {
            "tables": tables,
            "quality": tf.where(use_random, 0, quality),
            "effective_quality": effective,
            "grid_shift": grid,
        }
        if keep_jpeg:
            out["jpeg"] = data
        return out

    return example


def make_train_dataset(
    config: DataConfig,
    start_step: int = 0,
    process_index: Optional[int] = None,
    process_count: Optional[int] = None,
    bank: Optional[ImageBank] = None,
    keep_jpeg: bool = False,
    threads: Optional[int] = None,
    compact: bool = False,
):
    """An endless tf.data stream of this host's training batches, from `start_step` on.

    Batch s of host p is a pure function of (config.seed, p, s): a restarted
    run given the step it stopped at sees exactly the batches it would have.
    `threads` bounds tf.data's private thread pool (None: all cores).
    """
    tf = import_tf()
    process_index, local_batch, bank = host_share(config, process_index, process_count, bank)
    example = make_example_fn(config, bank, keep_jpeg, compact)
    host_seed = tf.constant([config.seed, process_index], tf.int64)

    first = int(start_step) * local_batch
    ds = tf.data.Dataset.range(first, 2**62)
    ds = ds.map(lambda i: example(i, host_seed), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(local_batch, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    if threads:
        options.threading.private_threadpool_size = int(threads)
        options.threading.max_intra_op_parallelism = 1
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
