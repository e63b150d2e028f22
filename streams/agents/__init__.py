"""The Faust agents: one module per domain."""
