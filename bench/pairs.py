"""Paired ratios for the lab scripts (bench/tlslab.sh, bench/h2lab.sh).

    python3 bench/pairs.py RESULTS NAME:COLUMN[,NAME:COLUMN...] FIRST OTHER...

RESULTS holds lines "round R CONTENDER ..."; COLUMN is the index of a
whitespace-separated field in them. For each measure and each OTHER
contender: the geometric mean of OTHER / FIRST, paired within a round, with
a 95 % interval (Student's t on the logarithms).
"""
import math
import statistics
import sys

T95 = [0, 12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145]


def main():
    rows = [l.split() for l in open(sys.argv[1]) if l.startswith("round ")]
    measures = [m.split(":") for m in sys.argv[2].split(",")]
    first, others = sys.argv[3], sys.argv[4:]
    rounds = sorted({r[1] for r in rows}, key=int)
    for name, col in measures:
        val = {(r[1], r[2]): float(r[int(col)]) for r in rows}
        for c in others:
            logs = [math.log(val[(r, c)] / val[(r, first)]) for r in rounds if (r, c) in val and (r, first) in val]
            if len(logs) < 2:
                print(f"{c} / {first}: too few pairs")
                continue
            m, se = statistics.mean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
            t = T95[len(logs) - 1] if len(logs) - 1 < len(T95) else 2.0
            print(f"{c} / {first}: {name} {math.exp(m):.3f} (95 % CI {math.exp(m - t * se):.3f}-{math.exp(m + t * se):.3f}), {len(logs)} pairs")


main()
