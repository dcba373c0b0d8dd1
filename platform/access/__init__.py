"""Who may see what: the roles, row scopes and demo users of access.yaml (spec.py), and the
review that records the BI tools' access changes in the audit trail (review.py)."""

from olist_bi.access.spec import PATH, demo_email, demo_password, demo_users, model, roles, scopes

__all__ = ["PATH", "demo_email", "demo_password", "demo_users", "model", "roles", "scopes"]
