"""Drives `cctl run -t` from a pseudo-terminal, as a user at a terminal would.

Usage: drive_tty.py CCTL IMAGE FLAGS

FLAGS is `-it` (the keys go to the container: Ctrl-C is a byte its terminal
turns into SIGINT) or `-t` (cctl's terminal stays cooked: Ctrl-C is a
SIGINT to cctl, which forwards it).

The terminal starts at 30 rows by 100 columns. The container prints its
size, traps SIGWINCH to print it again and SIGINT to say "got-int" and exit
130, says "ready" and loops. The driver
then resizes the terminal to 40 by 120, waits for the new size, and types
Ctrl-C. It prints everything the terminal showed, then "exit=N" with cctl's
exit code. Each wait gives up after 60 seconds.
"""

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

cctl, image, flags = sys.argv[1], sys.argv[2], sys.argv[3]
# The shell is the container's PID 1, which the kernel shields from signals
# it has no handler for (as under Docker): it traps SIGINT to show it came.
script = (
    "stty size; trap 'stty size' WINCH; trap 'echo got-int; exit 130' INT; "
    "echo ready; while :; do sleep 1; done"
)


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


pid, master = pty.fork()
if pid == 0:
    set_size(0, 30, 100)
    os.execv(cctl, [cctl, "run", "--rm", flags, image, "sh", "-c", script])

seen = b""


def wait_for(text):
    global seen
    deadline = time.monotonic() + 60
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([master], [], [], left)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            seen += chunk
    return True


ok = wait_for(b"ready")
if ok:
    set_size(master, 40, 120)
    ok = wait_for(b"40 120")
if ok:
    os.write(master, b"\x03")
# Whatever happens, read until cctl closes the terminal (or a minute has
# passed, when it is killed), then collect its exit code.
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    ready, _, _ = select.select([master], [], [], 1)
    if ready:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
else:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
print(f"\nexit={os.waitstatus_to_exitcode(status)}")
