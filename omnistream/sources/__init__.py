"""Event sources: producers that feed omnistream (the demo traffic generator)."""
