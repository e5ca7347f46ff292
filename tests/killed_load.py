"""A load in its own process whose commit hook SIGKILLs it after its files are written, before the manifest
(the test hook lives here, not in production code: ingest_feed's `before_commit`)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

SCRIPT = """
import os, signal, sys
from datetime import date
from pingan.core.feed_spec import load_specs
from pingan.ingest.load import ingest_feed
from pingan.core.storage import lake_store
from pingan.core.settings import load_settings

settings = load_settings()
spec = load_specs(settings.connectors_dir)[sys.argv[1]]
ingest_feed(spec, date.fromisoformat(sys.argv[2]), settings, lake_store(settings),
            before_commit=lambda manifest: os.kill(os.getpid(), signal.SIGKILL))
"""


def killed_load(feed: str, day: date) -> subprocess.CompletedProcess:
    """Run the load of `feed` for `day` (no gate) and kill it just before its commit."""
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, feed, day.isoformat()],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
