"""lollipop-setup.toml, the card's first-boot settings: reading it (a table
at a time when the whole is not valid TOML), checking each setting on its
own, and removing applied passwords from it. Used by lollipop-firstboot,
which applies the settings to the system."""

import ipaddress
import os
import re
import tomllib

TOP_KEYS = ("school_name", "admin_email", "hostname", "time_zone")
TABLES = ("network", "login", "email")
class SetupError(Exception):
    """A value in lollipop-setup.toml that cannot be used."""


class Report:
    """What first boot did, for the console and for lollipop-setup.result."""

    def __init__(self):
        self.applied, self.problems, self.secrets = [], [], []

    def done(self, what):
        self.applied.append(what)
        log(what)

    def problem(self, what):
        self.problems.append(what)
        log(f"PROBLEM: {what}")

    def secret(self, what):
        self.secrets.append(what)
        log(what)


def log(message):
    print(f"lollipop-firstboot: {message}", flush=True)


# A table header, [name] (or [[name]], [a.b]: reported as unknown tables).
HEADER = re.compile(r"^\s*\[+\s*([^\]]*?)\s*\]+\s*(#.*)?$")


def split_tables(text):
    """Each table's text on its own, the other lines blanked so that error
    line numbers still match the file ("" holds the keys before any header)."""
    lines = text.splitlines()
    owner, current = [], ""
    for line in lines:
        match = HEADER.match(line)
        if match:
            current = match.group(1)
            owner.append(None)
        else:
            owner.append(current)
    return {
        name: "\n".join(line if who == name else "" for line, who in zip(lines, owner))
        for name in dict.fromkeys(who for who in owner if who is not None)
    }


def where(name):
    return f"[{name}]" if name else "the settings before [network]"


def read_setup(path, report):
    """The file's tables by name ("" for the top-level keys). A file that is
    not valid TOML as a whole is read one table at a time, so one broken
    table (say [email]) does not cost the others, [login] above all."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as error:
        report.problem(f"lollipop-setup.toml: cannot be read ({error}); DHCP and the defaults are used")
        return {}
    try:
        # Notepad may save with a byte-order mark, which TOML does not allow.
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        report.problem(f"lollipop-setup.toml: not UTF-8 text ({error}); save it as UTF-8")
        text = raw.decode("utf-8", errors="replace")
    try:
        whole = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        report.problem(f"lollipop-setup.toml: not valid TOML ({error}); each section was read on its own")
    else:
        tables = {"": {k: v for k, v in whole.items() if not isinstance(v, dict)}}
        tables.update((k, v) for k, v in whole.items() if isinstance(v, dict))
        return tables
    tables = {}
    for name, part in split_tables(text).items():
        try:
            tables[name] = tomllib.loads(part)
        except tomllib.TOMLDecodeError as error:
            report.problem(f"lollipop-setup.toml: {where(name)} is not valid TOML ({error}), so it was not applied")
    return tables


def text(table, key, default, prefix):
    value = table.get(key, default)
    if not isinstance(value, str):
        raise SetupError(f"{prefix}{key} must be text in double quotes, not {value!r}")
    return value.strip()


def check_top(setup, key, zoneinfo):
    value = text(setup, key, DEFAULTS[key], "")
    if key == "hostname":
        value = value.lower()
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", value):
            raise SetupError(f"hostname {value!r}: letters, digits and '-' only, at most 63")
    elif key == "time_zone":
        if ".." in value or not os.path.isfile(os.path.join(zoneinfo, value)):
            raise SetupError(f"time_zone {value!r} is not a known time zone (e.g. \"Europe/London\")")
    elif key == "admin_email" and value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise SetupError(f"admin_email {value!r} is not an email address")
    return value


def check_network(network):
    mode = text(network, "mode", "dhcp", "network.")
    if mode == "dhcp":
        return {"mode": mode}
    if mode != "static":
        raise SetupError(f"network.mode {mode!r}: \"dhcp\" or \"static\"")
    try:
        address = ipaddress.ip_interface(text(network, "address", "", "network."))
        gateway = ipaddress.ip_address(text(network, "gateway", "", "network."))
        dns = [ipaddress.ip_address(d) for d in network.get("dns", [])]
    except (ValueError, TypeError) as error:
        raise SetupError(f"[network] static: {error} (e.g. address = \"192.168.1.2/24\")") from error
    if address.network.prefixlen == address.max_prefixlen:
        raise SetupError(f"network.address {address} needs its prefix length, e.g. /24")
    if gateway not in address.network:
        raise SetupError(f"network.gateway {gateway} is not in {address.network}")
    return {"mode": mode, "address": address, "gateway": gateway, "dns": dns}


def check_upstream(network):
    """The resolvers Lollipop forwards allowed lookups to, as "IP" or
    "IP:port" ("[IPv6]:port"); empty keeps the shipped encrypted ones."""
    servers = network.get("upstream", [])
    if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
        raise SetupError('network.upstream must be a list of addresses, e.g. ["192.168.1.1"]')
    if len(servers) > 4:
        raise SetupError(f"network.upstream names {len(servers)} servers; at most 4 are tried")
    checked = []
    for server in servers:
        match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([0-9.]+):(\d+)|([0-9A-Fa-f:.]+)", server.strip())
        try:
            if not match:
                raise ValueError(server)
            host = match.group(1) or match.group(3) or match.group(5)
            port = int(match.group(2) or match.group(4) or 53)
            ip = ipaddress.ip_address(host)
            if not 0 < port < 65536:
                raise ValueError(server)
        except ValueError as error:
            raise SetupError(f"network.upstream {server!r} is not an IP address (or address:port), e.g. \"192.168.1.1\"") from error
        checked.append(f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}")
    return checked


RESOLUTIONS = ("encrypted", "recursive")


def check_resolution(network):
    """How allowed lookups are answered: "encrypted" (the shipped DoT
    upstreams) or "recursive" (from the root servers down); None when left
    out, which means plain DNS to network.upstream if set, else encrypted."""
    if "resolution" not in network:
        return None
    value = text(network, "resolution", "", "network.").lower()
    if value not in RESOLUTIONS:
        raise SetupError(f'network.resolution {value!r}: "encrypted" or "recursive" '
                         '(or leave it out and set upstream = [...] for the LA\'s servers)')
    return value


def check_ssh_key(login):
    key = text(login, "ssh_key", "", "login.")
    if key and not re.match(r"(ssh-|ecdsa-|sk-)\S+ \S+", key):
        raise SetupError("login.ssh_key is not an SSH public key (one line of a .pub file)")
    return key


def check_password(login):
    password = login.get("password", "")
    if not isinstance(password, str) or "\n" in password:
        raise SetupError("login.password must be one line of text in double quotes")
    return password


def check_email(email, admin_email):
    if not admin_email:
        raise SetupError("[email] is set but admin_email, who receives the alerts, is empty or was not valid")
    checked = {
        "host": text(email, "host", "", "email."),
        "port": email.get("port", 587),
        "username": text(email, "username", "", "email."),
        "password": email.get("password", ""),
        "from": text(email, "from", "", "email."),
    }
    if not checked["host"] or not checked["from"]:
        raise SetupError("[email] needs host and from")
    if not isinstance(checked["port"], int):
        raise SetupError("email.port must be a number")
    if not isinstance(checked["password"], str):
        raise SetupError("email.password must be text in double quotes")
    return checked


DEFAULTS = {"school_name": "Our school", "admin_email": "", "hostname": "lollipop", "time_zone": "Europe/London"}


def settings_from(tables, report, zoneinfo="/usr/share/zoneinfo"):
    """Each setting is checked on its own: a mistake costs that setting (or
    that table) alone, which falls back to its default and is reported."""
    s = {"network": {"mode": "dhcp"}, "upstream": [], "resolution": None, "ssh_key": "", "password": "",
         "email": None}
    unknown = sorted(set(tables) - {"", *TABLES})
    unknown += sorted(set(tables.get("", {})) - set(TOP_KEYS))
    if unknown:
        known = ", ".join([*TOP_KEYS, *(f"[{t}]" for t in TABLES)])
        report.problem(f"lollipop-setup.toml: unknown setting(s) ignored: {', '.join(unknown)} (known: {known})")
    for key in TOP_KEYS:
        try:
            s[key] = check_top(tables.get("", {}), key, zoneinfo)
        except SetupError as error:
            s[key] = DEFAULTS[key]
            report.problem(f"lollipop-setup.toml: {error}; {DEFAULTS[key]!r} is used instead")
    checks = [
        ("network", "network", check_network, "DHCP is used instead"),
        ("network", "upstream", check_upstream, "Lollipop's encrypted upstreams (Quad9, Cloudflare) are used"),
        ("network", "resolution", check_resolution, "it is taken as left out"),
        ("login", "ssh_key", check_ssh_key, "no SSH key was added"),
        ("login", "password", check_password, "no root password was set"),
    ]
    if tables.get("email"):
        checks.append(("email", "email", lambda t: check_email(t, s["admin_email"]), "no alert emails are sent"))
    for table, key, check, instead in checks:
        if table in tables:
            try:
                s[key] = check(tables[table])
            except SetupError as error:
                report.problem(f"lollipop-setup.toml: {error}; {instead}")
    if s["resolution"] and s["upstream"]:
        # The explicit choice wins; the servers alone are what is dropped.
        report.problem(f"lollipop-setup.toml: network.upstream is not used with resolution = "
                       f"\"{s['resolution']}\"; remove one of the two (upstream alone means plain DNS to those servers)")
        s["upstream"] = []
    return s


def write_atomically(path, content):
    """A power cut leaves the old file or the new one, never half of one."""
    temporary = path + ".new"
    with open(temporary, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    try:
        directory = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError:
        pass  # Not every file system syncs a directory; apply() calls os.sync() last.


PASSWORD_LINE = re.compile(r"""^(\s*password\s*=\s*)("(?:[^"\\]|\\.)*"|'[^']*')(.*)$""")


def password_tables(path):
    """The tables with a non-empty password line, found line by line: also in
    a table too broken to read, whose password then stays on the card."""
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return set()
    found, current = set(), ""
    for line in lines:
        header = HEADER.match(line)
        if header:
            current = header.group(1)
            continue
        match = PASSWORD_LINE.match(line)
        if match and match.group(2) not in ('""', "''"):
            found.add(current)
    return found


def scrub_passwords(path, tables):
    """Removes the password lines of the named tables from the setup file:
    secrets do not stay on a partition any laptop can read, once applied.
    Returns the tables whose password line could not be found."""
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8", errors="surrogateescape").splitlines(keepends=True)
    current, left = "", set(tables)
    for i, line in enumerate(lines):
        header = HEADER.match(line)
        if header:
            current = header.group(1)
            continue
        match = PASSWORD_LINE.match(line.rstrip("\r\n"))
        if current in tables and match and match.group(2) not in ('""', "''"):
            ending = line[len(line.rstrip("\r\n")):]
            lines[i] = f'{match.group(1)}""  # applied on first boot, then removed{ending}'
            left.discard(current)
    write_atomically(path, "".join(lines).encode("utf-8", errors="surrogateescape"))
    return left
