"""Test configuration: the hypothesis profile comes from HYPOTHESIS_PROFILE (default ci); fused
kernels compiled by the tests are cached in a temporary directory, not the user's."""
import os
import tempfile

from hypothesis import settings

import autonet.testing  # noqa: F401 - registers the ci and thorough profiles

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
os.environ.setdefault("AUTONET_CACHE_DIR", tempfile.mkdtemp(prefix="autonet-kernels-"))
