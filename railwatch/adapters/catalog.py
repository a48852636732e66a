"""Kept so that ``railwatch.adapters.catalog`` imports keep working: the catalogs now live in the
package `railwatch.adapters.catalogs`."""

from railwatch.adapters.catalogs import *  # noqa: F403
from railwatch.adapters.catalogs import __all__  # noqa: F401
