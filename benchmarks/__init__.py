"""Benchmarks of livesegments against a real Kafka broker and Redis (see README.md)."""
