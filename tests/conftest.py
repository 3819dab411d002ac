"""Fixtures shared by the test files."""
import pytest


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """An empty offline mirror and cache; tests write dataset folders into it."""
    monkeypatch.setenv("DQREC_DATA_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("DQREC_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "mirror").mkdir()
    return tmp_path / "mirror"


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the module: tiny models ran up to 20x slower with two on the shared 2-core CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
