//! The SQL transform: select expressions and a where clause over source and
//! partition columns, mapped to the table by name.

use serde_json::json;

use crate::support::*;

fn target() -> starload::sim::tables::TableSpec {
    dup_table(
        "db",
        "t",
        "id",
        vec![
            col_nn("id", "BIGINT"),
            col("doubled", "BIGINT"),
            col("region_up", "VARCHAR(32)"),
            col("day", "DATE"),
            col("label", "VARCHAR(300)"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_and_where_shape_what_is_loaded() {
    let src = corpus().join("pyarrow");
    let sim = sim(vec![target()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &src, "db.t", state.path());
    f.transform.select = Some(
        "id, c_i32 * 2 AS doubled, upper(region) AS region_up, dt AS day, concat(c_str, '|', region) AS label".into(),
    );
    f.transform.filter = Some("dt = '2024-02-29' AND region <> 'eu' AND c_i32 IS NOT NULL".into());
    f.chunk_bytes = Some(starload::config::ByteSize(64 << 10));
    let r = load(f).await.unwrap();
    // The oracle, filtered and transformed by the test itself.
    let exp: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> = expected(&src)
        .into_iter()
        .filter(|(_, o)| o["dt"] == "2024-02-29" && o["region"] != "eu" && !o["c_i32"].is_null())
        .map(|(id, o)| {
            let i: i64 = o["c_i32"].as_str().unwrap().parse().unwrap();
            let region = o["region"].as_str().unwrap();
            // concat() skips NULL arguments (DataFusion, like PostgreSQL).
            let label = json!(format!("{}|{region}", o["c_str"].as_str().unwrap_or("")));
            let mut m = serde_json::Map::new();
            m.insert("id".into(), json!(id));
            m.insert("doubled".into(), json!((i * 2).to_string()));
            m.insert("region_up".into(), json!(region.to_uppercase()));
            m.insert("day".into(), json!("2024-02-29"));
            m.insert("label".into(), label);
            (id, m)
        })
        .collect();
    assert!(exp.len() > 100, "the filter keeps a fair share of rows");
    assert_eq!(r.load.rows_loaded as usize, exp.len());
    assert_same(&exp, &stored(&sim, "db", "t"), &|_, v| v.clone());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_that_does_not_plan_is_a_configuration_error() {
    let src = corpus().join("pyarrow");
    let sim = sim(vec![target()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &src, "db.t", state.path());
    f.transform.select = Some("id, no_such_column AS doubled".into());
    let e = load(f).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config);
    assert!(e.to_string().contains("no_such_column"), "{e}");
    assert_eq!(sim.be_requests(), 0);
}

/// A value refused after a where clause dropped rows is named by its file
/// and its row in that file, not by its position among the kept rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_after_a_where_clause_names_the_file_row() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let sim = sim(vec![dup_table("db", "w", "id", vec![col_nn("id", "BIGINT"), col("s", "VARCHAR(3)")])]).await;
    let dir = tempfile::tempdir().unwrap();
    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
    for (name, first) in [("a.parquet", 0i64), ("b.parquet", 100)] {
        let ids: Vec<i64> = (first..first + 100).collect();
        // Row 38 of b.parquet (id 137) is too long for VARCHAR(3); so are
        // rows the where clause drops (ids divisible by 3).
        let s: Vec<Option<String>> = ids
            .iter()
            .map(|&i| if i == 137 || i % 3 == 0 { Some("long".to_string()) } else { Some("ok".to_string()) })
            .collect();
        let batch = arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(s))],
        )
        .unwrap();
        write_parquet(&dir.path().join(name), &batch);
    }
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.w", state.path());
    f.transform.filter = Some("id % 3 <> 0".into());
    let e = load(f).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("b.parquet`, row 38, column `s`"), "{m}");
    assert_eq!(sim.rows("db", "w").len(), 0);
}
