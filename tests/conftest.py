"""Fixtures shared by the test files."""
import pytest


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """An empty offline mirror and cache; tests write dataset folders into it."""
    monkeypatch.setenv("DQREC_DATA_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("DQREC_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "mirror").mkdir()
    return tmp_path / "mirror"
