"""Fitted maps in the user's cache: read back byte for byte, fitted again when anything changes."""

import numpy as np
import pytest

from generator.analyze import map_cache
from generator.analyze.map_cache import map_key, map_path, remembered
from generator.analyze.projections import fit_tsne, tsne

FITS: list[tuple] = []


def scaled(x: np.ndarray, factor: float) -> dict[str, np.ndarray]:
    """A stand-in fit that records its calls: a dict of arrays."""
    FITS.append((x.shape, factor))
    return {"map": x * factor, "total": np.asarray([x.sum()], np.float32)}


def halved(x: np.ndarray) -> np.ndarray | None:
    """A stand-in fit that records its calls: one array, or None for an empty input."""
    FITS.append((x.shape,))
    return x / 2 if len(x) else None


@pytest.fixture
def cache(tmp_path, monkeypatch):
    FITS.clear()
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_map_is_fitted_once_and_read_back_byte_for_byte(cache):
    x = np.random.default_rng(0).normal(size=(30, 4))
    first = remembered(scaled, x, 2.0)
    again = remembered(scaled, x.astype(np.float64), 2.0)
    assert len(FITS) == 1
    assert sorted(again) == ["map", "total"]
    for name in first:
        assert again[name].dtype == first[name].dtype
        assert again[name].tobytes() == first[name].tobytes()
    assert map_path(map_key(scaled, (x, 2.0))).is_file()
    assert (cache / "maps").is_dir()


def test_a_changed_input_setting_or_function_is_fitted_again(cache):
    x = np.arange(12.0).reshape(6, 2)
    remembered(scaled, x, 2.0)
    remembered(scaled, x + 1e-12, 2.0)  # other values
    remembered(scaled, x, 3.0)  # another setting
    remembered(halved, x)  # another function
    assert len(FITS) == 4
    assert remembered(halved, x).tobytes() == (x / 2).tobytes() and len(FITS) == 4


def test_nothing_fitted_is_not_stored(cache):
    assert remembered(halved, np.zeros((0, 2))) is None
    assert remembered(halved, np.zeros((0, 2))) is None
    assert len(FITS) == 2


def test_a_damaged_entry_is_fitted_again_and_replaced(cache):
    x = np.ones((5, 2))
    path = map_path(map_key(halved, (x,)))
    remembered(halved, x)
    path.write_bytes(b"not a zip file")
    assert remembered(halved, x).tobytes() == (x / 2).tobytes()
    assert len(FITS) == 2
    remembered(halved, x)
    assert len(FITS) == 2  # the replacement is read back


def test_a_cache_that_cannot_be_written_costs_only_time(tmp_path, monkeypatch):
    FITS.clear()
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("MODELATLAS_CACHE", str(blocker))
    x = np.ones((4, 2))
    assert remembered(halved, x).tobytes() == (x / 2).tobytes()
    assert remembered(halved, x).tobytes() == (x / 2).tobytes()
    assert len(FITS) == 2


def test_the_key_changes_with_the_fitting_module_source(cache, monkeypatch):
    x = np.ones((4, 2))
    before = map_key(halved, (x,))
    source = map_cache.Path.read_bytes
    monkeypatch.setattr(map_cache.Path, "read_bytes", lambda self: source(self) + b"# edited")
    assert map_key(halved, (x,)) != before


def test_a_read_back_t_sne_map_is_the_fitted_one(cache):
    x = np.random.default_rng(1).normal(size=(40, 6))
    init = x[:, :2].copy()
    fitted = fit_tsne(x, init)
    assert tsne(x, init).tobytes() == fitted.tobytes()  # fitted, stored
    assert map_path(map_key(fit_tsne, (x, init))).is_file()
    assert tsne(x, init).tobytes() == fitted.tobytes()  # read back
