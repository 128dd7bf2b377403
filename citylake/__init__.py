"""citylake: a city's digital-economy lakehouse (城市数字经济数据底座)."""

__version__ = "0.1.0"
