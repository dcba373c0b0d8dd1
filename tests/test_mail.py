"""Mail: the demo's sink keeps what it receives as .eml files that `olist-bi outbox` lists;
the platform refuses to send where it should not; a failed scheduled run mails the admins
with its run id, its failing rule and the commands to look closer."""

import email
import email.policy
import shutil

import pytest
from click.testing import CliRunner

from olist_bi.notify import mail
from olist_bi.notify import outbox
from olist_bi.cli import main
from olist_bi.app.scheduler import FAILED, READY, load_inbox
from tests.conftest import make_settings
from tests.test_postgres import free_port


@pytest.fixture
def sink(tmp_path, ops_url):
    settings = make_settings(tmp_path / "home", ops_url, olist_smtp_port=free_port())
    server = outbox.controller(settings, say=lambda m: None)
    server.start()
    try:
        yield settings
    finally:
        server.stop()


def test_the_sink_keeps_each_message_and_the_outbox_lists_it(sink, monkeypatch):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    mail.send(
        sink,
        ["manager@olist-bi.local"],
        "Weekly: Executive overview",
        "The dashboard, attached.",
        [("executive-overview.png", png, "image/png")],
    )
    (kept,) = sink.outbox_dir.glob("*.eml")
    assert kept.stat().st_mode & 0o077 == 0
    message = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
    assert message["To"] == "manager@olist-bi.local" and message["Subject"] == "Weekly: Executive overview"
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "executive-overview.png" and attachment.get_payload(decode=True) == png
    monkeypatch.setenv("OLIST_HOME", str(sink.home))
    listed = CliRunner().invoke(main, ["outbox"])
    assert listed.exit_code == 0, listed.output
    assert (
        "Weekly: Executive overview" in listed.output
        and f"executive-overview.png (image/png, {len(png):,} bytes)" in listed.output
        and str(kept) in listed.output
    )


def test_mail_refuses_what_it_should_not_send(tmp_path, ops_url):
    production = make_settings(tmp_path, ops_url, olist_env="production")
    with pytest.raises(mail.MailError, match="OLIST_SMTP_HOST is not set"):
        mail.server(production)
    clear = make_settings(tmp_path, ops_url, olist_env="production", olist_smtp_host="mail.example.com", olist_smtp_port=25)
    with pytest.raises(mail.MailError, match="in the clear"):
        mail.server(clear)
    with pytest.raises(mail.MailError, match="demo user names are for the local demo only"):
        mail.recipients(production, "admins")
    assert mail.recipients(make_settings(tmp_path, ops_url), "admins") == ["manager@olist-bi.local"]
    nowhere = make_settings(tmp_path, ops_url, olist_smtp_port=free_port())  # no sink listens there
    with pytest.raises(mail.MailError, match="olist-bi outbox serve"):
        mail.send(nowhere, ["a@olist-bi.local"], "x", "y")


def test_a_failed_scheduled_run_mails_the_admins(sink, small_drop, monkeypatch):
    drop = sink.inbox / "broken"
    shutil.copytree(small_drop, drop)
    path = drop / "product_category_name_translation.csv"
    rows = path.read_text(encoding="utf-8").split("\n")
    rows[2] = '"' + rows[2]  # a stray quote swallows the rest of the file: the run fails on its format rule
    path.write_text("\n".join(rows), encoding="utf-8")
    (drop / READY).touch()
    for name, value in (
        ("OLIST_HOME", sink.home),
        ("OLIST_DATABASE_URL", sink.database_url),
        ("OLIST_SMTP_PORT", sink.smtp_port),
        ("OLIST_DUCKDB_MEMORY_LIMIT", "1GB"),
    ):
        monkeypatch.setenv(name, str(value))
    (outcome,) = load_inbox("new_drop")
    assert "failed" in outcome and (drop / FAILED).exists()
    run_id = int(outcome.split("run ")[1].split()[0])
    (kept,) = outbox.messages(sink)
    assert kept.to == "manager@olist-bi.local"
    assert kept.subject == f"[Olist BI] ETL run {run_id} failed: category_translation.csv_format"
    body = email.message_from_bytes(kept.path.read_bytes(), policy=email.policy.default).get_body().get_content()
    assert (
        f"ETL run {run_id} failed" in body
        and "category_translation.csv_format" in body
        and "olist-bi etl status" in body
        and str(drop) in body
    )


def test_a_mail_server_that_is_down_does_not_stop_the_scheduler(tmp_path, ops_url, small_drop, monkeypatch):
    home = tmp_path / "home"
    drop = home / "inbox" / "broken"
    shutil.copytree(small_drop, drop)
    (drop / "olist_orders_dataset.csv").write_bytes(b"")
    (drop / READY).touch()
    for name, value in (("OLIST_HOME", home), ("OLIST_DATABASE_URL", ops_url), ("OLIST_SMTP_PORT", free_port())):
        monkeypatch.setenv(name, str(value))
    (outcome,) = load_inbox("new_drop")  # the mail fails (nothing listens), the outcome is still recorded
    assert "failed" in outcome and (drop / FAILED).exists()


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("manager@olist-bi.local", True),
        ("Manager <MANAGER@Olist-BI.local>", True),
        ("ceo@partner.example", True),  # a single address on the list
        ("cfo@partner.example", False),
        ("spy@evil.example", False),
        ("spy@sub.olist-bi.local", False),  # a subdomain is another domain
        ("spy@olist-bi.local.evil.example", False),
        ("not an address", False),
    ],
)
def test_the_allow_list_covers_its_domains_and_addresses_only(address, allowed):
    assert (mail.refused([address], ("olist-bi.local", "ceo@partner.example")) == []) is allowed


def test_mail_to_a_recipient_outside_the_allow_list_is_refused_before_anything_is_sent(tmp_path):
    port = free_port()  # nothing listens: a refusal must come before any connection
    settings = make_settings(tmp_path, "postgresql://unused@127.0.0.1:1/x", olist_smtp_port=port)
    with pytest.raises(mail.MailError, match=r"refused to mail spy@evil.example: not in OLIST_MAIL_ALLOWED_DOMAINS \(olist-bi.local\)"):
        mail.send(settings, ["manager@olist-bi.local", "spy@evil.example"], "subject", "body")
    wider = make_settings(
        tmp_path, "postgresql://unused@127.0.0.1:1/x", olist_smtp_port=port, olist_mail_allowed_domains="olist-bi.local, evil.example"
    )
    with pytest.raises(mail.MailError, match="could not send"):  # allowed now: it got as far as the (absent) server
        mail.send(wider, ["spy@evil.example"], "subject", "body")


@pytest.mark.parametrize("value", ["not a domain!", "a@@b.example", ","])
def test_a_malformed_allow_list_is_a_setting_error(value, tmp_path):
    from olist_bi.settings import SettingsError

    with pytest.raises(SettingsError, match="OLIST_MAIL_ALLOWED_DOMAINS"):
        make_settings(tmp_path, "postgresql://unused@127.0.0.1:1/x", olist_mail_allowed_domains=value)
