"""Dashboard specs, provisioned to Superset and Metabase (issues: Superset, Metabase)."""
