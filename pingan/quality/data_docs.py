"""Great Expectations Data Docs, built as a static site under the lake from the stored SUMMARY results.

The gate runs on an in-memory GX context; this builds a throw-away file context, loads each entity's suite
and every stored validation result (`_quality/validations/...`) into its validation results store, lets
GX render its site, makes it render offline (pingan.quality.data_docs_offline: vendored CSS/JS, no CDN or
logo request), and copies the site to `_quality/data_docs/` in the lake (local disk or S3).
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pingan.core.storage import Store
from pingan.quality.data_docs_offline import make_site_offline
from pingan.quality.results_store import PREFIX
from pingan.quality.suites import load_suite

SITE_PREFIX = f"{PREFIX}/data_docs/"


# the fields of a stored SUMMARY result that GX's validation result takes back
RESULT_FIELDS = ("success", "results", "suite_name", "suite_parameters", "statistics", "meta", "batch_id")


def build_data_docs(lake: Store, suites_dir: Path) -> str | None:
    """Build the site; returns the lake key of its index.html, or None when no validation is stored."""
    keys = [k for k in lake.list(f"{PREFIX}/validations/") if k.endswith(".json")]
    if not keys:
        return None
    from pingan.quality import gx_runtime

    gx_runtime.silence()
    import pingan.quality.custom_expectations  # noqa: F401  the stored results name our expectation types

    with tempfile.TemporaryDirectory(prefix="pingan-docs-") as tmp:
        ctx, site_dir = _site_context(Path(tmp))
        suites: set[str] = set()
        for key in keys:
            data = json.loads(lake.get_bytes(key))
            name = _suite_name(data)
            if name not in suites:
                _add_suite(ctx, name, suites_dir)
                suites.add(name)
            ctx.validation_results_store.set(*_validation_result(key, name, data))
        ctx.build_data_docs(site_names=["pingan"])
        make_site_offline(site_dir)  # vendored assets, no CDN or logo request
        _upload_site(lake, site_dir)
    return SITE_PREFIX + "index.html"


def _site_context(tmp: Path) -> tuple[Any, Path]:
    """A throw-away GX file context under `tmp` with one Data Docs site; the context and the site's folder."""
    import great_expectations as gx

    ctx = gx.get_context(mode="file", project_root_dir=str(tmp))
    site_dir = tmp / "site"
    ctx.add_data_docs_site(
        "pingan",
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return ctx, site_dir


def _suite_name(data: dict) -> str:
    return data.get("suite_name") or (data.get("meta") or {}).get("expectation_suite_name")


def _add_suite(ctx: Any, name: str, suites_dir: Path) -> None:
    """The entity's suite under the name the stored result gives it (`<entity>@...`)."""
    from great_expectations.core import ExpectationSuite

    suite = load_suite(name.split("@", 1)[0], suites_dir)
    ctx.suites.add(ExpectationSuite(**{**suite, "name": name}))


def _validation_result(key: str, name: str, data: dict) -> tuple[Any, Any]:
    """(identifier, result) of one stored SUMMARY result, named by its feed, day and batch."""
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    meta = data.get("meta") or {}
    result = ExpectationSuiteValidationResult(**{k: v for k, v in data.items() if k in RESULT_FIELDS})
    run_time = datetime.fromisoformat(meta.get("run_id", {}).get("run_time") or "2000-01-01T00:00:00+00:00")
    run_name = f"{meta.get('feed')}-{meta.get('load_date')}-{meta.get('batch_id')}"
    ident = ValidationResultIdentifier(
        ExpectationSuiteIdentifier(name),
        RunIdentifier(run_name, run_time),
        key.rsplit("/", 1)[1].removesuffix(".json"),
    )
    return ident, result


def _upload_site(lake: Store, site_dir: Path) -> None:
    """Replace the lake's copy of the site with the one just built."""
    lake.delete_prefix(SITE_PREFIX)
    for path in sorted(site_dir.rglob("*")):
        if path.is_file():
            lake.put_bytes(
                SITE_PREFIX + path.relative_to(site_dir).as_posix(),
                path.read_bytes(),
                _content_type(path.suffix),
            )


def _content_type(suffix: str) -> str:
    return {
        ".html": "text/html; charset=utf-8",
        ".css": "text/css",
        ".js": "application/javascript",
        ".json": "application/json",
        ".png": "image/png",
        ".svg": "image/svg+xml",
        ".woff2": "font/woff2",
        ".otf": "font/otf",
        ".gif": "image/gif",
        ".ico": "image/x-icon",
    }.get(suffix, "application/octet-stream")
