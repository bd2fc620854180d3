//! Tests that devices are named from each lease format, configured entries
//! and the ARP table, that junk lines are survived, and that the names land
//! in the block log.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const FAR_FUTURE: i64 = 4_000_000_000;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn dnsmasq_leases() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dnsmasq.leases");
    write(
        &file,
        &format!(
            "{FAR_FUTURE} AA:BB:CC:00:00:01 10.0.0.1 reception-pc 01:aa:bb:cc:00:00:01\n\
             this line is junk\n\
             0 aa:bb:cc:00:00:02 10.0.0.2 * *\n\
             100 aa:bb:cc:00:00:03 10.0.0.3 expired-tablet *\n\
             {FAR_FUTURE} aa:bb:cc:00:00:04 not-an-ip ghost *\n\
             duid 00:01:00:01:2a:bc:de:f0:12:34:56:78:9a:bc\n\
             {FAR_FUTURE} 12345678 fd00::20 v6-laptop 00:01:00:01:aa\n"
        ),
    );
    let mut dir_ = DeviceDirectory::new(Vec::new())
        .with_arp_path(None)
        .with_leases(LeaseFormat::Dnsmasq, &file);
    dir_.refresh();
    let one = dir_.lookup(ip(1));
    assert_eq!(one.name.as_deref(), Some("reception-pc"));
    assert_eq!(one.mac.as_deref(), Some("aa:bb:cc:00:00:01"));
    let two = dir_.lookup(ip(2));
    assert_eq!(
        (two.name, two.mac.as_deref()),
        (None, Some("aa:bb:cc:00:00:02"))
    );
    assert_eq!(dir_.lookup(ip(3)), DeviceInfo::default());
    let v6 = dir_.lookup("fd00::20".parse().unwrap());
    assert_eq!((v6.name.as_deref(), v6.mac), (Some("v6-laptop"), None));

    // Rewritten by dnsmasq: picked up on the next batch.
    write(
        &file,
        &format!("{FAR_FUTURE} aa:bb:cc:00:00:09 10.0.0.1 renamed-pc *\n"),
    );
    dir_.refresh();
    assert_eq!(dir_.lookup(ip(1)).name.as_deref(), Some("renamed-pc"));
    std::fs::remove_file(&file).unwrap();
    dir_.refresh();
    assert_eq!(dir_.lookup(ip(1)), DeviceInfo::default());
}

#[test]
fn isc_dhcpd_leases() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dhcpd.leases");
    write(
        &file,
        "# The format of this file is documented in the dhcpd.leases(5) manual page.\n\
         authoring-byte-order little-endian;\n\
         lease 10.0.0.1 {\n  starts 4 2025/06/12 08:00:00;\n  binding state active;\n\
           next binding state free;\n  hardware ethernet 00:11:22:33:44:55;\n\
           uid \"\\001\\000\\021\";\n  client-hostname \"Year6-Chromebook\";\n}\n\
         lease 10.0.0.2 {\n  binding state active;\n  hardware ethernet 00:11:22:33:44:66;\n\
           client-hostname \"old-name\";\n}\n\
         lease 10.0.0.2 {\n  binding state free;\n  hardware ethernet 00:11:22:33:44:66;\n}\n\
         lease garbage {\n  client-hostname \"nope\";\n}\n\
         lease 10.0.0.3 {\n  hardware ethernet 00:11:22:33:44:77;\n  client-hostname \"no-state\";\n",
    );
    let mut d = DeviceDirectory::new(Vec::new())
        .with_arp_path(None)
        .with_leases(LeaseFormat::IscDhcpd, &file);
    d.refresh();
    let one = d.lookup(ip(1));
    assert_eq!(one.name.as_deref(), Some("Year6-Chromebook"));
    assert_eq!(one.mac.as_deref(), Some("00:11:22:33:44:55"));
    // Freed later in the file: no longer that device's address.
    assert_eq!(d.lookup(ip(2)), DeviceInfo::default());
    // An unterminated block (file cut mid-write) is ignored.
    assert_eq!(d.lookup(ip(3)), DeviceInfo::default());
}

#[test]
fn kea_csv_leases() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kea-leases4.csv");
    write(
        &file,
        &format!(
            "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id\n\
             10.0.0.1,aa:bb:cc:dd:ee:01,01:aa,3600,{FAR_FUTURE},1,0,0,staff-laptop.school.lan.,0,,0\n\
             10.0.0.2,aa:bb:cc:dd:ee:02,,3600,{FAR_FUTURE},1,0,0,smith&#x2c j,0,,0\n\
             10.0.0.3,aa:bb:cc:dd:ee:03,,3600,{FAR_FUTURE},1,0,0,declined,1,,0\n\
             10.0.0.4,aa:bb:cc:dd:ee:04,,3600,100,1,0,0,expired,0,,0\n\
             broken line\n\
             10.0.0.5,aa:bb:cc:dd:ee:05,,3600,{FAR_FUTURE},1,0,0,,0,,0\n"
        ),
    );
    let mut d = DeviceDirectory::new(Vec::new())
        .with_arp_path(None)
        .with_leases(LeaseFormat::KeaCsv, &file);
    d.refresh();
    assert_eq!(
        d.lookup(ip(1)).name.as_deref(),
        Some("staff-laptop.school.lan")
    );
    assert_eq!(d.lookup(ip(2)).name.as_deref(), Some("smith, j"));
    assert_eq!(d.lookup(ip(3)), DeviceInfo::default());
    assert_eq!(d.lookup(ip(4)), DeviceInfo::default());
    let five = d.lookup(ip(5));
    assert_eq!(
        (five.name, five.mac.as_deref()),
        (None, Some("aa:bb:cc:dd:ee:05"))
    );
}

#[test]
fn config_entries_arp_and_reverse_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let arp = dir.path().join("arp");
    let leases = dir.path().join("dnsmasq.leases");
    write(
        &arp,
        "IP address       HW type     Flags       HW address            Mask     Device\n\
         10.0.0.2         0x1         0x2         AA:BB:CC:DD:EE:02     *        eth0\n\
         10.0.0.3         0x1         0x2         aa:bb:cc:dd:ee:33     *        eth0\n\
         10.0.0.4         0x1         0x0         00:00:00:00:00:00     *        eth0\n\
         10.0.0.6         0x1         0x2         aa:bb:cc:dd:ee:06     *        eth0\n\
         junk\n",
    );
    // The lease for .3 names a device that has since left (ARP disagrees).
    write(
        &leases,
        &format!(
            "{FAR_FUTURE} aa:bb:cc:dd:ee:03 10.0.0.3 departed-phone *\n\
             {FAR_FUTURE} aa:bb:cc:dd:ee:06 10.0.0.6 library-pc *\n"
        ),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let mut d = DeviceDirectory::new(vec![
        DeviceEntry {
            ip: Some(ip(1)),
            mac: None,
            name: "Office printer".into(),
            owner: None,
            room: Some("Office".into()),
        },
        DeviceEntry {
            ip: None,
            mac: Some("aa-bb-cc-dd-ee-02".into()),
            name: "Class 3 iPad 7".into(),
            owner: Some("Ms Patel".into()),
            room: Some("Class 3".into()),
        },
        DeviceEntry {
            ip: None,
            mac: None,
            name: "ignored".into(),
            owner: None,
            room: None,
        },
    ])
    .with_arp_path(Some(arp.clone()))
    .with_leases(LeaseFormat::Dnsmasq, &leases)
    .with_reverse_lookup(Box::new(move |addr| {
        counter.fetch_add(1, Ordering::SeqCst);
        (addr == ip(4)).then(|| "router-named.lan.".to_string())
    }));
    d.refresh();

    let printer = d.lookup(ip(1));
    assert_eq!(printer.name.as_deref(), Some("Office printer"));
    assert_eq!(printer.room.as_deref(), Some("Office"));
    let ipad = d.lookup(ip(2));
    assert_eq!(ipad.name.as_deref(), Some("Class 3 iPad 7"));
    assert_eq!(ipad.owner.as_deref(), Some("Ms Patel"));
    assert_eq!(ipad.mac.as_deref(), Some("aa:bb:cc:dd:ee:02"));
    let three = d.lookup(ip(3));
    assert_eq!(three.mac.as_deref(), Some("aa:bb:cc:dd:ee:33"));
    assert_eq!(three.name, None);
    assert_eq!(d.lookup(ip(6)).name.as_deref(), Some("library-pc"));
    // Incomplete ARP entry: no MAC; the reverse lookup names it, once.
    let four = d.lookup(ip(4));
    assert_eq!(
        (four.name.as_deref(), four.mac),
        (Some("router-named.lan"), None)
    );
    d.lookup(ip(4));
    d.lookup(ip(4));
    // IPv4-mapped IPv6 (dual-stack sockets) is the same device.
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    assert_eq!(d.lookup(mapped).name.as_deref(), Some("Office printer"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one for .3, one for .4; then cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_stored_at_write_time() {
    let dir = tempfile::tempdir().unwrap();
    let arp = dir.path().join("arp");
    write(
        &arp,
        "IP address HW type Flags HW address Mask Device\n\
         10.0.0.2 0x1 0x2 aa:bb:cc:dd:ee:02 * eth0\n",
    );
    let devices = DeviceDirectory::new(vec![DeviceEntry {
        ip: None,
        mac: Some("AA:BB:CC:DD:EE:02".into()),
        name: "Class 3 iPad 7".into(),
        owner: Some("Ms Patel".into()),
        room: Some("Class 3".into()),
    }])
    .with_arp_path(Some(arp.clone()));
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, devices);
    journal.record_block(block(BASE_MS, ip(2), "a.example"));
    journal.flush().await;
    // The iPad leaves; another device takes the IP. Earlier rows keep the
    // name that was right at the time.
    write(
        &arp,
        "IP address HW type Flags HW address Mask Device\n10.0.0.2 0x1 0x2 aa:bb:cc:dd:ee:99 * eth0 x\n",
    );
    journal.record_block(block(BASE_MS + 60_000, ip(2), "b.example"));
    journal.flush().await;
    let rows = all_rows(&path);
    assert_eq!(rows[0].device_name.as_deref(), Some("Class 3 iPad 7"));
    assert_eq!(rows[0].owner.as_deref(), Some("Ms Patel"));
    assert_eq!(rows[0].room.as_deref(), Some("Class 3"));
    assert_eq!(rows[0].mac.as_deref(), Some("aa:bb:cc:dd:ee:02"));
    assert_eq!(rows[1].device_name, None);
    assert_eq!(rows[1].mac.as_deref(), Some("aa:bb:cc:dd:ee:99"));
    stop(journal, task).await;
}
