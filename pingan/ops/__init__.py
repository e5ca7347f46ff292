"""What happened: status, alerts, lineage."""
