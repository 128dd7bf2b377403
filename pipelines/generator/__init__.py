"""Deterministic demo data generators that write feed deliveries into a landing zone."""

from pipelines.generator.files import write_csv
from pipelines.generator.payment import DirtyRates, GeneratedPayment, generate_payment

__all__ = ["DirtyRates", "GeneratedPayment", "generate_payment", "write_csv"]
