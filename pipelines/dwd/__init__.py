"""DWD: typed, normalized, deduplicated facts and dimensions built from ODS by contract rules."""
