"""Simulation: a model version (or an LLM endpoint) attacked and stressed in a sandbox, from scenario templates."""
