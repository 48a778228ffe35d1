"""The benchmark's table and its verdict on each target."""

from __future__ import annotations

from splitrec.bench.runs import RunResult

MEMORY_LIMIT_MB = 1500.0
EPOCH_LIMIT_SECONDS = 60.0
AUC_TOLERANCE = 0.003


def _ratio_needed(batch: int) -> float:
    return 0.9 if batch >= 1024 else 0.8


def _find(
    results: list[RunResult], mode: str, rows: int, batch: int, k: int
) -> RunResult | None:
    return next(
        (
            r
            for r in results
            if (r.mode, r.rows, r.batch_size, r.pipeline_size) == (mode, rows, batch, k)
        ),
        None,
    )


def target(name: str, value: float, limit: float, met: bool, **where: object) -> dict:
    return {"target": name, "value": value, "limit": limit, "met": met, **where}


def _per_config(results: list[RunResult], pipeline: int) -> list[dict]:
    targets = []
    configs = sorted({(r.rows, r.batch_size) for r in results})
    for rows, batch in configs:
        central = _find(results, "centralized", rows, batch, 1)
        exact = _find(results, "split", rows, batch, 1)
        piped = _find(results, "split", rows, batch, pipeline) if pipeline > 1 else None
        where = {"rows": rows, "batch_size": batch}
        for split in (s for s in (exact, piped) if s and central):
            need = _ratio_needed(batch)
            ratio = split.samples_per_second / central.samples_per_second
            targets.append(
                target(
                    "split/centralized throughput",
                    ratio,
                    need,
                    ratio >= need,
                    pipeline_size=split.pipeline_size,
                    **where,
                )
            )
        if exact and piped:
            gap = abs(piped.val_auc - exact.val_auc)
            targets.append(
                target(
                    "pipeline AUC gap",
                    gap,
                    AUC_TOLERANCE,
                    gap <= AUC_TOLERANCE,
                    pipeline_size=pipeline,
                    **where,
                )
            )
        if exact:
            targets += _wire_targets(exact, where)
    return targets


def _wire_targets(split: RunResult, where: dict) -> list[dict]:
    overhead = split.wire.get("peer_overhead_ratio") or float("nan")
    control = split.wire.get("control_to_peer_ratio") or float("nan")
    return [
        target(
            "party-to-party bytes / raw payload",
            overhead,
            1.1,
            overhead <= 1.1,
            **where,
        ),
        target(
            "coordinator bytes / party-to-party bytes",
            control,
            0.01,
            control <= 0.01,
            **where,
        ),
    ]


def _epoch_and_memory(results: list[RunResult], scale: list[RunResult]) -> list[dict]:
    targets = []
    for split in (r for r in results + scale if r.mode == "split"):
        where = {
            "rows": split.rows,
            "batch_size": split.batch_size,
            "pipeline_size": split.pipeline_size,
        }
        if split.rows == 1_000_000 and split.batch_size == 1024:
            seconds = split.epoch_seconds
            targets.append(
                target(
                    "split epoch seconds",
                    seconds,
                    EPOCH_LIMIT_SECONDS,
                    seconds < EPOCH_LIMIT_SECONDS,
                    **where,
                )
            )
        if split.rows == 1_000_000:
            worst = max(split.peak_rss_mb[p] for p in ("alice", "bob"))
            targets.append(
                target(
                    "party peak RSS MB",
                    worst,
                    MEMORY_LIMIT_MB,
                    worst < MEMORY_LIMIT_MB,
                    **where,
                )
            )
    return targets


def _growth(results: list[RunResult], scale: list[RunResult]) -> list[dict]:
    """Time per row and memory across sizes (split, pipeline 1, largest batch).

    Cost grows linearly when steady throughput does not fall with size; memory
    is reported as megabytes per million rows between the smallest and the
    largest run.
    """
    runs = [r for r in results + scale if r.mode == "split" and r.pipeline_size == 1]
    batch = max((r.batch_size for r in runs), default=0)
    runs = sorted((r for r in runs if r.batch_size == batch), key=lambda r: r.rows)
    if len(runs) < 2:
        return []
    rates = [r.samples_per_second for r in runs]
    spread = max(rates) / min(rates)
    small, large = runs[0], runs[-1]
    million_rows = (large.rows - small.rows) / 1e6
    return [
        target(
            "linear growth: steady samples/s across sizes (max/min)",
            spread,
            1.5,
            spread <= 1.5,
            batch_size=batch,
            samples_per_second={r.rows: r.samples_per_second for r in runs},
            peak_rss_mb={r.rows: r.peak_rss_mb for r in runs},
            memory_mb_per_million_rows={
                p: (large.peak_rss_mb[p] - small.peak_rss_mb[p]) / million_rows
                for p in ("alice", "bob")
            },
        )
    ]


def evaluate_targets(
    results: list[RunResult], scale: list[RunResult], pipeline: int
) -> list[dict]:
    return (
        _per_config(results, pipeline)
        + _epoch_and_memory(results, scale)
        + _growth(results, scale)
    )


def format_table(results: list[RunResult], targets: list[dict]) -> str:
    header = (
        f"{'mode':<12}{'rows':>9}{'batch':>7}{'K':>3}{'samples/s':>11}{'epoch s':>9}"
        f"{'val AUC':>9}{'B/sample':>10}{'ctl/p2p':>9}{'alice MB':>10}{'bob MB':>8}"
        f"{'coord MB':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        rss = r.peak_rss_mb
        lines.append(
            f"{r.mode:<12}{r.rows:>9}{r.batch_size:>7}{r.pipeline_size:>3}"
            f"{r.samples_per_second:>11,.0f}{r.epoch_seconds:>9.1f}{r.val_auc:>9.4f}"
            f"{r.wire.get('peer_bytes_per_sample') or 0:>10.1f}"
            f"{r.wire.get('control_to_peer_ratio') or 0:>9.1e}"
            f"{rss.get('alice', rss.get('centralized', 0)):>10.0f}"
            f"{rss.get('bob', 0):>8.0f}"
            f"{rss.get('coordinator', 0):>10.0f}"
        )
    lines.append("")
    for t in targets:
        where = ", ".join(
            f"{k}={t[k]}"
            for k in ("family", "rows", "batch_size", "pipeline_size", "setting")
            if k in t
        )
        verdict = "met" if t["met"] else "MISSED"
        lines.append(
            f"{verdict:>6}  {t['target']}: {t['value']:.4g} "
            f"(limit {t['limit']}) {where}"
        )
    return "\n".join(lines)


def format_psi_table(results: list) -> str:
    """Private ID alignment: time and bytes per party size (target: 60 s at 1M)."""
    lines = [
        f"{'PSI IDs/party':>14}{'common':>10}{'seconds':>9}{'feature MB':>12}"
        f"{'label MB':>10}{'B/ID':>7}"
    ]
    for r in results:
        verdict = ""
        if r.ids_per_party >= 1_000_000:
            verdict = "  met (<= 60 s)" if r.seconds <= 60 else "  MISSED (> 60 s)"
        lines.append(
            f"{r.ids_per_party:>14,}{r.intersection:>10,}{r.seconds:>9.1f}"
            f"{r.feature_bytes_sent / 1e6:>12.1f}{r.label_bytes_sent / 1e6:>10.1f}"
            f"{r.bytes_per_id:>7.1f}{verdict}"
        )
    return "\n".join(lines)


def _with_reference(rows: list[dict]) -> list[dict]:
    """Each compression row with its shrink and AUC gap against ``none``."""
    reference = next((r for r in rows if r["method"] == "none"), None)
    out = []
    for row in rows:
        row = dict(row)
        if reference is not None:
            row["shrink"] = (
                reference["peer_bytes_per_sample"] / row["peer_bytes_per_sample"]
            )
            row["auc_gap"] = reference["val_auc"] - row["val_auc"]
        out.append(row)
    return out


def compression_target(rows: list[dict]) -> list[dict]:
    """At least one setting sends 4x fewer bytes within 0.005 AUC of ``none``."""
    rows = [r for r in _with_reference(rows) if "shrink" in r and r["method"] != "none"]
    if not rows:
        return []
    good = [r for r in rows if r["shrink"] >= 4.0 and r["auc_gap"] <= 0.005]
    best = max(good or rows, key=lambda r: r["shrink"])
    return [
        {
            "target": "compression: >= 4x fewer bytes, AUC within 0.005",
            "value": best["shrink"],
            "limit": 4.0,
            "met": bool(good),
            "setting": f"{best['method']}:{best['ratio']:g}",
            "auc_gap": best["auc_gap"],
        }
    ]


def format_compression_table(rows: list[dict]) -> str:
    lines = [
        f"{'compression':<16}{'B/sample':>10}{'shrink':>8}{'samples/s':>11}"
        f"{'val AUC':>9}{'AUC gap':>9}"
    ]
    for r in _with_reference(rows):
        setting = (
            r["method"]
            if r["method"] in ("none", "fp16", "int8")
            else (f"{r['method']}:{r['ratio']:g}")
        )
        lines.append(
            f"{setting:<16}{r['peer_bytes_per_sample']:>10.1f}"
            f"{r.get('shrink', float('nan')):>8.2f}{r['samples_per_second']:>11,.0f}"
            f"{r['val_auc']:>9.4f}{r.get('auc_gap', float('nan')):>+9.4f}"
        )
    return "\n".join(lines)
