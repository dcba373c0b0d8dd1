"""Metabase: assets generated from the dashboard specs (metabase/ at the project root) and
their provisioning over Metabase's REST API."""
