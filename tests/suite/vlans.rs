//! The appliance as a school network sees it: the real `lollipop` binary
//! listening on one address per VLAN, and rooms as network namespaces joined
//! by veth pairs, each asking with Debian's dig. The same name gets the answer
//! each room's profile says; a network that is not the school's is REFUSED.
//! Needs root (ip netns), as the test suite does.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

struct Room {
    namespace: String,
    /// The appliance's address on this room's VLAN.
    gateway: String,
}

/// Network namespaces and their veth pairs, removed on drop.
struct Network {
    rooms: Vec<Room>,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip runs");
    assert!(
        status.success(),
        "ip {} failed (the tests need root)",
        args.join(" ")
    );
}

impl Network {
    fn build(tag: &str, subnets: &[&str]) -> Network {
        let mut rooms = Vec::new();
        for (i, subnet) in subnets.iter().enumerate() {
            let namespace = format!("lp{tag}r{i}");
            let outside = format!("lp{tag}o{i}");
            let _ = Command::new("ip")
                .args(["netns", "del", &namespace])
                .stderr(Stdio::null())
                .status();
            ip(&["netns", "add", &namespace]);
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns",
                &namespace,
            ]);
            let gateway = format!("{subnet}.1");
            ip(&["addr", "add", &format!("{gateway}/24"), "dev", &outside]);
            ip(&["link", "set", &outside, "up"]);
            let host = format!("{subnet}.2/24");
            ip(&["-n", &namespace, "addr", "add", &host, "dev", "eth0"]);
            ip(&["-n", &namespace, "link", "set", "eth0", "up"]);
            ip(&["-n", &namespace, "link", "set", "lo", "up"]);
            rooms.push(Room { namespace, gateway });
        }
        Network { rooms }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for room in &self.rooms {
            // Deleting the namespace deletes both ends of its veth pair.
            let _ = Command::new("ip")
                .args(["netns", "del", &room.namespace])
                .status();
        }
    }
}

/// `dig` run inside a room's namespace.
fn dig_from(room: &Room, args: &[&str]) -> String {
    let output = Command::new("ip")
        .args(["netns", "exec", &room.namespace, "dig"])
        .arg(format!("@{}", room.gateway))
        .args(["+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn each_vlan_gets_its_own_profile_from_one_appliance() {
    let tag = (std::process::id() % 10_000).to_string();
    // Under-5 room, KS2 room, staff room, and a network that is not the
    // school's (100.64.0.0/10 is neither private nor configured).
    let network = Network::build(&tag, &["10.77.1", "10.77.2", "10.77.3", "100.64.77"]);
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("video.txt"), "youtube.com\n").expect("list");
    std::fs::write(dir.path().join("gambling.txt"), "bet365.com\n").expect("list");
    std::fs::write(dir.path().join("under5.txt"), "cbeebies.com\n").expect("list");
    let config = TestConfig::new()
        .listen_for("10.77.1.1:53", "under5")
        .listen_for("10.77.2.1:53", "ks2")
        .listen_for("10.77.3.1:53", "staff")
        .listen_for("100.64.77.1:53", "staff")
        .upstream("{upstream}")
        .list("video", "video.txt", "video")
        .list("gambling", "gambling.txt", "gambling")
        .list("under5", "under5.txt", "under5-allow")
        .profile(
            "under5",
            "mode = \"allowlist\"\nallow_categories = [\"under5-allow\"]",
        )
        .blocklist("ks2", &["video", "gambling"], "")
        .blocklist("staff", &["gambling"], "youtube = \"off\"")
        .toml();
    let config = expand(&config, &upstream, dir.path());
    let config_path = dir.path().join("lollipop.toml");
    std::fs::write(&config_path, config).expect("config");
    let _lollipop = Process(
        Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .args(["--config", &config_path.display().to_string(), "run"])
            .stderr(Stdio::null())
            .spawn()
            .expect("lollipop starts"),
    );

    let [under5, ks2, staff, outsider] = &network.rooms[..] else {
        panic!("four rooms");
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !dig_from(staff, &["www.example.com"]).contains("192.0.2.10") {
        assert!(Instant::now() < deadline, "lollipop did not answer in 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The same name, three answers.
    let name = ["+short", "www.youtube.com", "A"];
    assert_eq!(dig_from(under5, &name).trim(), "0.0.0.0", "walled garden");
    assert_eq!(
        dig_from(ks2, &name).trim(),
        "0.0.0.0",
        "video blocked for KS2"
    );
    assert_eq!(
        dig_from(staff, &name).trim(),
        "192.0.2.13",
        "staff get YouTube"
    );

    let out = dig_from(under5, &["www.youtube.com"]);
    assert!(
        out.contains("not on the approved list for profile under5"),
        "{out}"
    );
    let out = dig_from(ks2, &["www.youtube.com"]);
    assert!(
        out.contains("category video blocked for profile ks2"),
        "{out}"
    );

    // The under-5 garden lets its own sites through.
    assert_eq!(
        dig_from(under5, &["+short", "www.cbeebies.com"]).trim(),
        "192.0.2.12"
    );
    // Gambling is blocked for staff too.
    assert_eq!(
        dig_from(staff, &["+short", "www.bet365.com"]).trim(),
        "0.0.0.0"
    );

    // Not the school's network: REFUSED, nothing resolved for it.
    let out = dig_from(outsider, &["www.example.com"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    assert!(!out.contains("192.0.2.10"), "{out}");
}
