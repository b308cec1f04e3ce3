"""Weekly per-institution risk indicators: the registry, the SQL and the mart they fill."""
