"""Great Expectations, loaded once per process, quietly.

GX costs seconds to import, so nothing here imports it at module level; the first validation pays once
and later ones reuse the ephemeral context and one validation definition per suite variant (a suite plus
a feed's overrides). GX stays quiet: no analytics, no progress bars, and its INFO logging (which Airflow's
structlog set-up would print, e.g. "Skipping registering function ...") is cut at the `great_expectations`
logger only, so our own loggers keep their level.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from typing import Any

# COMPLETE: every failing row index, not GX's default sample of 20. The index "query" string would
# re-filter the whole frame once more per expectation only to print the same indices again.
RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 20,
    "return_unexpected_index_query": False,
}

_lock = threading.RLock()
_definitions: dict[str, Any] = {}


def silence() -> None:
    os.environ["GX_ANALYTICS_ENABLED"] = "False"  # GX's switch for usage statistics; also off in the config
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def _silence_modules() -> None:
    # a few GX modules set their own logger to INFO at import, overriding the parent's level
    for name, logger in list(logging.root.manager.loggerDict.items()):
        is_gx = name.startswith("great_expectations.") and isinstance(logger, logging.Logger)
        if is_gx and logging.NOTSET < logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def _skip_fingerprint() -> None:
    # GX md5-hashes every cell of a DataFrame below 1 GB as a "batch fingerprint" for its result
    # metadata (~0.5 s per 200k incident rows); we never read it, the lake keeps its own file hashes
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


@functools.cache
def _runtime() -> tuple[Any, Any]:
    """The process's ephemeral GX context and its whole-DataFrame batch definition, made on first use."""
    silence()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    import pingan.quality.custom_expectations  # noqa: F401  registers our expectation types with GX

    _silence_modules()
    _skip_fingerprint()
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    ctx = gx.get_context(mode="ephemeral", project_config=config)
    asset = ctx.data_sources.add_pandas("pingan").add_dataframe_asset("batch")
    return ctx, asset.add_batch_definition_whole_dataframe("whole_batch")


def validation_definition(suite: dict) -> Any:
    """The cached GX ValidationDefinition running `suite` (GX suite JSON) on a whole pandas DataFrame."""
    key = hashlib.sha256(json.dumps(suite, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
    with _lock:
        if key in _definitions:
            return _definitions[key]
        context, batch_definition = _runtime()
        import great_expectations as gx
        from great_expectations.core import ExpectationSuite

        name = f"{suite['name']}@{key}"
        gx_suite = context.suites.add(ExpectationSuite(**{**suite, "name": name}))
        vd = gx.ValidationDefinition(name=name, data=batch_definition, suite=gx_suite)
        _definitions[key] = context.validation_definitions.add(vd)
        return _definitions[key]


def run(suite: dict, dataframe: Any, parameters: dict[str, Any] | None = None) -> Any:
    """Validate `dataframe` against `suite` with complete results: every failing row index, not a sample."""
    vd = validation_definition(suite)
    with _lock:  # one GX context per process; validations of concurrent threads take turns
        return vd.run(
            batch_parameters={"dataframe": dataframe},
            expectation_parameters=parameters or None,
            result_format=RESULT_FORMAT,
        )
