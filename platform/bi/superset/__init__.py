"""Superset: its server (server.py), the asset bundle generated from the dashboard specs and
the semantic layer (bundle.py), its REST API (client.py) and provisioning (provision.py)."""
