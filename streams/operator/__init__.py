"""`segments`: the operators' command line, a client of the worker's HTTP API only."""

__all__: list[str] = []
