"""`make bench`: throughput and latency figures measured in one run on the embedded stack."""
