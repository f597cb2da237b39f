"""Shared test fixtures. ``fake_hub``: a local Hugging Face Hub server (see tests/fakehub.py);
``fresh`` and ``site``: throwaway installed plugins (see tests/plugin_site.py)."""

from fakehub import fake_hub  # noqa: F401  (re-exported as a fixture for every test module)
from plugin_site import fresh, site  # noqa: F401


import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny-tensor tests on one intra-op thread: on a busy 2-core machine a
    second thread only adds contention (16 small steps went from 0.4 s to 13 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
