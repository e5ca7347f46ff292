"""The ground every stage stands on: settings, deployment, storage, the canonical model, feed specs, the audit log."""
