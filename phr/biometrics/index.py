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
    """Rows of templates with their narrowing attributes; thread-safe."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        self.generation = -1  # -1: never loaded
        self._lock = threading.Lock()
        self._alloc(max(capacity, 16))
        self._n = 0
        self._dead = 0
        self._template: list[str] = []
        self._resident: list[str] = []
        self._row_of: dict[str, int] = {}
        self._district_code: dict[str, int] = {}

    def _alloc(self, capacity: int) -> None:
        self._vec = np.zeros((capacity, self.dim), dtype=np.float32)
        self._sex = np.zeros(capacity, dtype=np.int8)
        self._birth = np.zeros(capacity, dtype=np.int32)
        self._district = np.full(capacity, _UNKNOWN_DISTRICT, dtype=np.int32)
        self._alive = np.zeros(capacity, dtype=bool)

    def _grow(self, needed: int) -> None:
        cap = self._vec.shape[0]
        if needed <= cap:
            return
        new_cap = max(needed, cap * 2)
        old = (self._vec, self._sex, self._birth, self._district, self._alive)
        self._alloc(new_cap)
        n = self._n
        self._vec[:n], self._sex[:n], self._birth[:n] = old[0][:n], old[1][:n], old[2][:n]
        self._district[:n], self._alive[:n] = old[3][:n], old[4][:n]

    # -- changes ---------------------------------------------------------------------------

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._vec[: self._n] = 0.0
        self._alive[: self._n] = False
        self._n = self._dead = 0
        self._template, self._resident, self._row_of = [], [], {}
        self.generation = -1

    def replace_all(self, rows: Iterable[TemplateRow], generation: int) -> None:
        with self._lock:
            self._clear()
            self._upsert(rows)
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

    def _remove(self, template_ids: Iterable[str]) -> None:
        for tid in template_ids:
            row = self._row_of.pop(tid, None)
            if row is None:
                continue
            # Wipe the vector, not only the flag: a deleted template leaves no trace here.
            self._vec[row] = 0.0
            self._alive[row] = False
            self._template[row] = ""
            self._resident[row] = ""
            self._dead += 1
        if self._dead > 1024 and self._dead * 4 > self._n:
            self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._n])
        vec, sex, birth = self._vec[keep], self._sex[keep], self._birth[keep]
        district, templates = self._district[keep], [self._template[i] for i in keep]
        residents = [self._resident[i] for i in keep]
        self._vec[: self._n] = 0.0
        self._alloc(max(len(keep) * 2, 1024))
        n = len(keep)
        self._vec[:n], self._sex[:n], self._birth[:n], self._district[:n] = (
            vec,
            sex,
            birth,
            district,
        )
        self._alive[:n] = True
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
        arrays = (self._vec, self._sex, self._birth, self._district, self._alive)
        return sum(a.nbytes for a in arrays)

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
            mask = self._mask(narrowing)
            if mask is None:
                rows = None
                scores = self._vec[:n] @ probe
                scores[~self._alive[:n]] = -np.inf
                compared = n - self._dead
            else:
                rows = np.flatnonzero(mask)
                scores = self._vec[rows] @ probe
                compared = int(rows.shape[0])
            above = np.flatnonzero(scores >= threshold)
            if above.shape[0] == 0:
                return [], compared
            order = above[np.argsort(-scores[above], kind="stable")]
            hits: list[Hit] = []
            seen: set[str] = set()
            for i in order:
                row = int(i if rows is None else rows[i])
                resident = self._resident[row]
                if resident in seen:
                    continue  # a resident's best template counts, once
                seen.add(resident)
                hits.append(Hit(resident, self._template[row], float(scores[i])))
                if len(hits) >= limit:
                    break
            return hits, compared
