"""The restore drill's parts: a local PostgreSQL, the servers it runs, the registry it checks."""
