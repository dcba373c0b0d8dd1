"""The platform's background services' helpers (platform/runtime/process.py)."""

import stat

from olist_bi.runtime import process


def test_a_private_log_is_owner_only_even_when_it_was_made_before_with_another_mode(tmp_path):
    path = tmp_path / "superset.log"
    path.write_text("an old line\n")
    path.chmod(0o644)  # as `superset serve` left it before: the failed queries' text readable by all
    with process.private_log(path) as log:
        log.write(b"a new line\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "an old line\na new line\n"
    fresh = tmp_path / "new.log"
    process.private_log(fresh).close()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
