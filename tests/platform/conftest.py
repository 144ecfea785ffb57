"""The Amazon-Scientific slice lives in tests/slices.py (fixture `scientific_slice` in tests/conftest.py)."""
from tests.slices import _scientific_slice  # noqa: F401  (imported from here by other suites)
