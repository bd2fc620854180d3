use super::*;

#[test]
fn the_leaf_cache_keeps_at_most_its_capacity_dropping_the_oldest() {
    let mut cache: LeafCache<u32> = LeafCache::new(3);
    for (i, name) in ["a.test", "b.test", "c.test", "d.test"].iter().enumerate() {
        cache.insert(name, i as u32, 1_000 + i as i64);
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.get("a.test", 1_010), None, "the oldest went");
    assert_eq!(cache.get("d.test", 1_010), Some(3));
    // Replacing a name kept does not evict another.
    cache.insert("b.test", 9, 1_020);
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.get("c.test", 1_020), Some(2));
}

#[test]
fn a_cached_leaf_is_minted_again_before_it_runs_short() {
    let mut cache: LeafCache<u32> = LeafCache::new(10);
    cache.insert("a.test", 1, 0);
    assert_eq!(cache.get("a.test", LEAF_REUSE_SECS - 1), Some(1));
    assert_eq!(cache.get("a.test", LEAF_REUSE_SECS), None);
    // A clock set back never serves what it has not checked.
    assert_eq!(cache.get("a.test", -1), None);
    const { assert!(LEAF_REUSE_SECS < LEAF_DAYS * 24 * 3600) };
}

#[test]
fn stale_entries_make_room_before_fresh_ones() {
    let mut cache: LeafCache<u32> = LeafCache::new(2);
    cache.insert("old.test", 1, 0);
    cache.insert("new.test", 2, LEAF_REUSE_SECS + 10);
    cache.insert("newer.test", 3, LEAF_REUSE_SECS + 20);
    assert_eq!(cache.get("new.test", LEAF_REUSE_SECS + 30), Some(2));
    assert_eq!(cache.get("newer.test", LEAF_REUSE_SECS + 30), Some(3));
    assert_eq!(cache.len(), 2);
}

#[test]
fn excluded_subtrees_cover_their_subdomains_only() {
    let excluded = excluded_names();
    for name in [
        "gov.uk",
        "www.gov.uk",
        "nhs.uk",
        "111.nhs.uk",
        "ceop.police.uk",
        "childline.org.uk",
        "www.samaritans.org",
    ] {
        assert!(is_excluded(name, &excluded), "{name}");
    }
    for name in [
        "notgov.uk",
        "bet365.com",
        "samaritans.org.evil.test",
        "sch.uk",
    ] {
        assert!(!is_excluded(name, &excluded), "{name}");
    }
}

#[test]
fn the_ca_is_made_once_with_a_private_key_and_signs_only_what_it_may() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = 1_765_000_000;
    let ca = BlockCa::load_or_create(dir.path(), "Hilltop Primary", now).expect("a CA");
    let key = dir.path().join(KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No temporary file is left beside them.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let again = BlockCa::load_or_create(dir.path(), "Hilltop Primary", now).expect("the same CA");
    assert_eq!(again.certificate_der(), ca.certificate_der());
    assert!(!format!("{ca:?}").contains("PRIVATE"));

    let first = ca.server_config("bet365.com", now).expect("a leaf");
    let cached = ca.server_config("bet365.com", now + 60).expect("a leaf");
    assert!(Arc::ptr_eq(&first, &cached));
    for never in ["www.gov.uk", "childline.org.uk", "10.0.0.1", "*.bet365.com"] {
        assert!(ca.server_config(never, now).is_err(), "{never}");
    }
}

#[test]
fn a_damaged_or_exposed_key_is_refused_with_a_plain_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    BlockCa::load_or_create(dir.path(), "", 1_765_000_000).expect("a CA");
    let key = dir.path().join(KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = format!(
            "{:#}",
            BlockCa::load_or_create(dir.path(), "", 0).expect_err("refused")
        );
        assert!(error.contains("can be read by other users"), "{error}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\ngarbage\n").expect("damage");
    let error = format!(
        "{:#}",
        BlockCa::load_or_create(dir.path(), "", 0).expect_err("refused")
    );
    assert!(error.contains("damaged"), "{error}");
    assert!(!error.contains("garbage"), "{error}");
}
