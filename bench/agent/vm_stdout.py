#!/usr/bin/env python3
"""Stdout of a container in a real VM, consumed on the host, per transport.

Usage: vm_stdout.py CCTL STATE_ROOT IMAGE MIB RUNS [PODMAN_IMAGE]

The container writes MIB MiB of zeros with `dd bs=64k` (busybox `head -c`
copies a byte at a time through stdio, which under TCG costs more than
either transport and would hide them).

Each round runs every case once, in turn (so a noisy neighbour hits them all
alike), RUNS rounds after one warm-up round. A case is a shell pipeline whose
wall time is taken whole; its floor (the same VM writing nothing) is measured
in the same rounds and subtracted, so a rate is MIB over the time the bytes
themselves took. Ratios are of medians.
"""

import os
import statistics
import subprocess
import sys
import time
from shlex import quote


def main() -> None:
    cctl, root, image, mib, runs = sys.argv[1:6]
    podman_image = sys.argv[6] if len(sys.argv) > 6 else ""
    size = int(mib) << 20
    env = {**os.environ, "CZ_ROOT": root}

    def cctl_run(transport: str, command: str) -> str:
        chosen = "CZ_AGENT_TRANSPORT=vsock" if transport == "vsock" else "CZ_AGENT_TRANSPORT="
        return f"env {chosen} {cctl} run --rm --network none {image} {command}"

    write = f"dd if=/dev/zero bs=64k count={size >> 16} 2>/dev/null"
    nothing = "true"
    cases = {
        "serial": f"{cctl_run('serial', f'sh -c {quote(write)}')} | sha256sum >/dev/null",
        "serial floor": f"{cctl_run('serial', nothing)} | sha256sum >/dev/null",
        "vsock": f"{cctl_run('vsock', f'sh -c {quote(write)}')} | sha256sum >/dev/null",
        "vsock floor": f"{cctl_run('vsock', nothing)} | sha256sum >/dev/null",
        # The same bytes through a pipe inside the guest: the emulated CPU's
        # own ceiling, which no transport can pass.
        "guest pipe": cctl_run("serial", f"sh -c '{write} | dd bs=64k of=/dev/null 2>/dev/null'"),
    }
    if podman_image:
        podman = f"podman run --rm --network none {podman_image}"
        cases["podman"] = f"{podman} sh -c {quote(write)} | sha256sum >/dev/null"
        cases["podman floor"] = f"{podman} {nothing} | sha256sum >/dev/null"

    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(int(runs) + 1):
        for name, command in cases.items():
            start = time.monotonic()
            subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, check=True)
            took = time.monotonic() - start
            if round_ > 0:
                times[name].append(took)
        if round_ > 0:
            print(f"round {round_}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()),
                  flush=True)

    median = {name: statistics.median(t) for name, t in times.items()}

    def rate(name: str, floor: str | None) -> float:
        spent = median[name] - (median[floor] if floor else median["serial floor"])
        return int(mib) / max(spent, 1e-9)

    serial = rate("serial", "serial floor")
    vsock = rate("vsock", "vsock floor")
    pipe = rate("guest pipe", "serial floor")
    print(f"{mib} MiB of stdout (dd bs=64k) into the host's sha256sum, medians of {runs} rounds:")
    for name, value in median.items():
        print(f"  {name:13} {value:7.2f} s")
    print(f"serial {serial:.1f} MiB/s, vsock {vsock:.1f} MiB/s, guest pipe {pipe:.1f} MiB/s"
          " (each over its floor)")
    print(f"rate ratio serial/vsock: {serial / vsock:.2f}  (goal >= 0.5)")
    print(f"rate ratio serial/guest pipe: {serial / pipe:.2f}, vsock/guest pipe: {vsock / pipe:.2f}")
    if podman_image:
        podman = rate("podman", "podman floor")
        print(f"podman {podman:.1f} MiB/s (no VM); serial/podman {serial / podman:.2f}")


if __name__ == "__main__":
    main()
