"""The scale-factor generator: the nine Olist files from a seed (drop.py writes a drop; world.py,
orders.py, geolocation.py and ids.py make its rows; writer.py writes them as Olist does)."""

from olist_bi.generator.drop import GenerateResult, generate

__all__ = ["GenerateResult", "generate"]
