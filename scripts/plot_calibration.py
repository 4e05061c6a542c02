#!/usr/bin/env python3
"""Plots docs/calibration.png from the CSV of `shotfix eval calibration --csv`.

Usage: shotfix eval calibration --csv /tmp/cal.csv && python3 scripts/plot_calibration.py /tmp/cal.csv docs/calibration.png
Needs matplotlib (a documentation aid only; nothing in the build or tests uses it).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

rows = list(csv.DictReader(open(sys.argv[1])))
fig, ax = plt.subplots(figsize=(8, 5))
for source, color, label in [
    ("simulated", "tab:orange", "simulated (handguns, random streets)"),
    ("pittsburgh", "tab:blue", "Pittsburgh live fire (ShotSpotter, CC BY 4.0)"),
]:
    pts = [(float(r["distance_m"]), float(r["level_db_spl"])) for r in rows if r["source"] == source]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=6, alpha=0.35, color=color, label=label)
ax.set_xscale("log")
ax.set_xlim(50, 3000)
ax.set_xlabel("source-to-sensor distance, m")
ax.set_ylabel("first-arrival level, dB SPL (full scale 93.09)")
ax.set_title("Received level against distance: simulator vs real sensors")
ax.legend(loc="lower left")
ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
