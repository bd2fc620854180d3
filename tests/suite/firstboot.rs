//! The appliance's first-boot script (image/firstboot, Python) under its own
//! tests: a broken section never costs the login, secrets leave the card only
//! once applied, the config it writes passes `lollipop config check`, and the
//! example file cannot be made invalid by uncommenting.
//! Run here so `cargo test` (and CI) runs them too.

use std::process::Command;

#[test]
fn first_boot_never_locks_the_technician_out() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .current_dir(root)
        .args(["-m", "unittest", "discover", "-s", "image/tests", "-v"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // The configs first boot writes are checked by the real binary too.
        .env("LOLLIPOP_BIN", env!("CARGO_BIN_EXE_lollipop"))
        .output()
        .expect("python3 runs (apt install python3)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK"), "{text}");
    assert!(!text.contains("Ran 0 tests"), "{text}");
}
