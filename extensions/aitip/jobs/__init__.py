"""Notebook jobs: parameterized notebooks run as queued, leased, tracked and re-runnable jobs."""
