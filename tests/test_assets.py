"""The Vega runtime bundle: made once per vl-convert version in the user's cache."""

from __future__ import annotations

import vl_convert

from generator.render.assets import VEGA_BUNDLE, copy_assets, vega_bundle
from generator.render.site import templates_dir


def test_the_bundle_is_made_once_in_the_user_cache_and_copied_into_each_site(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "cache"))
    made = []
    real = vl_convert.javascript_bundle

    def counted():
        made.append(1)
        return real()

    monkeypatch.setattr(vl_convert, "javascript_bundle", counted)
    first = copy_assets(templates_dir(), tmp_path / "site-a")
    second = copy_assets(templates_dir(), tmp_path / "site-b")  # e.g. another artifact store
    assert made == [1]
    assert vega_bundle().parent == tmp_path / "cache"
    assert first == second and f"assets/{VEGA_BUNDLE}" in first
    bundle = vega_bundle().read_bytes()
    assert bundle.startswith(b"(function () {") and len(bundle) > 100_000
    for site in ("site-a", "site-b"):
        assert (tmp_path / site / "assets" / VEGA_BUNDLE).read_bytes() == bundle
