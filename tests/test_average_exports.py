"""tools/average_exports: WiSE-FT averages of two real Orbax exports."""

import jax
import numpy as np
import pytest

from qgac_jax.models import exports
from qgac_jax.models import shipped
from qgac_jax.tools import average_exports


def test_the_average_is_the_weighted_sum_leaf_by_leaf_and_bad_pairs_are_one_line(tmp_path, capsys):
    colour = shipped.default_checkpoint(3)
    _, params, config = exports.load_restoration_export(colour)
    doubled = tmp_path / "doubled"
    exports.export_params(str(doubled), jax.tree.map(lambda a: np.asarray(a) * 2, params), config)
    out = tmp_path / "avg"
    assert average_exports.run([str(colour), str(doubled), "--weight", "0.25", "--out", str(out)]) == 0
    _, got, got_config = exports.load_restoration_export(out)
    assert got_config == config
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(got)):
        np.testing.assert_allclose(np.asarray(b), 1.25 * np.asarray(a), rtol=1e-6, atol=1e-8)
    assert average_exports.run([str(colour), str(shipped.default_checkpoint(1).parent / "grey"), "--out",
                                str(tmp_path / "mixed")]) == 2
    assert "are different models" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        average_exports.run([str(colour), str(doubled), "--out", str(out)])  # kept unless --overwrite
    assert "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        average_exports.run([str(colour), str(doubled), "--weight", "1.5", "--out", str(tmp_path / "x")])
