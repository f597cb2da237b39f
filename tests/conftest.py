"""Shared test fixtures. ``fake_hub``: a local Hugging Face Hub server (see tests/fakehub.py)."""

from fakehub import fake_hub  # noqa: F401  (re-exported as a fixture for every test module)
