"""Channel agents' logic: dedup, consent, caps, expiry, provider calls, fallback, receipts."""
