"""Compute resources: the GPU inventory the scheduler uses, live GPU and host monitoring with bounded
history, which job and user holds each GPU process, and GPU-hours per user and project."""
