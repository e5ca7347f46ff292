"""Partner shares: agreements as data, pseudonymised immutable snapshots, signed manifests."""
