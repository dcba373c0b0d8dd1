"""Every folder under platform/ is a part of the package olist_bi: found here, not listed by
hand (pyproject.toml holds the rest of the metadata, and says why the folder is not named
after the package)."""

from setuptools import find_namespace_packages, setup

setup(packages=["olist_bi", *(f"olist_bi.{name}" for name in find_namespace_packages("platform", exclude=["*__pycache__*"]))])
