"""Quality gates: Great Expectations suites generated from table contracts, run between layers."""
