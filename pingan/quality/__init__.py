"""Quality gate: Great Expectations suites per canonical entity, applied to every batch before commit.

`pingan.quality.gate.validate_batch` is the entry point. Nothing in this package imports Great
Expectations at import time (it costs seconds); only `custom_expectations` does, and it is loaded lazily.
"""
