"""Write Parquet in a background thread, one table behind, so writing overlaps normalising the next chunk.

pyarrow's Parquet writer (encoding, zstd) releases the GIL: on two cores the previous chunk is compressed
while the current one is parsed. At most one table waits, so memory stays bounded; a write error is
raised on the next write or on close.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa


class BackgroundWriter:
    def __init__(self, writer) -> None:
        self._writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
        self._pending: Future | None = None

    def write_table(self, table: pa.Table) -> None:
        self._wait()
        self._pending = self._pool.submit(self._writer.write_table, table)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Finish the last write (raising its error, if any) and stop the thread."""
        try:
            self._wait()
        finally:
            self._pool.shutdown(wait=True)
