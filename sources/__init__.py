"""Stand-ins for the city's source systems, for tests and the demo."""
