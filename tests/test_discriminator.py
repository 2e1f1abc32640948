import jax
import jax.numpy as jnp
import numpy as np

from qgac_jax.models.discriminator import PatchDiscriminator


def test_patch_logits_shape_and_plain_variables():
    d = PatchDiscriminator(widths=(8, 16, 32))
    x = jnp.zeros((2, 64, 64, 3))
    variables = d.init(jax.random.key(0), x)
    assert set(variables) == {"params"}
    assert d.apply(variables, x).shape == (2, 16, 16, 1)  # two stride-2 convs


def test_spectral_norm_divides_kernels_by_their_largest_singular_value():
    d = PatchDiscriminator(widths=(8, 16), spectral_norm=True)
    x = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3))
    variables = d.init(jax.random.key(0), x)
    assert "batch_stats" in variables
    for _ in range(30):  # power iteration converges on the top singular value
        _, updates = d.apply(variables, x, update_stats=True, mutable=["batch_stats"])
        variables = {**variables, **updates}
    stats = {k: v for layer in variables["batch_stats"].values() for k, v in layer.items()}
    assert len(stats) == 6  # sigma and u of each of the three convolutions
    for conv, p in variables["params"].items():
        kernel = np.asarray(p["kernel"])
        top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        np.testing.assert_allclose(float(stats[f"{conv}/kernel/sigma"]), top, rtol=1e-3, err_msg=conv)
    # Frozen stats: output is deterministic and does not touch batch_stats.
    a = d.apply(variables, x)
    b = d.apply(variables, x)
    np.testing.assert_array_equal(a, b)
