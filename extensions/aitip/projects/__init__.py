"""Projects and project membership: the unit that owns datasets, jobs, experiments and releases."""
