"""Partner shares: agreements as data, a share store apart from the lake, pseudonymised signed Delta snapshots,
per-partner access (provisioning), the partner side (pull, verify), a Delta Sharing server and the audit log."""
