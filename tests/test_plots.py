"""plots.py: the running mean of training returns (against a loop reference), the band
over seeds, and the PNG."""

import numpy as np
import pytest

from purea2c import plots


def _reference(returns, episodes, width):
    """Naive loop: weighted mean of the finite returns in the last ``width`` iterations."""
    out = np.full(returns.shape, np.nan)
    for s in range(returns.shape[0]):
        for i in range(returns.shape[1]):
            lo = max(0, i - width + 1)
            r = returns[s, lo:i + 1]
            w = np.ones_like(r) if episodes is None else episodes[s, lo:i + 1].astype(float)
            ok = np.isfinite(r)
            if (w[ok]).sum() > 0:
                out[s, i] = (r[ok] * w[ok]).sum() / w[ok].sum()
    return out


def test_hand_computed_case():
    returns = np.array([[np.nan, 10.0, 20.0, np.nan, 40.0]])
    episodes = np.array([[0, 1, 3, 0, 1]])
    # width 2: [nan, 10, (10*1 + 20*3)/4 = 17.5, 20, 40]
    np.testing.assert_allclose(plots.running_mean_return(returns, episodes, 2),
                               [[np.nan, 10.0, 17.5, 20.0, 40.0]])
    # unweighted: (10 + 20)/2 = 15 at iteration 3
    np.testing.assert_allclose(plots.running_mean_return(returns, None, 2),
                               [[np.nan, 10.0, 15.0, 20.0, 40.0]])


@pytest.mark.parametrize("width", [1, 3, 7, 50])
def test_matches_the_loop_reference(width):
    rng = np.random.default_rng(width)
    returns = rng.normal(100, 30, (4, 40))
    episodes = rng.integers(0, 4, (4, 40))
    returns[episodes == 0] = np.nan
    np.testing.assert_allclose(plots.running_mean_return(returns, episodes, width),
                               _reference(returns, episodes, width), rtol=1e-12)
    np.testing.assert_allclose(plots.running_mean_return(returns, None, width),
                               _reference(returns, None, width), rtol=1e-12)


def test_band_is_1_96_standard_errors_over_seeds():
    smooth = np.array([[1.0, np.nan], [3.0, 2.0], [5.0, np.nan]])
    mean, half = plots.mean_and_band(smooth)
    np.testing.assert_allclose(mean, [3.0, 2.0])
    np.testing.assert_allclose(half[0], 1.96 * np.std([1, 3, 5], ddof=1) / np.sqrt(3))
    assert half[1] == 0.0  # one seed: no spread


def test_learning_curve_png(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays = {"episode_return": rng.normal(50, 10, (3, 30)),
              "episodes": np.ones((3, 30), np.int32),
              "env_steps": np.tile(np.arange(1, 31) * 256, (3, 1))}
    arrays["episode_return"][:, :4] = np.nan  # no episode finished yet
    plots.plot_learning_curve(arrays, tmp_path / "curve.png", "test", 5)
    with Image.open(tmp_path / "curve.png") as png:
        assert png.format == "PNG" and len(png.convert("RGB").getcolors(1 << 16)) > 10
