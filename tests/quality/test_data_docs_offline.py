"""The Data Docs rewrite: every CDN address GX's templates use maps to a vendored file, and a page that
still loads something from outside is refused (the browser test renders a real site)."""

from __future__ import annotations

import re
from pathlib import Path

import great_expectations
import pytest

from pingan.quality.data_docs_offline import VENDOR_DIR, VENDORED, OfflineSiteError, offline_page

TEMPLATES = Path(great_expectations.__file__).parent / "render" / "view" / "templates"


def test_every_cdn_address_in_the_installed_gx_templates_is_vendored():
    used = set()
    for template in TEMPLATES.glob("*.j2"):
        used |= set(re.findall(r"(?:src|href)=\"(https://[^\"]+)\"", template.read_text("utf-8")))
    loads = {u for u in used if not u.startswith(("https://greatexpectations.io", "https://docs."))}
    loads = {u for u in loads if "great-expectations-web-assets" not in u}  # the logo, replaced
    assert loads and loads <= set(VENDORED), sorted(loads - set(VENDORED))
    for local in VENDORED.values():
        assert (VENDOR_DIR / local).is_file() and (VENDOR_DIR / local).stat().st_size > 100, local


def test_a_page_is_pointed_at_local_copies_and_loses_the_logo_fetch():
    page = (
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>'
        '<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" '
        'integrity="sha384-x" crossorigin="anonymous"></script>'
        '<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=ctx-id">'
        '<a href="https://greatexpectations.io">a link is not a load</a>'
    )
    out = offline_page(page, "../../")
    assert 'href="../../static/vendor/bootstrap-4.3.1/css/bootstrap.min.css"' in out
    assert '<script src="../../static/vendor/bootstrap-4.3.1/js/bootstrap.min.js"></script>' in out
    assert 'src="../../static/images/logo-long.png"' in out and "ctx-id" not in out


@pytest.mark.parametrize(
    "page",
    [
        '<script src="https://cdn.example.org/new-lib.js"></script>',
        '<link rel="stylesheet" href="//cdn.example.org/x.css">',
        "<style>.a{background:url('https://img.example.org/a.png')}</style>",
    ],
)
def test_a_page_still_loading_from_outside_is_refused(page):
    with pytest.raises(OfflineSiteError, match="example.org"):
        offline_page(page, "", "index.html")
