"""The DuckDB warehouse: the served file and its generations, the locked-down read-only
connections every reader gets, and the limits on users' queries (warehouse.py)."""
