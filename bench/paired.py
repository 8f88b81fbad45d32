#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Paired medians with bootstrap 95 % intervals, for the live benchmarks.

    paired.py FILE METRIC BASE CFG... [--goal-max X | --goal-min X] [--vs A:B ...]
              [--goal-for CFG,...] [--ratio A:B ...] [--noise CFG] [--best]

FILE holds "key metric cfg value" lines; a key is one pass (or round) in
which every configuration was measured once, close together in time. For
each CFG: the median over keys of its value paired with BASE's of the same
key (a difference for metrics ending in _us or _ns, a percentage of BASE
otherwise) and a 95 % interval of that median from 2,000 bootstrap
resamples of the keys (all configurations resampled together, as a key's
figures belong together). --goal-max X / --goal-min X add a verdict per
CFG: "met" when the whole interval is on the goal's side, "NOT met" when
it is all on the other side, "undecided" otherwise (--goal-for: only for
these configurations). --vs A:B adds A paired
with B directly (A as a percentage of B, or A - B). --ratio A:B (times
only): A's median added over BASE divided by B's, with its interval.
--noise CFG names a configuration identical to BASE: if its interval is
off zero by more than 0.05 (100 % by more than 1 % for rates) the run
gets no goal verdicts. --best adds each CFG's best key against BASE's
best key (the classic "best of N", for times the lowest).
"""
import collections
import random
import statistics
import sys

RESAMPLES = 2000


def die(msg):
    print("paired.py: " + msg, file=sys.stderr)
    sys.exit(2)


def load(path, metric):
    vals = collections.defaultdict(dict)
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if len(parts) != 4:
                    die("%s:%d: want 'key metric cfg value', got %r" % (path, n, line.strip()))
                k, m, c, v = parts
                if m == metric:
                    vals[c][k] = float(v)
    except (OSError, ValueError) as e:
        die("%s: %s" % (path, e))
    return vals


def main(argv):
    args, goal, vs, ratios, noise, best, goal_for = [], None, [], [], None, False, None
    it = iter(argv)
    for a in it:
        if a in ("--goal-max", "--goal-min"):
            try:
                goal = (a, float(next(it, "")))
            except ValueError:
                die("%s wants a number" % a)
        elif a in ("--vs", "--ratio"):
            pair = next(it, "")
            if ":" not in pair:
                die("%s wants A:B, got %r" % (a, pair))
            (vs if a == "--vs" else ratios).append(tuple(pair.split(":", 1)))
        elif a == "--goal-for":
            goal_for = next(it, "").split(",")
        elif a == "--noise":
            noise = next(it, "")
        elif a == "--best":
            best = True
        else:
            args.append(a)
    if len(args) < 4:
        die("usage: paired.py FILE METRIC BASE CFG... [--goal-max X|--goal-min X]"
            " [--goal-for CFG,...] [--vs A:B] [--ratio A:B] [--noise CFG] [--best]")
    path, metric, base, cfgs = args[0], args[1], args[2], args[3:]
    vals = load(path, metric)
    lat = metric.endswith(("_us", "_ns"))
    if ratios and not lat:
        die("--ratio is for times (metrics ending in _us or _ns)")
    pairs = [(c, base) for c in cfgs] + vs
    if noise and (noise, base) not in pairs:
        pairs.append((noise, base))
    names = {c for p in pairs for c in p} | {c for r in ratios for c in r}
    missing = [c for c in names if c not in vals]
    if missing:
        die("%s: no %s samples for %s" % (path, metric, ", ".join(sorted(missing))))
    keys = sorted(set.intersection(*(set(vals[c]) for c in names)))
    if not keys:
        die("%s: no key has %s for all of %s" % (path, metric, ", ".join(sorted(names))))

    def stat(a, b, ks):
        xs = [vals[a][k] - vals[b][k] if lat else 100 * vals[a][k] / vals[b][k]
              for k in ks if lat or vals[b][k]]
        return statistics.median(xs)

    # A ratio divides two configurations' medians against BASE: both are pairs.
    pairs += [(c, base) for r in ratios for c in r if (c, base) not in pairs]

    def ratio(m, a, b):
        d = m[(b, base)]
        return m[(a, base)] / d if d > 0 else None

    rnd = random.Random(1)
    boot = collections.defaultdict(list)
    for _ in range(RESAMPLES):
        ks = [keys[rnd.randrange(len(keys))] for _ in keys]
        m = {p: stat(p[0], p[1], ks) for p in pairs}
        for p in pairs:
            boot[p].append(m[p])
        for r in ratios:
            boot[("ratio",) + r].append(ratio(m, r[0], r[1]))
    whole = {p: stat(p[0], p[1], keys) for p in pairs}

    def interval(xs):
        xs = sorted(xs)
        return xs[int(0.025 * len(xs))], xs[int(0.975 * len(xs)) - 1]

    unit = metric.rsplit("_", 1)[-1]
    fmt = ("%+.2f " + unit) if lat else "%.1f %%"
    quiet = True
    if noise:
        lo, hi = interval(boot[(noise, base)])
        zero, tol = (0.0, 0.05) if lat else (100.0, 1.0)
        quiet = lo <= zero + tol and hi >= zero - tol
    print("%s, paired over %d keys: median (95 %% interval)" % (metric, len(keys)))
    for p in pairs:
        lo, hi = interval(boot[p])
        what = ("%s - %s" if lat else "%s / %s") % p
        line = "  %-28s %s (%s .. %s)" % (what, fmt % whole[p], fmt % lo, fmt % hi)
        if goal and p[1] == base and p[0] in (goal_for or cfgs):
            kind, x = goal
            good, bad = (hi <= x, lo > x) if kind == "--goal-max" else (lo >= x, hi < x)
            line += "  goal %s %g: %s" % (
                "<=" if kind == "--goal-max" else ">=", x,
                "no verdict (noise)" if not quiet else
                "met" if good else "NOT met" if bad else "undecided")
        print(line)
    if not quiet:
        print("  no verdicts: %s, identical to %s, is off it beyond the noise allowance" % (noise, base))
    for r in ratios:
        xs = [x for x in boot[("ratio",) + r] if x is not None]
        q = ratio(whole, r[0], r[1])
        if q is None or len(xs) < 0.95 * RESAMPLES:
            print("  %s's added / %s's: no ratio, %s adds too little (%s)"
                  % (r[0], r[1], r[1], fmt % whole[(r[1], base)]))
            continue
        lo, hi = interval(xs)
        print("  %s's added / %s's: %.2f (%.2f .. %.2f)" % (r[0], r[1], q, lo, hi))
    if best:
        pick = min if lat else max
        b = pick(vals[base][k] for k in keys)
        print("  best key vs best key: " + ", ".join(
            ("%s " + fmt) % (c, pick(vals[c][k] for k in keys) - b if lat
                             else 100 * pick(vals[c][k] for k in keys) / b) for c in cfgs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
