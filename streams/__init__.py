"""The Faust (faust-streaming) application of livesegments and its runtime."""
