"""Test configuration: the hypothesis profile comes from HYPOTHESIS_PROFILE (default ci)."""
import os

from hypothesis import settings

import autonet.testing  # noqa: F401 - registers the ci and thorough profiles

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
