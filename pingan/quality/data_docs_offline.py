"""Make a built GX Data Docs site render offline: no request leaves the machine.

GX 1.24's page templates load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs, and its
navbar fetches a logo from an S3 address with the data context id in the query. This copies the vendored
files (`pingan/quality/vendor/`, see VENDORED.md there) into the site's `static/vendor/`, points every
page at them by relative path, and uses GX's own logo from the site's `static/images/`. A page that still
loads anything from outside the site is an error, naming the page and the address.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

VENDOR_DIR = Path(__file__).parent / "vendor"
SITE_VENDOR = "static/vendor/"

# Address in GX's templates -> vendored file (relative to VENDOR_DIR).
VENDORED: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/css/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js-1.12.9/umd/popper.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "bootstrap-dark-1.1.0/css/bootstrap-prefers-dark.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free-6.6.0/css/all.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": "vega-5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite-5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed-6.29.0/vega-embed.min.js",
}

# The navbar logo (an outside fetch whose query carries the data context id, `?d=<id>&dId=<id>...`) and
# the dark-mode logo of GX's stylesheet: both become GX's own logo in the site.
_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[^\"'\s)]*")
# A site-relative reference to the site's static folder, at whatever depth GX guessed.
_SITE_STATIC = re.compile(r"((?:href|src)=[\"'])(?:\.\./)*static/")
# Subresource-integrity and CORS attributes: a copy read from file:// has no CORS origin, so a
# `crossorigin` script would be refused there.
_SRI = re.compile(r"\s+(?:integrity|crossorigin)=\"[^\"]*\"")
# What a page loads (not what it links to): src= of any element, href= of <link>, url() in CSS.
_LOADS = re.compile(
    r"<[a-z]+\b[^>]*?\bsrc=[\"'](?:https?:)?//[^\"']+"
    r"|<link\b[^>]*?\bhref=[\"'](?:https?:)?//[^\"']+"
    r"|url\(\s*[\"']?(?:https?:)?//[^\"')]+"
)


class OfflineSiteError(ValueError):
    """A page still loads something from outside the site."""


def make_site_offline(site_dir: Path) -> int:
    """Vendor the assets into `site_dir` and rewrite its pages and GX's stylesheets; returns how many."""
    shutil.copytree(VENDOR_DIR, site_dir / SITE_VENDOR, dirs_exist_ok=True, ignore=_not_assets)
    pages = sorted(
        p for p in site_dir.rglob("*") if p.suffix in (".html", ".css") and SITE_VENDOR not in p.as_posix()
    )
    for page in pages:
        up = "../" * (len(page.relative_to(site_dir).parts) - 1)
        page.write_text(offline_page(page.read_text("utf-8"), up, page.name), encoding="utf-8")
    return len(pages)


def offline_page(text: str, up: str, name: str = "page") -> str:
    """One page with local assets; `up` leads from the page's folder to the site root."""
    for url, local in VENDORED.items():
        text = re.sub(
            r"(<(?:script|link)\b[^>]*?)" + re.escape(url) + r"([\"'][^>]*>)",
            lambda m, local=local: _SRI.sub("", m.group(1) + up + SITE_VENDOR + local + m.group(2)),
            text,
        )
    text = _LOGO.sub(up + "static/images/logo-long.png", text)
    # GX counts a page's depth from the suite name's dots, which misses our deeper validation paths
    text = _SITE_STATIC.sub(lambda m: m.group(1) + up + "static/", text)
    outside = _LOADS.search(text)
    if outside:
        raise OfflineSiteError(
            f"Data Docs page {name} still loads from outside the site: {outside.group(0)[:200]!r} "
            "(expected every asset vendored under pingan/quality/vendor/)"
        )
    return text


def _not_assets(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or n.endswith(".md")]
