#!/usr/bin/env python3
"""Renders the benchmark report (Markdown) from what run.sh measured.

    report.py RESULTS_TSV META_FILE

RESULTS_TSV has one row per measurement, tab-separated, with a header line:
key kind label rps p50_ms p99_ms errors error_detail error_sample max_rss_kb cpu_server cpu_pg
cpu_ipfs cpu_client cpu_other cpu_busy note (CPU in % of one core; cpu_busy in % of all cores). META_FILE is KEY=VALUE lines (pins, duration, ...).
Exit status 0 either way: a failed target is a finding, not a script error.
"""

import csv
import sys

# HTTP run -> the Postgres ceiling it is compared with.
CEILING = {
    "post": "pg_insert",
    "list": "pg_list",
    "get": "pg_get",
    "get_svc": "pg_get",
    "queued": "pg_list",
    "ipartial": "pg_list",
}
# Targets (from the brief): these ratios must be >= 0.35; every HTTP run must have
# p99 < 25 ms, max RSS < 150 MB and no errors.
# Short names of the ceilings, for the ratio column.
SHORT = {"pg_insert": "raw insert", "pg_list": "raw list", "pg_get": "raw by-id"}
# For information: the same transaction as the server runs it (role, RLS, BEGIN/COMMIT).
# Not for POST: that pgbench run counts transactions whose insert lost the ms race.
AS_SERVER = {"list": "pg_list_tx", "get": "pg_get_tx", "get_svc": "pg_get_tx", "queued": "pg_list_tx",
             "ipartial": "pg_list_tx"}
RATIO_TARGET = {"post": 0.35, "list": 0.35, "get": 0.35}
P99_MS = 25.0
RSS_MB = 150.0


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt(value, digits=1, suffix=""):
    return "—" if value is None else f"{value:,.{digits}f}{suffix}"


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def main():
    results_path, meta_path = sys.argv[1], sys.argv[2]
    with open(results_path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    meta = {}
    with open(meta_path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    by_key = {r["key"]: r for r in rows}
    rss_idle_kb = num(meta.get("rss_idle_kb"))
    rss_idle_mb = None if rss_idle_kb is None else rss_idle_kb / 1024

    out = []
    out.append(f"# anchorage benchmark — {meta.get('started', '?')}\n")
    out.append(
        f"{meta.get('pins')} pins in the demo org ({meta.get('queued')} queued), "
        f"{meta.get('connections')} connections / {meta.get('threads')} threads, "
        f"{meta.get('duration')} per run. Commit {meta.get('commit')}"
        f"{' (dirty tree)' if meta.get('dirty') == 'yes' else ''}; "
        f"{meta.get('cpus')} CPUs; load average before the runs: {meta.get('loadavg')}.\n"
    )
    out.append(
        "wrk, pgbench, the server and Postgres all share this machine, so every number "
        "is a same-box figure: the client's own CPU comes out of the server's budget.\n"
    )

    failures = []
    main_rows = []
    for r in rows:
        key = r["key"]
        rps, p50, p99 = num(r["rps"]), num(r["p50_ms"]), num(r["p99_ms"])
        errors = int(num(r["errors"]) or 0)
        rss_kb = num(r["max_rss_kb"])
        rss_mb = None if rss_kb is None else rss_kb / 1024
        err_text = str(errors) + (f" ({r['error_detail']})" if errors and r["error_detail"] else "")
        ratio_text, verdict = "—", "—"
        if r["kind"] == "http":
            reasons = []
            ceiling = by_key.get(CEILING.get(key, ""))
            if ceiling and num(ceiling["rps"]) and rps is not None:
                ratio = rps / num(ceiling["rps"])
                ratio_text = f"{ratio:.{2 if ratio >= 0.01 else 3}f}× {SHORT[CEILING[key]]}"
                target = RATIO_TARGET.get(key)
                if target is not None:
                    ratio_text += f" (≥ {target})"
                    if ratio < target:
                        reasons.append(f"ratio {ratio:.2f} < {target}")
                as_server = by_key.get(AS_SERVER.get(key, ""))
                if as_server and num(as_server["rps"]):
                    ratio_s = rps / num(as_server["rps"])
                    ratio_text += f"; {ratio_s:.{2 if ratio_s >= 0.01 else 3}f}× as server"
            elif key in RATIO_TARGET:
                reasons.append("no ceiling measured")
            if p99 is None or p99 >= P99_MS:
                reasons.append(f"p99 {fmt(p99, 1)} ms ≥ {P99_MS:g}")
            if rss_mb is None or rss_mb >= RSS_MB:
                reasons.append(f"RSS {fmt(rss_mb, 0)} MB ≥ {RSS_MB:g}")
            if errors:
                reasons.append(f"{errors} errors")
            if not rps:
                reasons.append("no request completed")
            verdict = "PASS" if not reasons else "FAIL: " + "; ".join(reasons)
            if reasons:
                failures.append(f"{r['label']}: " + "; ".join(reasons)
                                + (f" — e.g. `{r.get('error_sample', '')}`" if r.get("error_sample") else ""))
        elif errors:
            failures.append(f"{r['label']}: {errors} failed transactions ({r['error_detail']}) {r.get('error_sample', '')}")
        main_rows.append([
            r["label"], fmt(rps, 0), fmt(p50, 2, " ms"), fmt(p99, 2, " ms"), err_text,
            ratio_text, fmt(rss_mb, 1, " MB"), verdict,
        ])
    out.append(table(
        ["endpoint", "req/s", "p50", "p99", "non-2xx / failed", "ratio to ceiling",
         "max RSS", "targets"],
        main_rows,
    ))
    out.append("")
    out.append(
        f"Targets: POST ≥ 0.35× raw insert (`pg: single-row insert`); GET list and GET by "
        f"id ≥ 0.35× their raw select (`pg: list count+page`, `pg: select by id`); p99 < {P99_MS:g} ms and max RSS < {RSS_MB:g} MB on every HTTP run; no "
        f"non-2xx. `pg:` rows are pgbench on the same database (`-M prepared`); "
        f"`(as server)` rows run the server's exact transaction as its role, under "
        f"row-level security, for information only. Server RSS idle after the load: "
        f"{fmt(rss_idle_mb, 1, ' MB')}.\n"
    )

    cpu_rows = [
        [r["label"]]
        + [fmt(num(r[c]), 0, "%") for c in
           ("cpu_server", "cpu_pg", "cpu_ipfs", "cpu_client", "cpu_other", "cpu_busy")]
        + [r["note"] or ""]
        for r in rows
    ]
    out.append("Where the CPU went (% of one core; `ipfs node` is the "
               "local IPFS node `dev` runs, `client` is wrk or pgbench, `other` is "
               "everything else on the box, e.g. other builds; machine busy is % of all "
               f"{meta.get('cpus')} cores, so ~100% means saturated):\n")
    out.append(table(
        ["run", "anchorage", "postgres", "ipfs node", "client", "other", "machine busy",
         "notes"],
        cpu_rows))
    out.append("")
    if failures:
        out.append("## !!! FAILED TARGETS / ERRORS\n")
        out.extend(f"- {f}" for f in failures)
    else:
        out.append("All targets met, no errors.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
