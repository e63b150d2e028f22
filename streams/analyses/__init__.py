"""Analysis jobs outside the control agent's commits: load the profiles, run the CPU-heavy
analysis in a process pool, report the outcome on the control topic."""

from .pool import AnalysisCrashed, run_analysis
from .runner import AnalysisRunner

__all__ = ["AnalysisCrashed", "AnalysisRunner", "run_analysis"]
