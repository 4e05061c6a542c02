#!/usr/bin/env python3
"""CPU and memory of the sensor agent at 48 kHz (issue 8).

Builds `shotfix-sensor` (release), writes a 48 kHz, 16-bit test recording
(street-like noise with an impulsive event every 5 s), starts `shotfix serve`
for one sensor, and runs the agent on the recording twice:

1. in real time, as on a rooftop: CPU time over wall time (% of one core),
   read from /proc/<pid>/stat, and the peak resident memory (VmHWM);
2. as fast as it can read: CPU seconds per second of audio.

The rolling buffer (default 30 h) and the uplink are on, as in service.

    python3 scripts/bench-sensor.py [--seconds 120]

Prints one JSON object; docs/sensor.md quotes it.
"""

import argparse
import calendar
import json
import math
import os
import random
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
RATE = 48_000


def build():
    subprocess.run(
        ["cargo", "build", "--release", "-p", "agent", "--bin", "shotfix-sensor"],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(["cargo", "build", "-p", "shotfix"], cwd=ROOT, check=True)
    return (
        os.path.join(TARGET, "release", "shotfix-sensor"),
        os.path.join(TARGET, "debug", "shotfix"),
    )


def recording(path, seconds):
    """Noise at about -50 dBFS with a decaying broadband burst every 5 s."""
    rng = random.Random(8)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        frames = bytearray()
        for n in range(seconds * RATE):
            t = n / RATE
            v = rng.gauss(0.0, 0.003)
            since = t % 5.0
            if since < 0.05:
                v += rng.gauss(0.0, 0.5) * math.exp(-since / 0.004)
            frames += struct.pack("<h", max(-32767, min(32767, int(v * 32767))))
            if len(frames) >= 1 << 20:
                w.writeframes(bytes(frames))
                frames = bytearray()
        w.writeframes(bytes(frames))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_and_peak(pid):
    """(CPU seconds, peak RSS kB) of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    return cpu, peak


def run_agent(binary, config):
    start = time.monotonic()
    p = subprocess.Popen([binary, "--config", config], stderr=subprocess.PIPE, text=True)
    cpu, peak = 0.0, 0
    while p.poll() is None:
        try:
            cpu, peak = cpu_and_peak(p.pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
        time.sleep(0.2)
    wall = time.monotonic() - start
    err = p.stderr.read()
    if p.returncode != 0:
        sys.exit(f"agent failed ({p.returncode}): {err}")
    return wall, cpu, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=120)
    args = ap.parse_args()
    agent, shotfix = build()
    work = tempfile.mkdtemp(prefix="bench-sensor-")
    try:
        wav = os.path.join(work, "street.wav")
        recording(wav, args.seconds)
        key = "5e" * 32
        port = free_port()
        with open(os.path.join(work, "server.toml"), "w") as f:
            f.write(
                f'listen = "127.0.0.1:{port}"\ndatabase = "{work}/s.db"\n\n'
                f'[[sensors]]\nid = "BENCH"\nkey = "{key}"\nlat = 40.44\nlon = -79.99\nalt_m = 250.0\n'
            )
        server = subprocess.Popen(
            [shotfix, "serve", "--config", os.path.join(work, "server.toml")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        sys.exit("server did not start")
                    time.sleep(0.1)
            results = {}
            runs = (("real_time", 1.0, 3), ("as_fast_as_possible", 0.0, 6))
            for name, speed, hour in runs:
                state = os.path.join(work, name)
                config = os.path.join(work, f"{name}.toml")
                with open(config, "w") as f:
                    f.write(
                        f'sensor = "BENCH"\nkey_hex = "{key}"\nstate_dir = "{state}"\n\n'
                        f'[server]\nurl = "http://127.0.0.1:{port}"\n\n'
                        f'[input]\nkind = "wav"\npath = "{wav}"\n'
                        f'start_utc = "2026-11-22T{hour:02}:00:00Z"\nspeed = {speed}\n'
                    )
                wall, cpu, peak = run_agent(agent, config)
                # The pulses the server stored from this run (one burst every 5 s).
                t0 = calendar.timegm((2026, 11, 22, hour, 0, 0)) * 10**9
                with sqlite3.connect(os.path.join(work, "s.db")) as db:
                    (stored,) = db.execute(
                        "SELECT COUNT(*) FROM pulses WHERE t_ns >= ? AND t_ns < ?",
                        (t0, t0 + 3600 * 10**9),
                    ).fetchone()
                results[name] = {
                    "pulses_stored": stored,
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "cpu_percent_of_one_core": round(100 * cpu / wall, 2),
                    "cpu_s_per_audio_s": round(cpu / args.seconds, 4),
                    "peak_rss_mb": round(peak / 1024, 1),
                }
            print(
                json.dumps(
                    {
                        "audio_s": args.seconds,
                        "sample_rate_hz": RATE,
                        "cpu": os.cpu_count(),
                        "results": results,
                    },
                    indent=2,
                )
            )
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
