"""What the platform tells people: mail and its recipient lists (mail.py, mail.yaml), the local
demo's outbox (outbox.py), the reports and alerts of reports.yaml (reports.py), and the mail
to admins when an ETL run fails (alerts.py)."""
