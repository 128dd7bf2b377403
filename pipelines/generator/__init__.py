"""Deterministic demo data generators that write feed deliveries into a landing zone.

`generate_payment` writes the two payment feeds (the spine's demo); `generate_city` makes all
eleven feeds of one consistent city, day by day (see cityday.py for the row API), and
`write_city` writes them as producers deliver them.
"""

from pipelines.generator.cityday import (
    FEEDS,
    CityDay,
    CityRun,
    GeneratedCity,
    generate_city,
    generate_city_day,
    write_city,
    write_day,
)
from pipelines.generator.dirt import CityDirt, FeedDirt
from pipelines.generator.files import write_csv
from pipelines.generator.fuel import FuelBalance
from pipelines.generator.payment import DirtyRates, GeneratedPayment, generate_payment

__all__ = [
    "FEEDS",
    "CityDay",
    "CityDirt",
    "CityRun",
    "DirtyRates",
    "FeedDirt",
    "FuelBalance",
    "GeneratedCity",
    "GeneratedPayment",
    "generate_city",
    "generate_city_day",
    "generate_payment",
    "write_city",
    "write_csv",
    "write_day",
]
