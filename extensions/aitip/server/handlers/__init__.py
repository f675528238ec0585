"""REST handlers: thin, each declares its operations and calls a domain service."""
