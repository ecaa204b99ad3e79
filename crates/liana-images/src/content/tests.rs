use std::io::{Read, Write};

use super::*;
use crate::digest::sha256_of;

#[test]
fn ingest_commit_verifies_and_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let s = ContentStore::open(dir.path()).unwrap();
    let data = b"hello content store";
    let d = sha256_of(data);
    let mut w = s.writer(&d, data.len() as u64).unwrap();
    w.write_all(&data[..5]).unwrap();
    assert!(!s.contains(&d).unwrap(), "not visible before commit");
    w.write_all(&data[5..]).unwrap();
    w.commit().unwrap();
    assert!(s.contains(&d).unwrap());
    let mut back = String::new();
    s.open_blob(&d).unwrap().read_to_string(&mut back).unwrap();
    assert_eq!(back.as_bytes(), data);
    assert_eq!(
        std::fs::read_dir(dir.path().join("ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn mismatches_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = ContentStore::open(dir.path()).unwrap();
    let d = sha256_of(b"expected");
    let mut w = s.writer(&d, 8).unwrap();
    w.write_all(b"corrupt!").unwrap();
    let e = w.commit().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataCorrupt);
    assert!(e.to_string().contains(&d.to_string()));
    assert!(!s.contains(&d).unwrap());
    assert_eq!(
        std::fs::read_dir(dir.path().join("ingest"))
            .unwrap()
            .count(),
        0
    );
    let mut w = s.writer(&d, 8).unwrap();
    w.write_all(b"short").unwrap();
    assert!(matches!(
        w.commit().unwrap_err(),
        ContentError::SizeMismatch { .. }
    ));
}

#[test]
fn suspended_ingest_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let s = ContentStore::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = sha256_of(&data);
    let mut w = s.writer(&d, data.len() as u64).unwrap();
    w.write_all(&data[..40_000]).unwrap();
    w.suspend();
    assert_eq!(s.ingest_progress(&d).unwrap(), Some(40_000));
    let mut w = s.writer(&d, data.len() as u64).unwrap();
    assert_eq!(w.offset(), 40_000);
    let mut prefix = Vec::new();
    w.read_prefix().unwrap().read_to_end(&mut prefix).unwrap();
    assert_eq!(prefix, &data[..40_000]);
    w.write_all(&data[40_000..]).unwrap();
    w.commit().unwrap();
    assert_eq!(s.read_blob(&d, 1 << 20).unwrap(), data);
    assert!(matches!(
        s.read_blob(&d, 10).unwrap_err(),
        ContentError::TooLarge { .. }
    ));
}

#[test]
fn prune_and_walk() {
    let dir = tempfile::tempdir().unwrap();
    let s = ContentStore::open(dir.path()).unwrap();
    let d = sha256_of(b"x");
    s.write_blob(&d, b"x").unwrap();
    let other = sha256_of(b"partial");
    let mut w = s.writer(&other, 7).unwrap();
    w.write_all(b"par").unwrap();
    w.suspend();
    assert_eq!(s.walk().unwrap().len(), 1);
    assert_eq!(
        s.prune_ingests(std::time::Duration::from_secs(3600))
            .unwrap(),
        0
    );
    assert_eq!(s.prune_ingests(std::time::Duration::ZERO).unwrap(), 3);
    assert_eq!(s.ingest_progress(&other).unwrap(), None);
    s.delete(&d).unwrap();
    assert!(s.walk().unwrap().is_empty());
}
