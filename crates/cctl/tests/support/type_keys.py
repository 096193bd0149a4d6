"""Runs a command in a pseudo-terminal and types into it, as a user would.

Usage: type_keys.py SECONDS:TEXT... -- PROGRAM ARGS...

Each SECONDS:TEXT waits that long, then types TEXT (Python escapes such as
\\n or \\x10 are the bytes they name). Everything the terminal showed is
printed, then "exit=N" with the program's exit code. The program is killed
after 60 seconds.
"""

import os
import pty
import select
import sys
import time

split = sys.argv.index("--")
keys = []
for item in sys.argv[1:split]:
    seconds, text = item.split(":", 1)
    keys.append((float(seconds), text.encode().decode("unicode_escape").encode("latin-1")))
argv = sys.argv[split + 1 :]

pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

shown = b""


def read_for(seconds):
    global shown
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        shown += chunk
    return True


for seconds, text in keys:
    if not read_for(seconds):
        break
    os.write(fd, text)
# Read until the terminal closes (the program ended) or time runs out.
deadline = time.time() + 60
while time.time() < deadline and read_for(0.2):
    pass
status = None
while status is None and time.time() < deadline + 10:
    done, code = os.waitpid(pid, os.WNOHANG)
    if done:
        status = code
    else:
        time.sleep(0.05)
if status is None:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
sys.stdout.write(shown.decode("utf-8", "replace"))
sys.stdout.write("\nexit=%d\n" % os.waitstatus_to_exitcode(status))
