"""Compute resources: the GPU inventory the scheduler uses (monitoring arrives with the dashboards)."""
