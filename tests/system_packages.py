"""Install the system programs the test suite drives, when they are missing.

Chromium (browser tests) and Dovecot (IMAP tests) come from the operating
system, not PyPI. As root on Debian or Ubuntu this installs them with apt-get;
otherwise it says what to install and exits with status 1.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

NEEDED = {
    "chromium": (
        Path(os.environ.get("PATRA_CHROMIUM", "/usr/bin/chromium")),
        "chromium",
    ),
    "dovecot": (Path("/usr/sbin/dovecot"), "dovecot-imapd"),
}


def main() -> int:
    missing = [package for path, package in NEEDED.values() if not path.exists()]
    if not missing:
        return 0
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.stderr.write(
            "The tests need these system packages: " + " ".join(missing) + ".\n"
            "Install them with your package manager (Debian/Ubuntu: "
            f"sudo apt-get install {' '.join(missing)}) and run the tests again.\n"
        )
        return 1
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=environment,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
