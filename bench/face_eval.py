"""Measure the face extractor on the ORL faces, and what that means for identification.

1. Every ORL image (40 people x 10, 92x112 grey PGM) becomes a template with the
   production extractor (:class:`phr.biometrics.extractor.DlibExtractor`). The HOG
   detector misses some of these small images; those are aligned on the whole image
   instead (``whole_image_fallback``) and counted.
2. Verification (1:1): cosine similarity of every pair — genuine pairs (same person) and
   impostor pairs (different people) — gives the false non-match rate (FNMR) at a false
   match rate (FMR) of 1e-3 and 1e-4, and the threshold at each.
3. Identification (1:N) at gallery sizes 1,000 / 10,000 / 260,000, with and without
   narrowing, computed from those two score distributions: expected false candidates
   per search, the chance that a search of someone not enrolled returns anyone (FPIR),
   and the chance that an enrolled person is missed (FNIR: their score is under the
   threshold, or three impostors outscore them and fill the shortlist).

Below ~1.3e-4 the 78,000 impostor pairs hold fewer than 10 scores, so FMR(s) there comes
from an exponential tail fitted to the top 1% of the impostor scores; the report shows the
fit next to the measurement at both thresholds.

    python bench/face_eval.py [--orl DIR] [--json docs/biometrics-face-eval.json]

Needs the ``face`` extra (``pip install -e '.[face]'``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from phr.biometrics.extractor import DlibExtractor  # noqa: E402

# shared/ sits next to the repository (or next to the folder of worktrees).
DEFAULT_ORL = (
    next(
        (
            d
            for d in (ROOT.parent / "shared", ROOT.parent.parent / "shared")
            if (d / "data" / "faces-orl").is_dir()
        ),
        ROOT.parent / "shared",
    )
    / "data"
    / "faces-orl"
)
GALLERIES = (1_000, 10_000, 260_000)
SHORTLIST = 3
# Narrowing factors assumed for Tsukuba (population pyramid roughly flat over 0-80):
# sex 1/2; apparent age as a 10-year band ~1/8; home district (postal-code area of the
# incident, ~20 areas of the city's size) ~1/20.
NARROWING = {
    "none": 1.0,
    "sex + 10-year age band (1/16)": 1 / 16,
    "sex + age band + district (1/320)": 1 / 320,
}
FMR_TARGETS = (1e-3, 1e-4)


def load_templates(orl: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    extractor = DlibExtractor(whole_image_fallback=True)
    vectors, labels, fallback = [], [], []
    started = time.perf_counter()
    for subject in sorted(orl.glob("s*"), key=lambda p: int(p.name[1:])):
        for image in sorted(subject.glob("*.pgm"), key=lambda p: int(p.stem)):
            v = extractor.extract(image.read_bytes())
            vectors.append(v / np.linalg.norm(v))
            labels.append(int(subject.name[1:]))
            if not extractor.last_detected:
                fallback.append(f"{subject.name}/{image.name}")
    seconds = time.perf_counter() - started
    info = {
        "images": len(vectors),
        "people": len(set(labels)),
        "whole_image_fallback": len(fallback),
        "fallback_images": fallback,
        "ms_per_image": round(1000 * seconds / max(len(vectors), 1), 1),
        "extractor": extractor.name,
    }
    return np.vstack(vectors).astype(np.float32), np.asarray(labels), info


def pair_scores(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sims = vectors @ vectors.T
    i, j = np.triu_indices(len(labels), k=1)
    same = labels[i] == labels[j]
    return np.sort(sims[i, j][same]), np.sort(sims[i, j][~same])


def threshold_at(impostor: np.ndarray, fmr: float) -> float:
    """The lowest threshold t with measured FMR(t) = P(impostor >= t) <= fmr."""
    desc = impostor[::-1]
    k = math.floor(fmr * len(desc))
    return float(np.nextafter(desc[k], np.float32(np.inf)))


class FMRModel:
    """FMR(s) = P(impostor score >= s): measured where at least ``min_count`` impostor
    scores support it; beyond, an exponential tail fitted to the top 1% of the impostor
    scores (peaks over threshold: the excesses over the 99th percentile have mean beta,
    FMR(s) = 0.01 * exp(-(s - u99) / beta))."""

    def __init__(self, impostor: np.ndarray, min_count: int = 10) -> None:
        self.sorted = impostor
        self.n = len(impostor)
        self.min_count = min_count
        self.u = float(np.quantile(impostor, 0.99))
        tail = impostor[impostor > self.u]
        self.p_u = len(tail) / self.n
        self.beta = float((tail - self.u).mean())

    def measured(self, s: np.ndarray | float) -> np.ndarray:
        above = self.n - np.searchsorted(self.sorted, s, side="left")
        return np.asarray(above / self.n, dtype=np.float64)

    def fitted(self, s: np.ndarray | float) -> np.ndarray:
        x = np.asarray(s, dtype=np.float64)
        return np.minimum(self.p_u * np.exp(-(x - self.u) / self.beta), 1.0)

    def __call__(self, s: np.ndarray | float) -> np.ndarray:
        m = self.measured(s)
        return np.where(m * self.n >= self.min_count, m, self.fitted(s))


def identification(
    genuine: np.ndarray, fmr: FMRModel, threshold: float, gallery: int
) -> dict[str, float]:
    """Per search of one probe against ``gallery`` enrolled residents."""
    p = float(fmr(threshold))
    others = max(gallery - 1, 0)
    # Enrolled probe: missed if under threshold, or if >= SHORTLIST impostors beat it.
    q = fmr(genuine)  # chance one impostor outscores this genuine score
    k = np.arange(SHORTLIST)
    pushed_out = np.array(
        [
            1.0 - sum(math.comb(others, int(i)) * qi**i * (1 - qi) ** (others - i) for i in k)
            for qi in q
        ]
    )
    miss = np.where(genuine < threshold, 1.0, pushed_out)
    first = np.where(genuine < threshold, 0.0, (1 - q) ** others)
    return {
        "gallery": gallery,
        "fmr_at_threshold": p,
        "expected_false_candidates": others * p,
        "fpir_not_enrolled": 1 - (1 - p) ** gallery,
        "p_false_candidate_with_mate": 1 - (1 - p) ** others,
        "fnir": float(miss.mean()),
        "p_mate_ranked_first": float(first.mean()),
    }


def evaluate(orl: Path) -> dict[str, Any]:
    vectors, labels, info = load_templates(orl)
    genuine, impostor = pair_scores(vectors, labels)
    fmr = FMRModel(impostor)
    operating = []
    for target in FMR_TARGETS:
        t = threshold_at(impostor, target)
        operating.append(
            {
                "fmr_target": target,
                "threshold": round(t, 4),
                "fmr_measured": float(fmr.measured(t)),
                "fmr_tail_fit": float(fmr.fitted(t)),
                "fnmr": float(np.mean(genuine < t)),
                "identification": {
                    name: [
                        identification(genuine, fmr, t, max(1, round(n * factor)))
                        for n in GALLERIES
                    ]
                    for name, factor in NARROWING.items()
                },
            }
        )
    return {
        "data": {
            **info,
            "genuine_pairs": len(genuine),
            "impostor_pairs": len(impostor),
            "source": "ORL (AT&T) faces, Olivetti Research Laboratory 1992-94",
        },
        "scores": {
            "genuine": _describe(genuine),
            "impostor": _describe(impostor),
            "impostor_tail_fit": {"u99": fmr.u, "p_u": fmr.p_u, "beta": fmr.beta},
            "genuine_histogram": _histogram(genuine),
            "impostor_histogram": _histogram(impostor),
        },
        "operating_points": operating,
        "narrowing_factors": NARROWING,
        "machine": f"{platform.machine()} {platform.processor() or ''} Python "
        f"{platform.python_version()}",
    }


PERCENTILES = (0.1, 1, 5, 50, 95, 99, 99.9)


def _describe(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(x, [p / 100 for p in PERCENTILES])
    return {
        "n": len(x),
        "mean": round(float(x.mean()), 4),
        "sd": round(float(x.std()), 4),
        "min": round(float(x.min()), 4),
        "max": round(float(x.max()), 4),
        **{f"q{p}": round(float(v), 4) for p, v in zip(PERCENTILES, q, strict=True)},
    }


def _histogram(x: np.ndarray) -> dict[str, int]:
    counts, edges = np.histogram(x, bins=np.arange(-0.2, 1.0001, 0.05))
    return {f"{edges[i]:.2f}": int(c) for i, c in enumerate(counts) if c}


def report(r: dict[str, Any]) -> str:
    d, s = r["data"], r["scores"]
    lines = [
        f"ORL: {d['images']} images of {d['people']} people; extractor {d['extractor']}, "
        f"{d['ms_per_image']} ms/image; detector missed {d['whole_image_fallback']} "
        "(aligned on the whole image)",
        f"pairs: {d['genuine_pairs']} genuine, {d['impostor_pairs']} impostor",
        f"genuine cosine: mean {s['genuine']['mean']} sd {s['genuine']['sd']} "
        f"min {s['genuine']['min']} 1% {s['genuine']['q1']}",
        f"impostor cosine: mean {s['impostor']['mean']} sd {s['impostor']['sd']} "
        f"max {s['impostor']['max']} 99.9% {s['impostor']['q99.9']}",
        "",
        "| FMR target | threshold | FMR measured | FMR tail fit | FNMR |",
        "|---|---|---|---|---|",
    ]
    for op in r["operating_points"]:
        lines.append(
            f"| {op['fmr_target']:g} | {op['threshold']} | {op['fmr_measured']:.2e} | "
            f"{op['fmr_tail_fit']:.2e} | {op['fnmr']:.4f} |"
        )
    for op in r["operating_points"]:
        lines += [
            "",
            f"Identification at threshold {op['threshold']} (FMR {op['fmr_target']:g}), "
            f"shortlist of {SHORTLIST}:",
            "",
            "| narrowing | enrolled | searched | false candidates/search | "
            "P(any candidate, not enrolled) | miss rate (FNIR) | mate ranked first |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, rows in op["identification"].items():
            for n, row in zip(GALLERIES, rows, strict=True):
                lines.append(
                    f"| {name} | {n:,} | {row['gallery']:,} | "
                    f"{row['expected_false_candidates']:.3g} | {row['fpir_not_enrolled']:.3g} | "
                    f"{row['fnir']:.4f} | {row['p_mate_ranked_first']:.4f} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orl", type=Path, default=DEFAULT_ORL)
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "biometrics-face-eval.json")
    args = p.parse_args(argv)
    result = evaluate(args.orl)
    print(report(result))
    args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
