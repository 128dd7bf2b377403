"""Delivery channels that the platform pulls from: the payment source database and the
government exchange. Files in the landing zone need no client: see `pipelines.landing`."""
