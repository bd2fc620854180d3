//! Deterministic, realistic-looking domain names for the benches, and the
//! process's peak memory.

const WORDS: &[&str] = &[
    "ads",
    "track",
    "cdn",
    "img",
    "static",
    "media",
    "shop",
    "cheap",
    "free",
    "best",
    "game",
    "play",
    "casino",
    "bet",
    "poker",
    "slots",
    "proxy",
    "vpn",
    "tube",
    "video",
    "stream",
    "live",
    "chat",
    "date",
    "girls",
    "hot",
    "xxx",
    "porn",
    "sex",
    "cam",
    "click",
    "pixel",
    "metrics",
    "stats",
    "analytics",
    "tag",
    "beacon",
    "promo",
    "deal",
    "win",
    "prize",
    "lucky",
    "star",
    "moon",
    "sun",
    "blue",
    "red",
    "green",
    "black",
    "white",
    "fast",
    "super",
    "mega",
    "ultra",
    "world",
    "net",
    "web",
    "online",
    "digital",
    "cloud",
    "data",
    "app",
    "mobile",
    "smart",
    "tech",
    "news",
    "daily",
    "info",
    "guide",
    "top",
    "hub",
    "zone",
    "land",
    "city",
    "club",
    "fan",
    "music",
    "movie",
    "film",
    "anime",
    "manga",
    "torrent",
    "pirate",
    "download",
    "file",
    "share",
    "host",
    "server",
    "node",
    "edge",
    "secure",
    "login",
    "account",
    "bank",
    "pay",
    "wallet",
    "crypto",
    "coin",
    "token",
    "mine",
    "farm",
    "pet",
    "dog",
    "cat",
    "fish",
    "bird",
    "car",
];

/// Weighted roughly like real blocklists: mostly .com, then a long tail.
const TLDS: &[&str] = &[
    "com", "com", "com", "com", "com", "com", "net", "net", "org", "co.uk", "uk", "de", "ru",
    "info", "xyz", "io", "top", "fr", "nl", "br", "cn", "biz", "online", "site", "club", "pl",
];

/// splitmix64: deterministic and dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// One to three labels in front of a TLD, e.g. `cdn.cheapslots417.co.uk`.
pub fn domain(rng: &mut Rng, out: &mut String) {
    out.clear();
    let r = rng.next();
    for _ in 0..r % 3 {
        out.push_str(rng.pick(WORDS));
        out.push('.');
    }
    out.push_str(rng.pick(WORDS));
    if r & 8 != 0 {
        out.push('-');
    }
    out.push_str(rng.pick(WORDS));
    if r & 16 != 0 {
        out.push_str(&(rng.next() % 1000).to_string());
    }
    out.push('.');
    out.push_str(rng.pick(TLDS));
}

/// Linux's high-water mark for this process (VmHWM).
pub fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_owned())
}
