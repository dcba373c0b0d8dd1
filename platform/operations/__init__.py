"""The operations store: PostgreSQL holding what is operational (the pipeline's run history
and data-quality results, the access model, the append-only audit trail), its migrations,
its roles, and the embedded server the local demo runs when no OLIST_DATABASE_URL is given."""
