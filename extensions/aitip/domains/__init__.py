"""Domains as plugins: each domain (projects, jobs, datasets...) declares its tables, its section of the
operation table, its services and how they start and stop, in one :class:`~.base.Domain` class; the
platform finds them in :mod:`.registry` (built-in ones by name, others by the ``aitip.domains`` entry point
group) instead of wiring each by hand."""
