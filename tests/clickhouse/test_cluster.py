"""The warehouse on a ClickHouse cluster, on paper: the DDL generated from the models parses in
ClickHouse's own parser, shards the facts by order over replicated tables, and is the file the
docker-compose profile `clickhouse-cluster` runs; the profile has two shards of two replicas
and the Keeper quorum its servers name."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from olist_bi.engines.clickhouse import cluster
from olist_bi.engines.clickhouse import warehouse as clickhouse
from olist_bi.etl import transform
from tests.conftest import clickhouse_env
from tests.test_compose import compose

ROOT = Path(__file__).parents[2]
FOLDER = ROOT / "docker" / "clickhouse" / "cluster"
PLAN = transform.build_plan()


@pytest.fixture(scope="module")
def statements(clickhouse_warehouse) -> list[str]:
    settings, _ = clickhouse_warehouse
    found = cluster.columns(clickhouse.connect(settings), settings.clickhouse_database, PLAN)
    return cluster.ddl(PLAN, found)


def test_the_committed_schema_is_what_the_models_generate(statements):
    committed = (FOLDER / "schema.sql").read_text(encoding="utf-8")
    assert committed == cluster.script(statements), (
        "docker/clickhouse/cluster/schema.sql is stale: after `olist-bi etl run` on ClickHouse, "
        "`olist-bi etl cluster-ddl > docker/clickhouse/cluster/schema.sql`"
    )


def test_every_statement_parses_in_clickhouse(statements, clickhouse_warehouse):
    settings, _ = clickhouse_warehouse
    ch = clickhouse.connect(settings)

    def parsed(statement: str) -> str:  # a query parameter's value is one line
        return ch.scalar("select formatQuery({q:String})", {"q": " ".join(statement.split())})

    for statement in statements:
        assert parsed(statement).splitlines()[0] == statement.splitlines()[0]  # ClickHouse's own formatting of what it read
    with pytest.raises(clickhouse.ClickHouseError, match="Syntax error"):
        parsed(statements[-1].replace("(", "", 1))


def test_the_facts_are_sharded_by_order_and_everything_is_replicated(statements):
    tables = {m.name for m in PLAN.models if not m.view}
    facts = {m.name for m in PLAN.models if cluster.sharded(m)}
    assert facts == {"fact_order_items", "fact_payments", "fact_reviews", "fact_deliveries"}
    created = {re.match(r"CREATE TABLE IF NOT EXISTS (\S+) ON CLUSTER olist", s).group(1): s for s in statements if "CREATE TABLE" in s}
    for name in tables:
        if name in facts:
            local, distributed = created[f"olist.{name}_local"], created[f"olist.{name}"]
            assert f"ReplicatedMergeTree('/clickhouse/tables/{{shard}}/olist/{name}', '{{replica}}')" in local
            assert f"Distributed(olist, olist, {name}_local, cityHash64(order_id))" in distributed
        else:  # whole on every node: one Keeper path for the cluster
            assert f"ReplicatedMergeTree('/clickhouse/tables/all/olist/{name}', '{{replica}}')" in created[f"olist.{name}"]
    assert "Distributed(olist, olist_raw, orders_local, cityHash64(order_id))" in created["olist_raw.orders"]  # beside its facts
    assert "olist_raw.geolocation_local" not in created and "tables/all/olist_raw/geolocation" in created["olist_raw.geolocation"]
    assert all("MergeTree(" not in s or "ReplicatedMergeTree(" in s for s in statements)  # nothing unreplicated


@pytest.mark.compose
def test_the_compose_profile_runs_two_shards_of_two_replicas_with_a_keeper_quorum():
    result = compose("--profile", "clickhouse-cluster", "config", env_file=ROOT / ".env.example")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    nodes = {name: s for name, s in services.items() if name.startswith("clickhouse-s")}
    placed = {(s["environment"]["CLICKHOUSE_SHARD"], s["environment"]["CLICKHOUSE_REPLICA"]) for s in nodes.values()}
    assert len(nodes) == 4 and {shard for shard, _ in placed} == {"01", "02"} and len({r for _, r in placed}) == 4
    config = ET.parse(FOLDER / "cluster.xml").getroot()
    shards = config.findall("remote_servers/olist/shard")
    assert [sorted(r.findtext("host") for r in shard.findall("replica")) for shard in shards] == [
        sorted(n for n, s in nodes.items() if s["environment"]["CLICKHOUSE_SHARD"] == f"{i:02d}") for i in (1, 2)
    ]
    assert all(shard.findtext("internal_replication") == "true" for shard in shards)  # replicated tables under Distributed
    keepers = {n for n in services if n.startswith("keeper-")}
    assert {node.findtext("host") for node in config.findall("zookeeper/node")} == keepers and len(keepers) == 3
    raft = ET.parse(FOLDER / "keeper.xml").getroot().findall("keeper_server/raft_configuration/server")
    assert {s.findtext("hostname") for s in raft} == keepers
    assert {services[k]["environment"]["KEEPER_SERVER_ID"] for k in keepers} == {s.findtext("id") for s in raft}
    schema = services["clickhouse-cluster-schema"]
    assert any("docker/clickhouse/cluster/schema.sql:/schema.sql" in str(v) for v in schema["volumes"])
    assert set(schema["depends_on"]) == set(nodes)


def test_the_command_prints_the_ddl_or_says_to_build_first(clickhouse_warehouse, statements):
    from click.testing import CliRunner

    from olist_bi.cli.commands import main

    settings, _ = clickhouse_warehouse
    env = clickhouse_env(settings)
    printed = CliRunner().invoke(main, ["etl", "cluster-ddl"], env=env)
    assert printed.exit_code == 0, printed.output
    assert printed.output == cluster.script(statements)
    empty = CliRunner().invoke(main, ["etl", "cluster-ddl"], env={**env, "OLIST_CLICKHOUSE_DATABASE": "olist_never_built"})
    assert empty.exit_code == 1 and "build the warehouse there (olist-bi etl run --full)" in empty.output
