"""The in-memory gallery: exact 1:N search over every enrolled face template.

Templates are unit-length float32 rows of one matrix; a probe's similarity to all of them
is one matrix-vector product (cosine similarity, since both sides are unit length). It is
exact — every enrolled template is scored, there is no approximate index that could miss
one. Narrowing (sex, apparent age range, home district) is a boolean mask over the rows;
a resident whose attribute is unknown is never narrowed away.

One index per process. It knows the gallery generation it reflects; the service brings it
up to date from the database before every search (:mod:`phr.biometrics.service`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

__all__ = ["SEX_CODES", "Hit", "Narrowing", "TemplateIndex", "TemplateRow", "unit_vector"]

SEX_CODES = {"male": 1, "female": 2, "other": 3}
# Coordinates read for every template; the rest only for the few whose bound passes.
HEAD_DIMS = 32
# Rounding of float32 sums: a bound this close under the threshold is scored in full.
_BOUND_SLACK = 5e-4
_UNKNOWN_SEX = 0
_UNKNOWN_BIRTH = 0
_UNKNOWN_DISTRICT = -1
FloatArray = npt.NDArray[np.float32]


def unit_vector(values: Sequence[float] | npt.NDArray[np.floating], dim: int) -> FloatArray:
    """The vector as unit-length float32; ValueError if it cannot be one."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.shape[0] != dim:
        raise ValueError(f"a face template has {dim} numbers, not {v.shape[0]}")
    if not np.all(np.isfinite(v)):
        raise ValueError("a face template must contain finite numbers only")
    norm = float(np.linalg.norm(v))
    if norm < 1e-6:
        raise ValueError("a face template cannot be the zero vector")
    return (v / norm).astype(np.float32)


@dataclass(frozen=True)
class TemplateRow:
    template_id: str
    resident_id: str
    vector: FloatArray  # unit length, float32
    sex: str | None = None
    birth_date: date | None = None
    district: str | None = None


@dataclass(frozen=True)
class Narrowing:
    """What the paramedic sees or knows; None means "do not narrow by this"."""

    sex: str | None = None
    born_after: date | None = None  # exclusive
    born_on_or_before: date | None = None
    district: str | None = None

    @property
    def empty(self) -> bool:
        return self == Narrowing()


@dataclass(frozen=True)
class Hit:
    resident_id: str
    template_id: str
    score: float


class TemplateIndex:
    """Rows of templates with their narrowing attributes; thread-safe.

    Exact search, with less memory to read than the whole matrix: each template x is also
    kept as its first ``head_dims`` coordinates in a rotated, centred basis, h(x) = first
    coordinates of R(x - m), with the norm t(x) of the remaining coordinates and c(x) = x.m
    (m the gallery mean, R the principal axes of the gallery, computed at a full load; any
    m and orthogonal R keep this exact). Since q.x = R(q-m).R(x-m) + q.m + x.m - m.m,
    Cauchy-Schwarz on the remaining coordinates bounds every score from above:

        q.x <= h(q).h(x) + t(q) t(x) + c(x) + q.m - m.m

    Only rows whose bound reaches the threshold are scored in full — on the ORL faces 0.2%
    of impostors with 32 of 128 coordinates — so no template above the threshold is ever
    skipped, and the scores returned are the full dot products.
    """

    def __init__(self, dim: int, capacity: int = 1024, head_dims: int = HEAD_DIMS) -> None:
        self.dim = dim
        self.head_dims = min(head_dims, dim)
        self.generation = -1  # -1: never loaded
        self._lock = threading.Lock()
        self._mean = np.zeros(dim, dtype=np.float32)
        self._axes = np.eye(dim, dtype=np.float32)
        self._alloc(max(capacity, 16))
        self._n = 0
        self._dead = 0
        self._template: list[str] = []
        self._resident: list[str] = []
        self._row_of: dict[str, int] = {}
        self._district_code: dict[str, int] = {}

    _COLUMNS = ("_vec", "_head", "_tail", "_center", "_sex", "_birth", "_district", "_alive")

    def _alloc(self, capacity: int) -> None:
        self._vec = np.zeros((capacity, self.dim), dtype=np.float32)
        self._head = np.zeros((capacity, self.head_dims), dtype=np.float32)
        self._tail = np.zeros(capacity, dtype=np.float32)
        self._center = np.zeros(capacity, dtype=np.float32)
        self._sex = np.zeros(capacity, dtype=np.int8)
        self._birth = np.zeros(capacity, dtype=np.int32)
        self._district = np.full(capacity, _UNKNOWN_DISTRICT, dtype=np.int32)
        self._alive = np.zeros(capacity, dtype=bool)

    def _grow(self, needed: int) -> None:
        cap = self._vec.shape[0]
        if needed <= cap:
            return
        old = {name: getattr(self, name) for name in self._COLUMNS}
        self._alloc(max(needed, cap * 2))
        n = self._n
        for name, array in old.items():
            getattr(self, name)[:n] = array[:n]

    def _fit_basis(self, vectors: FloatArray) -> None:
        """Gallery mean and principal axes (from up to 5,000 rows)."""
        if vectors.shape[0] < 2 * self.dim:
            self._mean = np.zeros(self.dim, dtype=np.float32)
            self._axes = np.eye(self.dim, dtype=np.float32)
            return
        step = max(1, vectors.shape[0] // 5_000)
        sample = vectors[::step].astype(np.float64)
        mean = sample.mean(axis=0)
        _, _, axes = np.linalg.svd(sample - mean, full_matrices=False)
        self._mean = mean.astype(np.float32)
        self._axes = axes.astype(np.float32)

    def _project(self, vectors: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        rotated = (vectors - self._mean) @ self._axes.T
        k = self.head_dims
        tail = np.linalg.norm(rotated[:, k:], axis=1) if k < self.dim else np.zeros(len(vectors))
        return (
            np.ascontiguousarray(rotated[:, :k], dtype=np.float32),
            tail.astype(np.float32),
            (vectors @ self._mean).astype(np.float32),
        )

    # -- changes ---------------------------------------------------------------------------

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        for name in ("_vec", "_head", "_tail", "_center"):
            getattr(self, name)[: self._n] = 0.0
        self._alive[: self._n] = False
        self._n = self._dead = 0
        self._template, self._resident, self._row_of = [], [], {}
        self.generation = -1

    def replace_all(self, rows: Iterable[TemplateRow], generation: int) -> None:
        """Load the whole gallery, laid out by sex then birth date: a search narrowed by
        sex and age then reads one contiguous block instead of gathering rows."""
        given = list(rows)
        n = len(given)
        sex = np.fromiter((SEX_CODES.get(r.sex or "", _UNKNOWN_SEX) for r in given), np.int8, n)
        birth = np.fromiter(
            (r.birth_date.toordinal() if r.birth_date else _UNKNOWN_BIRTH for r in given),
            np.int32,
            n,
        )
        order = np.lexsort((birth, sex))
        with self._lock:
            self._clear()
            self._grow(n)
            if n == 0:
                self.generation = generation
                return
            self._vec[:n] = np.stack([r.vector for r in given])[order]
            ordered = [given[i] for i in order.tolist()]
            del given
            self._sex[:n], self._birth[:n] = sex[order], birth[order]
            codes = self._district_code
            self._district[:n] = np.fromiter(
                (
                    codes.setdefault(r.district, len(codes)) if r.district else _UNKNOWN_DISTRICT
                    for r in ordered
                ),
                np.int32,
                n,
            )
            self._alive[:n] = True
            self._template = [r.template_id for r in ordered]
            self._resident = [r.resident_id for r in ordered]
            self._row_of = {t: i for i, t in enumerate(self._template)}
            self._n = n
            self._fit_basis(self._vec[:n])
            for lo in range(0, n, 50_000):
                hi = min(n, lo + 50_000)
                self._head[lo:hi], self._tail[lo:hi], self._center[lo:hi] = self._project(
                    self._vec[lo:hi]
                )
            self.generation = generation

    def apply(self, rows: Iterable[TemplateRow], removed: Iterable[str], generation: int) -> None:
        """New or changed templates and deleted template ids, up to ``generation``."""
        with self._lock:
            self._upsert(rows)
            self._remove(removed)
            self.generation = generation

    def invalidate(self) -> None:
        """Forget the generation: the next search reloads the whole gallery."""
        with self._lock:
            self.generation = -1

    def _upsert(self, rows: Iterable[TemplateRow]) -> None:
        touched: list[int] = []
        for r in rows:
            row = self._row_of.get(r.template_id)
            if row is None:
                self._grow(self._n + 1)
                row = self._n
                self._n += 1
                self._template.append(r.template_id)
                self._resident.append(r.resident_id)
                self._row_of[r.template_id] = row
            self._vec[row] = r.vector
            self._sex[row] = SEX_CODES.get(r.sex or "", _UNKNOWN_SEX)
            self._birth[row] = r.birth_date.toordinal() if r.birth_date else _UNKNOWN_BIRTH
            self._district[row] = (
                self._district_code.setdefault(r.district, len(self._district_code))
                if r.district
                else _UNKNOWN_DISTRICT
            )
            self._alive[row] = True
            touched.append(row)
        for i in range(0, len(touched), 50_000):
            idx = np.asarray(touched[i : i + 50_000], dtype=np.intp)
            self._head[idx], self._tail[idx], self._center[idx] = self._project(self._vec[idx])

    def _remove(self, template_ids: Iterable[str]) -> None:
        for tid in template_ids:
            row = self._row_of.pop(tid, None)
            if row is None:
                continue
            # Wipe the vector, not only the flag: a deleted template leaves no trace here.
            for name in ("_vec", "_head", "_tail", "_center"):
                getattr(self, name)[row] = 0.0
            self._alive[row] = False
            self._template[row] = ""
            self._resident[row] = ""
            self._dead += 1
        if self._dead > 1024 and self._dead * 4 > self._n:
            self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._n])
        kept = {name: getattr(self, name)[keep] for name in self._COLUMNS}
        templates = [self._template[i] for i in keep]
        residents = [self._resident[i] for i in keep]
        self._vec[: self._n] = 0.0
        self._alloc(max(len(keep) * 2, 1024))
        n = len(keep)
        for name, array in kept.items():
            getattr(self, name)[:n] = array
        self._n, self._dead = n, 0
        self._template, self._resident = templates, residents
        self._row_of = {t: i for i, t in enumerate(templates)}

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n - self._dead

    def template_ids(self) -> set[str]:
        with self._lock:
            return set(self._row_of)

    @property
    def memory_bytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self._COLUMNS)

    def _mask(self, narrowing: Narrowing) -> npt.NDArray[np.bool_] | None:
        """Rows that pass the narrowing, or None for "every live row"."""
        if narrowing.empty:
            return None
        n = self._n
        mask = self._alive[:n].copy()
        if narrowing.sex is not None:
            code = SEX_CODES.get(narrowing.sex, _UNKNOWN_SEX)
            sex = self._sex[:n]
            mask &= (sex == code) | (sex == _UNKNOWN_SEX)
        if narrowing.born_after is not None or narrowing.born_on_or_before is not None:
            birth = self._birth[:n]
            ok = np.ones(n, dtype=bool)
            if narrowing.born_after is not None:
                ok &= birth > narrowing.born_after.toordinal()
            if narrowing.born_on_or_before is not None:
                ok &= birth <= narrowing.born_on_or_before.toordinal()
            mask &= ok | (birth == _UNKNOWN_BIRTH)
        if narrowing.district is not None:
            district = self._district[:n]
            code = self._district_code.get(narrowing.district, -2)
            mask &= (district == code) | (district == _UNKNOWN_DISTRICT)
        return mask

    def _rows_times(
        self, matrix: FloatArray, q: FloatArray, rows: npt.NDArray[np.intp]
    ) -> FloatArray:
        """``matrix[rows] @ q`` by the cheapest way: the contiguous block that holds the rows
        (no copy), a gather of the rows, or every row."""
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo <= 2 * rows.shape[0]:
            return (matrix[lo:hi] @ q)[rows - lo]
        if rows.shape[0] * 5 < self._n:
            return matrix[rows] @ q
        return (matrix[: self._n] @ q)[rows]

    def search(
        self,
        probe: FloatArray,
        *,
        threshold: float,
        limit: int,
        narrowing: Narrowing = Narrowing(),
    ) -> tuple[list[Hit], int]:
        """The best ``limit`` residents whose best template scores at least ``threshold``,
        best first, and how many templates were compared."""
        with self._lock:
            n = self._n
            if n == 0:
                return [], 0
            head, tail, center = self._project(probe.reshape(1, -1))
            q_head, q_tail = head[0], float(tail[0])
            offset = float(center[0]) - float(self._mean @ self._mean)
            floor = threshold - _BOUND_SLACK
            mask = self._mask(narrowing)
            if mask is None:
                compared = n - self._dead
                bound = self._head[:n] @ q_head
                bound += self._tail[:n] * q_tail
                bound += self._center[:n]
                bound += offset
                rows = np.flatnonzero((bound >= floor) & self._alive[:n])
            else:
                chosen = np.flatnonzero(mask)
                compared = int(chosen.shape[0])
                if compared == 0:
                    return [], 0
                bound = self._rows_times(self._head, q_head, chosen)
                bound += self._tail[chosen] * q_tail + self._center[chosen] + offset
                rows = chosen[bound >= floor]
            scores = self._vec[rows] @ probe
            above = scores >= threshold
            rows, scores = rows[above], scores[above]
            hits: list[Hit] = []
            seen: set[str] = set()
            for i in np.argsort(-scores, kind="stable"):
                row = int(rows[i])
                resident = self._resident[row]
                if resident in seen:
                    continue  # a resident's best template counts, once
                seen.add(resident)
                hits.append(Hit(resident, self._template[row], float(scores[i])))
                if len(hits) >= limit:
                    break
            return hits, compared
