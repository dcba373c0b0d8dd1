"""Metabase's password rules, checked before a password is sent.

As Metabase's server checks a password at setup and on every password change
(`src/metabase/util/password.clj`, schema `ValidPassword`), at its default complexity
(`MB_PASSWORD_COMPLEXITY=normal`): at least 6 characters, at least one digit, and not one of
the ~12,000 common passwords of its `common_passwords.txt` (compared lower-cased). A password
that breaks them is refused with `400 {"errors": {"password": "password is too common."}}`,
whichever rule it broke. The common-password list is not shipped here: a password given
through the environment is checked for length and digit, and Metabase's refusal of a common
one is named by provisioning. The platform's generated passwords meet every rule
(`olist_bi.demo.login_password`).
"""

from __future__ import annotations

MIN_LENGTH = 6


def problems(password: str) -> list[str]:
    """What Metabase's default rules find wrong with `password` (the common list aside)."""
    found = []
    if len(password) < MIN_LENGTH:
        found.append(f"it has {len(password)} characters, Metabase needs {MIN_LENGTH} or more")
    if not any(c.isdigit() for c in password):
        found.append("it has no digit, Metabase needs one")
    return found
