"""First boot's handling of lollipop-setup.toml, run against a scratch root:
the script's paths are under LOLLIPOP_FIRSTBOOT_ROOT, and the system
commands it calls (chpasswd, hostname, openssl, ...) are stand-ins first on
PATH that record their arguments and input.

    python3 -m unittest discover image/tests
"""

import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
import unittest

IMAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(IMAGE, "firstboot", "lollipop-firstboot")
EXAMPLE = os.path.join(IMAGE, "firstboot", "lollipop-setup.toml")
COMMANDS = ["findmnt", "lsblk", "growpart", "resize2fs", "ssh-keygen", "hostname",
            "chpasswd", "lollipop", "openssl", "runuser"]
STAND_IN = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
here = os.path.dirname(os.path.abspath(sys.argv[0]))
stdin = sys.stdin.read()
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps({{"name": name, "args": sys.argv[1:], "stdin": stdin}}) + "\\n")
try:
    with open(os.path.join(here, name + ".exit")) as f:
        code = int(f.read())
except OSError:
    code = 0
if code:
    print(name + ": refused by the test", file=sys.stderr)
sys.exit(code)
"""

GOOD_LOGIN = """
[login]
password = "console-secret"
"""


class FirstBoot(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="lollipop-firstboot-test.")
        self.addCleanup(shutil.rmtree, self.root)
        for d in ["boot/firmware", "etc/lollipop", "etc/systemd/network", "var/lib/lollipop",
                  "usr/share/zoneinfo/Europe", "root", "bin"]:
            os.makedirs(self.path(d))
        with open(self.path("usr/share/zoneinfo/Europe/London"), "w") as f:
            f.write("TZif")
        shutil.copy(os.path.join(IMAGE, "lollipop.toml"), self.path("etc/lollipop/lollipop.toml"))
        for name in COMMANDS:
            command = self.path("bin", name)
            with open(command, "w") as f:
                f.write(STAND_IN.format(python=sys.executable))
            os.chmod(command, os.stat(command).st_mode | stat.S_IXUSR)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def fail_command(self, name):
        with open(self.path("bin", name + ".exit"), "w") as f:
            f.write("1")

    def first_boot(self, setup):
        with open(self.path("boot/firmware/lollipop-setup.toml"), "w") as f:
            f.write(setup)
        user = pwd.getpwuid(os.getuid()).pw_name
        env = {
            "PATH": self.path("bin"),
            "LOLLIPOP_FIRSTBOOT_ROOT": self.root,
            "LOLLIPOP_FIRSTBOOT_SERVICE_USER": grp.getgrgid(os.getgid()).gr_name,
            "LOLLIPOP_FIRSTBOOT_SECRET_OWNER": user,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        done = subprocess.run([sys.executable, SCRIPT, "apply"], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, check=False)
        self.console = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, self.console)
        with open(self.path("boot/firmware/lollipop-setup.result"), newline="") as f:
            self.result = f.read()
        with open(self.path("boot/firmware/lollipop-setup.toml")) as f:
            self.setup_after = f.read()

    def calls(self, name):
        try:
            with open(self.path("bin", "calls.jsonl")) as f:
                return [c for c in map(json.loads, f) if c["name"] == name]
        except FileNotFoundError:
            return []

    def assert_password_set(self, password):
        self.assertEqual([c["stdin"] for c in self.calls("chpasswd")], [f"root:{password}\n"], self.console)

    def test_broken_email_section_costs_neither_the_login_nor_its_own_password(self):
        self.first_boot('admin_email = "head@school.example"\nhostname = "office-dns"\n' + GOOD_LOGIN + """
[email]
host = 25
password = "mail-secret"
from = "lollipop@school.example"
""")
        self.assert_password_set("console-secret")
        self.assertIn("email.host must be text", self.result)
        self.assertIn("[email] password: NOT applied, so it is still in lollipop-setup.toml", self.result)
        self.assertIn('password = "mail-secret"', self.setup_after)
        self.assertNotIn("console-secret", self.setup_after)
        self.assertFalse(os.path.exists(self.path("etc/lollipop/smtp.password")))
        # The other tables still apply.
        self.assertIn("host name office-dns", self.result)
        self.assertIn("PROBLEM: lollipop-setup.toml: email.host must be text", self.console)
        self.assertIn("\r\n", self.result, "CRLF line ends, for Notepad")

    def test_file_that_is_not_toml_still_applies_its_login_section(self):
        # The example's pitfall: a second password key in one table, and
        # unquoted text, make the whole file invalid TOML.
        self.first_boot('school_name = Our school\n' + GOOD_LOGIN + """
[email]
password = ""
password = "mail-secret"
""")
        self.assert_password_set("console-secret")
        self.assertIn("not valid TOML", self.result)
        self.assertIn("[email] is not valid TOML", self.result)
        self.assertIn("root password set", self.result)
        self.assertIn("[login] password: applied, and removed", self.result)
        self.assertNotIn("console-secret", self.setup_after)
        self.assertIn('password = "mail-secret"', self.setup_after)

    def test_applied_login_password_is_wiped_from_the_card(self):
        self.first_boot('hostname = "lollipop"\n' + GOOD_LOGIN)
        self.assert_password_set("console-secret")
        self.assertNotIn("console-secret", self.setup_after)
        self.assertEqual(tomllib.loads(self.setup_after)["login"]["password"], "")
        self.assertIn("No problems.", self.result)
        with open(self.path("var/lib/lollipop-firstboot/problems")) as f:
            self.assertEqual(f.read(), "")

    def test_password_chpasswd_refused_stays_on_the_card_and_is_reported(self):
        self.fail_command("chpasswd")
        self.first_boot(GOOD_LOGIN)
        self.assertEqual(len(self.calls("chpasswd")), 1)
        self.assertIn('password = "console-secret"', self.setup_after)
        self.assertIn("the root password from [login] was not set: chpasswd: refused by the test", self.result)
        self.assertIn("[login] password: NOT applied, so it is still in lollipop-setup.toml", self.result)
        with open(self.path("var/lib/lollipop-firstboot/problems")) as f:
            self.assertIn("root password from [login] was not set", f.read())

    def test_applied_email_password_moves_to_its_secret_file(self):
        self.first_boot('admin_email = "head@school.example"\n' + """
[email]
host = "smtp.school.example"
password = "mail-secret"
from = "lollipop@school.example"
""")
        with open(self.path("etc/lollipop/smtp.password")) as f:
            self.assertEqual(f.read(), "mail-secret\n")
        self.assertNotIn("mail-secret", self.setup_after)
        self.assertIn("[email] password: applied, and removed", self.result)

    def test_broken_network_falls_back_to_dhcp_and_the_rest_applies(self):
        self.first_boot('hostname = "office-dns"\n[network]\nmode = "static"\naddress = "10.0.0.2"\n'
                        'gateway = "10.0.0.1"\n' + GOOD_LOGIN)
        self.assert_password_set("console-secret")
        self.assertIn("needs its prefix length", self.result)
        with open(self.path("etc/systemd/network/10-lollipop.network")) as f:
            self.assertIn("DHCP=yes", f.read())
        with open(self.path("etc/hostname")) as f:
            self.assertEqual(f.read(), "office-dns\n")

    def config_after(self):
        with open(self.path("etc/lollipop/lollipop.toml")) as f:
            text = f.read()
        # With the real binary at hand (the Rust suite passes it), the written
        # config must pass its own check, as first boot's stand-in cannot show.
        real = os.environ.get("LOLLIPOP_BIN")
        if real:
            checked = subprocess.run([real, "--config", self.path("etc/lollipop/lollipop.toml"), "config", "check"],
                                     capture_output=True, text=True, timeout=60, check=False)
            self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
        return tomllib.loads(text)

    def test_upstream_replaces_the_encrypted_defaults_with_plain_dns(self):
        self.first_boot('[network]\nmode = "dhcp"\nupstream = ["10.0.2.2:5300", "192.168.1.1", "[fd00::53]:53"]\n'
                        + GOOD_LOGIN)
        self.assertIn("No problems.", self.result, self.console)
        self.assertEqual(self.config_after()["upstream"], [
            {"address": "10.0.2.2:5300", "protocol": "udp"},
            {"address": "192.168.1.1:53", "protocol": "udp"},
            {"address": "[fd00::53]:53", "protocol": "udp"},
        ])
        self.assertIn("allowed lookups go to 10.0.2.2:5300, 192.168.1.1:53", self.result)

    def test_bad_upstream_keeps_the_shipped_ones_and_costs_nothing_else(self):
        self.first_boot('[network]\nmode = "static"\naddress = "10.0.0.2/24"\ngateway = "10.0.0.1"\n'
                        'upstream = ["dns.council.example"]\n' + GOOD_LOGIN)
        self.assert_password_set("console-secret")
        self.assertIn("network.upstream 'dns.council.example' is not an IP address", self.result)
        self.assertEqual([u["address"] for u in self.config_after()["upstream"]], ["9.9.9.9", "1.1.1.2"])
        with open(self.path("etc/systemd/network/10-lollipop.network")) as f:
            self.assertIn("Address=10.0.0.2/24", f.read())

    def test_recursive_resolution_sets_the_resolver_mode_and_keeps_the_shipped_hints(self):
        self.first_boot('[network]\nresolution = "recursive"\n' + GOOD_LOGIN)
        self.assertIn("No problems.", self.result, self.console)
        config = self.config_after()
        self.assertEqual(config["resolver"]["mode"], "recursive")
        self.assertNotIn("root_hints", config["resolver"])
        self.assertNotIn("trust_anchor", config["resolver"])
        self.assertIn("answered from the root servers down", self.result)

    def test_encrypted_resolution_keeps_the_shipped_encrypted_upstreams(self):
        self.first_boot('[network]\nresolution = "encrypted"\n' + GOOD_LOGIN)
        self.assertIn("No problems.", self.result, self.console)
        config = self.config_after()
        self.assertNotIn("mode", config["resolver"])
        self.assertEqual([u["address"] for u in config["upstream"]], ["9.9.9.9", "1.1.1.2"])
        self.assertEqual({u["protocol"] for u in config["upstream"]}, {"tls"})
        self.assertIn("Quad9 and Cloudflare, encrypted", self.result)

    def test_bad_resolution_costs_only_itself(self):
        self.first_boot('hostname = "office-dns"\n[network]\nresolution = "fast"\n'
                        'upstream = ["192.168.1.1"]\n' + GOOD_LOGIN)
        self.assert_password_set("console-secret")
        self.assertIn("network.resolution 'fast': \"encrypted\" or \"recursive\"", self.result)
        self.assertIn("it is taken as left out", self.result)
        # Left out with upstream set: plain forwarding, as before.
        config = self.config_after()
        self.assertNotIn("mode", config["resolver"])
        self.assertEqual(config["upstream"], [{"address": "192.168.1.1:53", "protocol": "udp"}])
        with open(self.path("etc/hostname")) as f:
            self.assertEqual(f.read(), "office-dns\n")

    def test_resolution_with_upstream_keeps_the_choice_and_reports_the_servers_unused(self):
        self.first_boot('[network]\nresolution = "recursive"\nupstream = ["192.168.1.1"]\n' + GOOD_LOGIN)
        self.assertIn('network.upstream is not used with resolution = "recursive"', self.result)
        config = self.config_after()
        self.assertEqual(config["resolver"]["mode"], "recursive")
        self.assertNotIn("192.168.1.1:53", [u["address"] for u in config["upstream"]])

    def test_example_file_as_shipped_applies_without_problems(self):
        with open(EXAMPLE) as f:
            self.first_boot(f.read())
        self.assertIn("No problems.", self.result, self.console)
        self.assertEqual(self.calls("chpasswd"), [])
        self.assertEqual(self.config_after()["web"]["listen"], ["0.0.0.0:443"])


class ExampleFile(unittest.TestCase):
    """The example cannot be made invalid by uncommenting its settings."""

    def setUp(self):
        with open(EXAMPLE) as f:
            self.lines = f.read().splitlines()
        self.setting = re.compile(r"^#\s*([A-Za-z_]+\s*=.*)$")

    def test_every_commented_setting_uncommented_still_parses(self):
        uncommented = [self.setting.sub(r"\1", line) for line in self.lines]
        self.assertNotEqual(uncommented, self.lines, "the example has commented settings")
        tomllib.loads("\n".join(uncommented))

    def test_each_commented_setting_uncommented_alone_parses(self):
        for i, line in enumerate(self.lines):
            if self.setting.match(line):
                lines = list(self.lines)
                lines[i] = self.setting.sub(r"\1", line)
                tomllib.loads("\n".join(lines))

    def test_no_table_header_is_commented_out(self):
        # A commented header would put the settings under it into the table
        # above: uncommenting them alone would then duplicate its keys.
        self.assertEqual([line for line in self.lines if re.match(r"^#\s*\[", line)], [])
