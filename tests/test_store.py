import json

import pyarrow.parquet as pq

from qbench.store import KEY, Store, run_id


def _row(run, item, value, scorer="m"):
    return dict(run=run, dataset="d/test", item=item, corruption="clean", severity=0, seed=0,
                scorer=scorer, value=value)


def test_rows_round_trip_through_parquet_and_duckdb(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run({"job": "x"}, seeds=[0])
    store.write_rows([_row(run, "a", 1.5), _row(run, "b", 2.5)])
    df = store.rows(run)
    assert list(df.columns) == [*KEY, "value"]
    assert df.value.tolist() == [1.5, 2.5]
    assert store.query("SELECT count(*) AS n FROM rows").n[0] == 2


def test_run_id_is_a_function_of_the_config_so_a_rerun_finds_its_rows(tmp_path):
    assert run_id({"a": 1, "b": 2}) == run_id({"b": 2, "a": 1})
    assert run_id({"a": 1}) != run_id({"a": 2})
    store = Store(tmp_path)
    run = store.begin_run({"job": "x"})
    store.write_rows([_row(run, "a", 1.0)])
    failure = {k: v for k, v in _row(run, "b", 0).items() if k != "value"}
    store.write_failures([{**failure, "reason": "bad"}])
    again = Store(tmp_path).begin_run({"job": "x"})
    assert again == run
    assert Store(tmp_path).done(run) == {("d/test", "a", "clean", 0, 0, "m"),
                                         ("d/test", "b", "clean", 0, 0, "m")}


def test_manifest_records_config_revision_packages_seeds_host_and_times(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run({"job": "x"}, seeds=[7])
    store.end_run(run, "finished", rows=3)
    store.begin_run({"job": "x"}, seeds=[7])
    m = json.loads((tmp_path / "manifests" / f"{run}.json").read_text())
    assert m["config"] == {"job": "x"} and m["seeds"] == [7]
    first = m["attempts"][0]
    for field in ("start", "end", "git_revision", "packages", "host", "machine", "python"):
        assert first[field], field
    assert first["status"] == "finished" and first["rows"] == 3
    assert "torch" in first["packages"] and "duckdb" in first["packages"]
    assert len(m["attempts"]) == 2 and m["attempts"][1]["status"] == "running"


def test_each_write_is_one_complete_part_file_and_no_temporaries_remain(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run({"job": "x"})
    for k in range(3):
        store.write_rows([_row(run, f"i{k}", float(k))])
    parts = sorted((tmp_path / "rows").iterdir())
    assert len(parts) == 3 and all(p.suffix == ".parquet" for p in parts)
    assert all(pq.read_table(p).num_rows == 1 for p in parts)


def test_two_writers_on_one_store_never_share_a_file(tmp_path):
    a, b = Store(tmp_path), Store(tmp_path)
    run = a.begin_run({"job": "x"})
    a.write_rows([_row(run, "a", 1.0)])
    b.write_rows([_row(run, "b", 2.0)])
    assert len(list((tmp_path / "rows").glob("*.parquet"))) == 2
    assert Store(tmp_path).rows().item.tolist() == ["a", "b"]


def test_an_empty_store_answers_queries_with_empty_tables(tmp_path):
    store = Store(tmp_path)
    assert store.rows().empty and store.failures().empty and store.done("nope") == set()


def test_scorer_info_of_given_runs_ignores_another_runs_version_of_the_same_metric(tmp_path):
    store = Store(tmp_path)
    old = store.begin_run({"job": "old"})
    new = store.begin_run({"job": "new"})
    store.record_scorers(old, [{"name": "tg-iqa", "version": "1+aaaa"}])
    store.record_scorers(new, [{"name": "tg-iqa", "version": "1+bbbb"}])
    assert store.scorer_info([new])["tg-iqa"]["version"] == "1+bbbb"
    assert store.scorer_info([old])["tg-iqa"]["version"] == "1+aaaa"
    assert set(store.scorer_info()) == {"tg-iqa"}
