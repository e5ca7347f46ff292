"""One feed, one day: extract, normalise, de-duplicate, gate, write a batch into the raw zone."""
