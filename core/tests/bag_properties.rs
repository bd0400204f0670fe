//! `rask::bag` on an embedded cluster against the same computations done
//! directly on the items: every operation on random records (skewed keys,
//! missing fields, empty partitions), groupby through the peer-to-peer
//! shuffle, text files (plain, gzip, zstd) written and read back in blocks,
//! conversions with dataframes and arrays, and bad input.

mod bag_cases;

use rask::bag::{self as db, json, Bag, Func, Json};
use rask::dataframe::polars::prelude::*;
use rask::{Client, LocalCluster};

fn client() -> Client {
    Client::local(LocalCluster::new().workers(2)).unwrap()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rask-bag-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn operations_match_direct_computation() {
    let client = client();
    // 30 partitions make a two-level reduction tree; 9 partitions of 4 items leave some empty.
    for (seed, n, parts) in [(1, 2000, 30), (2, 4, 9), (3, 300, 1), (4, 0, 3)] {
        bag_cases::operations(&client, seed, n, parts, true)
            .unwrap_or_else(|e| panic!("seed {seed}, {n} items in {parts}: {e}"));
    }
}

#[test]
fn groupby_shuffles_to_the_same_groups() {
    let client = client();
    for (seed, n, parts, outputs) in [(5, 3000, 12, 5), (6, 3, 9, 4), (7, 200, 1, 1), (8, 0, 2, 3)]
    {
        bag_cases::groupby(&client, seed, n, parts, outputs)
            .unwrap_or_else(|e| panic!("seed {seed}, {n} items in {parts} to {outputs}: {e}"));
    }
}

#[test]
fn text_files_round_trip_plain_gzip_and_zstd_in_blocks() {
    let client = client();
    let dir = temp_dir("text");
    let dir = dir.display().to_string();
    for blocksize in [None, Some(4096), Some(250)] {
        bag_cases::word_frequencies_from_files(&client, &dir, blocksize)
            .unwrap_or_else(|e| panic!("blocksize {blocksize:?}: {e}"));
    }
    // Lines of text: a directory pattern writes part.{i}.txt; read_text splits by size.
    let lines: Vec<Json> = (0..100).map(|i| json!(format!("line {i}"))).collect();
    Bag::from_sequence(lines.clone(), 4)
        .to_textfiles(&format!("{dir}/lines"), &client)
        .unwrap();
    let back = db::read_text(&format!("{dir}/lines"), Some(64)).unwrap();
    assert!(back.npartitions() > 4, "{back}");
    assert_eq!(back.compute(&client).unwrap(), lines);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bags_and_dataframes_convert_both_ways() {
    let client = client();
    let items = bag_cases::records(9, 500);
    let bag = Bag::from_sequence(items.clone(), 4)
        .map(Func::Identity)
        .unwrap();
    let frame = bag.to_dataframe(None, &client).unwrap();
    assert_eq!(frame.npartitions(), 4);
    let computed = frame.compute(&client).unwrap();
    // Polars reading the same records as JSON lines.
    let mut lines = Vec::new();
    for item in &items {
        serde_json::to_writer(&mut lines, item).unwrap();
        lines.push(b'\n');
    }
    let direct = JsonReader::new(std::io::Cursor::new(lines))
        .with_json_format(JsonFormat::JsonLines)
        .finish()
        .unwrap();
    assert!(
        computed.equals_missing(
            &direct
                .select(computed.get_column_names().into_iter().cloned())
                .unwrap()
        ),
        "{computed}\n{direct}"
    );
    // And back: one object per row, nulls as null.
    let rows = frame.to_bag().unwrap().compute(&client).unwrap();
    assert_eq!(rows.len(), items.len());
    for (row, item) in rows.iter().zip(&items) {
        assert_eq!(row["id"], item["id"]);
        assert_eq!(row["text"], item["text"]);
        assert_eq!(row["key"], item.get("key").cloned().unwrap_or(Json::Null));
    }
    // A dataframe's numeric columns as an array with known chunks.
    let numbers = frame.select_columns(&["id", "n"]).unwrap();
    let array = numbers.to_array(&client).unwrap();
    assert_eq!(array.shape(), &[500, 2]);
    assert_eq!(array.chunks()[0].len(), 4);
    let values = array.compute::<i64>(&client).unwrap();
    for (i, item) in items.iter().enumerate() {
        assert_eq!(values[[i, 0]], item["id"].as_i64().unwrap());
        assert_eq!(values[[i, 1]], item["n"].as_i64().unwrap());
    }
    let text = frame.to_array(&client).unwrap_err().to_string();
    assert!(
        text.contains("\"key\"") || text.contains("\"text\""),
        "{text}"
    );
}

#[test]
fn bad_input_is_an_error_naming_the_file_line_or_item() {
    let client = client();
    let dir = temp_dir("bad");
    std::fs::write(dir.join("a.json"), "{\"x\": 1}\n{\"x\": \n{\"x\": 3}\n").unwrap();
    let error = db::read_json(&format!("{}/a.json", dir.display()), None)
        .unwrap()
        .compute(&client)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("a.json: line 2") && error.contains("not JSON"),
        "{error}"
    );
    std::fs::write(dir.join("b.txt"), b"ok\n\xff\xfe\n").unwrap();
    let error = db::read_text(&format!("{}/b.txt", dir.display()), None)
        .unwrap()
        .compute(&client)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("b.txt: line 2") && error.contains("UTF-8"),
        "{error}"
    );
    std::fs::write(dir.join("c.json.gz"), b"not gzip at all").unwrap();
    let error = db::read_json(&format!("{}/c.json.gz", dir.display()), None)
        .unwrap()
        .compute(&client)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("c.json.gz") && error.contains("gzip"),
        "{error}"
    );
    let missing = db::read_text(&format!("{}/nothing-*.txt", dir.display()), None).unwrap_err();
    assert!(missing.to_string().contains("nothing-*.txt"), "{missing}");

    let bag = Bag::from_sequence(vec![json!({"a": 1}), json!({"b": 2})], 2);
    let error = bag
        .pluck("a")
        .unwrap()
        .compute(&client)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("pluck(\"a\")") && error.contains("{\"b\":2}"),
        "{error}"
    );
    let error = bag
        .flatten()
        .unwrap()
        .compute(&client)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a list"), "{error}");
    let error = Bag::from_sequence(vec![json!(1), json!("x")], 1)
        .sum()
        .unwrap()
        .compute(&client)
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot add"), "{error}");
    let error = bag
        .map(Func::Op("no::such::op".into()))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no::such::op"), "{error}");
    assert!(db::read_text("x.txt", Some(0)).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bag_displays_its_partitions_and_tasks() {
    let bag = Bag::from_sequence((0..10).map(|i| json!(i)).collect(), 3);
    let text = bag.map(Func::Identity).unwrap().to_string();
    assert_eq!(text, "rask.Bag<map, npartitions=3, tasks=6>");
}
