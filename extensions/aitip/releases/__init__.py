"""Releases: a model version or a configuration released only with passing evidence for its exact version,
signed by the platform, approved by the people its policy names, and promoted through the environments."""
