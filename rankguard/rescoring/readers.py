"""Readers for target–decoy match tables: Percolator's PIN (and mokapot's extended layout) and TopPIC PrSM XML.

:func:`read_matches` detects the format from the content (the first non-blank character ``<`` = XML, a
tab-separated header with a ``Label`` column = PIN), never from the extension. Every reader returns a
:class:`MatchTable`: one row per match (PSM or PrSM), labels True = target, a spectrum key per row (target–
decoy competition keeps the best match per spectrum), float64 features with their names, and the
peptide/protein strings for the output tables. Errors are :class:`RescoringInputError` (a ``ValueError``):
one line naming the file and the line (PIN) or PrSM id (TopPIC).

PIN (REFERENCES §9): ``SpecId Label ScanNr [ExpMass CalcMass …] features… Peptide Proteins [named columns…]``.

* Labels are ``1`` (target) or ``-1`` (decoy); anything else is an error naming the line and the value.
* Extra proteins spill into trailing tab fields: a row longer than the header gives its extra fields to
  ``Proteins`` (joined by tabs); named columns after ``Proteins`` (mokapot's ``ModifiedPeptide``,
  ``Precursor``, ``PeptideGroup`` …) take the last fields. A row shorter than the header is ragged: an error.
* An optional second line starting ``DefaultDirection`` holds a direction per feature (kept, not a row).
* Non-feature columns (``SpecId``, ``Label``, ``ScanNr``, ``ExpMass``, ``CalcMass``, ``Peptide``,
  ``Proteins`` and the columns after it) are kept as text, so an integer-looking ``6d05`` is never read
  as a number; every other column is a feature and must parse as a float.
* A spectrum is (``ScanNr``, ``ExpMass``) when both columns exist (as mokapot does), else ``ScanNr``, else
  ``SpecId``. A ``SpecId`` shared by a target and a decoy row is normal; an exactly repeated line is
  dropped and reported in :attr:`MatchTable.notes`.

TopPIC 1.6.2 ``*_ms2_toppic_prsm.xml`` (REFERENCES §9b), parsed as a stream (``iterparse``, each ``<prsm>``
cleared once read). Features per PrSM: :data:`TOPPIC_FEATURES`. Label: decoy when ``seq_name`` starts with
``DECOY_``. TopPIC's own ``fdr`` and ``e_value`` are kept in :attr:`MatchTable.extra` for the baseline.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["MatchTable", "RescoringInputError", "read_matches", "read_pin", "read_toppic", "concat_tables",
           "TOPPIC_FEATURES", "detect_format"]


class RescoringInputError(ValueError):
    """A match file that cannot be read; the message names the file and the line or PrSM."""


@dataclass
class MatchTable:
    """Matches of one or more files. ``features [N, d]`` float64; ``is_target [N]`` bool; ``spectrum [N]``
    str keys (file-qualified when tables are concatenated)."""

    kind: str                      # "pin" or "toppic"
    spec_ids: list[str]
    is_target: np.ndarray
    spectrum: list[str]
    features: np.ndarray
    feature_names: list[str]
    peptides: list[str]
    proteins: list[str]
    source: list[str]
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    default_direction: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.is_target.shape[0])


_LEAD = ("specid", "label", "scannr", "expmass", "calcmass")


def detect_format(path: str | os.PathLike) -> str:
    """'toppic' or 'pin' from the first bytes of the file; raises :class:`RescoringInputError` otherwise."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(4096)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \r\n\t")
    if not text:
        raise RescoringInputError(f"{path}: the file is empty")
    if text.startswith("<"):
        return "toppic"
    first = text.split("\n", 1)[0].rstrip("\r")
    cols = [c.strip().lower() for c in first.split("\t")]
    if "label" in cols:
        return "pin"
    if "\t" not in first:
        raise RescoringInputError(f"{path}:1: neither XML nor a tab-separated PIN header (no tab on line 1)")
    raise RescoringInputError(f"{path}:1: PIN header has no `Label` column (columns: {', '.join(cols[:8])}…)")


def read_matches(path: str | os.PathLike) -> MatchTable:
    """Read a PIN or TopPIC PrSM XML file, the format detected from its content.

    >>> # read_matches("yeast_percolator.pin").feature_names[:3] -> ['lnrSp', 'deltLCn', 'deltCn']
    """
    return read_toppic(path) if detect_format(path) == "toppic" else read_pin(path)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def read_pin(path: str | os.PathLike) -> MatchTable:
    """Stream a PIN file (see the module docstring). Shapes: N rows, d features."""
    path = Path(path)
    where = str(path)
    with open(path, encoding="utf-8", newline="") as fh:
        header_line = fh.readline()
        if not header_line.strip():
            raise RescoringInputError(f"{where}: the file is empty")
        header = header_line.rstrip("\r\n").split("\t")
        lower = [h.strip().lower() for h in header]
        if "label" not in lower:
            raise RescoringInputError(f"{where}:1: PIN header has no `Label` column")
        for need in ("peptide", "proteins"):
            if need not in lower:
                raise RescoringInputError(f"{where}:1: PIN header has no `{need.capitalize()}` column")
        col = {name: lower.index(name) for name in _LEAD + ("peptide", "proteins") if name in lower}
        i_prot, i_pep = col["proteins"], col["peptide"]
        after = list(range(i_prot + 1, len(header)))          # mokapot's named columns after Proteins
        meta = set(col.values()) | set(after)
        feat_idx = [i for i in range(len(header)) if i not in meta]
        feature_names = [header[i] for i in feat_idx]
        spec_cols = [col[c] for c in ("scannr", "expmass") if c in col] or [col.get("specid", 0)]

        feats: list[list[float]] = []
        labels: list[bool] = []
        spec_ids, spectrum, peptides, proteins = [], [], [], []
        seen: set[str] = set()
        notes: list[str] = []
        default_direction = None
        n = len(header)
        for lineno, raw in enumerate(fh, start=2):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if lineno == 2 and fields[0].strip().lower() == "defaultdirection":
                default_direction = {}
                for name, i in zip(feature_names, feat_idx):
                    try:
                        default_direction[name] = float(fields[i])
                    except (IndexError, ValueError):
                        pass
                continue
            if len(fields) < n:
                raise RescoringInputError(f"{where}:{lineno}: ragged row: {len(fields)} tab-separated fields, "
                                          f"the header has {n}")
            if line in seen:
                notes.append(f"{where}:{lineno}: exact repeat of an earlier row, dropped")
                continue
            seen.add(line)
            extra = len(fields) - n
            if extra:
                # spilled proteins: Proteins takes the extra fields, named columns after it the last ones
                fields = (fields[:i_prot] + ["\t".join(fields[i_prot:i_prot + 1 + extra])]
                          + fields[i_prot + 1 + extra:])
            label = fields[col["label"]].strip()
            if label == "1":
                labels.append(True)
            elif label == "-1":
                labels.append(False)
            else:
                raise RescoringInputError(f"{where}:{lineno}: Label must be 1 (target) or -1 (decoy), "
                                          f"got {label!r}")
            row = []
            for name, i in zip(feature_names, feat_idx):
                try:
                    row.append(_float(fields[i]))
                except ValueError:
                    raise RescoringInputError(f"{where}:{lineno}: feature `{name}` is not a finite number: "
                                              f"{fields[i]!r}") from None
            feats.append(row)
            spec_ids.append(fields[col["specid"]] if "specid" in col else str(lineno))
            spectrum.append("|".join(fields[i].strip() for i in spec_cols))
            peptides.append(fields[i_pep])
            proteins.append(fields[i_prot])
    if not labels:
        raise RescoringInputError(f"{where}: no PSM rows after the header")
    is_target = np.array(labels, dtype=bool)
    if not is_target.any():
        raise RescoringInputError(f"{where}: no targets (Label 1): target-decoy rescoring needs both")
    if is_target.all():
        raise RescoringInputError(f"{where}: no decoys (Label -1): target-decoy rescoring needs both")
    return MatchTable("pin", spec_ids, is_target, spectrum, np.array(feats, dtype=np.float64).reshape(len(labels), -1),
                      feature_names, peptides, proteins, [where] * len(labels),
                      default_direction=default_direction, notes=notes)


#: TopPIC PrSM features: (name, how it is computed from the PrSM's fields)
TOPPIC_FEATURES = ("match_peak_num", "match_fragment_num", "norm_match_fragment_num", "neg_log10_p_value",
                   "neg_log10_e_value", "adjusted_prec_mass", "log10_prec_mass", "variable_ptm_num",
                   "unexpected_ptm_num", "mass_shift_count", "proteoform_length", "log10_feature_inte")
_LOG_FLOOR = 1e-300


def _text(elem: ET.Element, path: str, where: str, prsm_id: str) -> str:
    node = elem.find(path)
    if node is None or node.text is None:
        raise RescoringInputError(f"{where}: PrSM {prsm_id}: missing <{path}>")
    return node.text.strip()


def _num(elem: ET.Element, path: str, where: str, prsm_id: str) -> float:
    text = _text(elem, path, where, prsm_id)
    try:
        return _float(text)
    except ValueError:
        raise RescoringInputError(f"{where}: PrSM {prsm_id}: <{path}> is not a finite number: {text!r}") from None


def read_toppic(path: str | os.PathLike) -> MatchTable:
    """Stream a TopPIC ``*_prsm.xml`` file (see the module docstring); one row per ``<prsm>``."""
    path = Path(path)
    where = str(path)
    rows, labels, ids, spectrum, peptides, proteins, fdr, evalue = [], [], [], [], [], [], [], []
    last_id = "none yet"
    root_seen = False
    try:
        for event, elem in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                if not root_seen:
                    root_seen = True
                    if elem.tag != "prsm_list":
                        raise RescoringInputError(f"{where}: not TopPIC PrSM output (root <{elem.tag}>, "
                                                  f"expected <prsm_list>)")
                continue
            if elem.tag != "prsm":
                continue
            pid = _text(elem, "prsm_id", where, f"after {last_id}")
            p_value = _num(elem, "extreme_value/p_value", where, pid)
            e_value = _num(elem, "extreme_value/e_value", where, pid)
            mass = _num(elem, "adjusted_prec_mass", where, pid)
            start, end = _num(elem, "proteoform/start_pos", where, pid), _num(elem, "proteoform/end_pos", where, pid)
            inte_node = elem.find("sample_feature_inte")
            inte = float(inte_node.text) if inte_node is not None and inte_node.text else 0.0
            rows.append([
                _num(elem, "match_peak_num", where, pid), _num(elem, "match_fragment_num", where, pid),
                _num(elem, "norm_match_fragment_num", where, pid),
                -math.log10(max(p_value, _LOG_FLOOR)), -math.log10(max(e_value, _LOG_FLOOR)),
                mass, math.log10(max(mass, 1.0)),
                _num(elem, "proteoform/variable_ptm_num", where, pid),
                _num(elem, "proteoform/unexpected_ptm_num", where, pid),
                float(len(elem.findall("proteoform/mass_shift_list/mass_shift"))),
                end - start + 1.0, math.log10(max(inte, 1.0)),
            ])
            name = _text(elem, "proteoform/fasta_seq/seq_name", where, pid)
            labels.append(not name.startswith("DECOY_"))
            ids.append(pid)
            spectrum.append(_text(elem, "spectrum_id", where, pid))
            peptides.append(_text(elem, "proteoform/proteo_match_seq", where, pid))
            proteins.append(name)
            fdr.append(_num(elem, "fdr", where, pid))
            evalue.append(e_value)
            last_id = pid
            elem.clear()
    except ET.ParseError as err:
        raise RescoringInputError(f"{where}: XML broken or truncated after PrSM {last_id}: {err}") from None
    if not rows:
        raise RescoringInputError(f"{where}: no <prsm> elements")
    is_target = np.array(labels, dtype=bool)
    return MatchTable("toppic", ids, is_target, spectrum, np.array(rows, dtype=np.float64), list(TOPPIC_FEATURES),
                      peptides, proteins, [where] * len(rows),
                      extra={"toppic_fdr": np.array(fdr), "e_value": np.array(evalue)})


def concat_tables(tables: Iterable[MatchTable]) -> MatchTable:
    """One table from several files of the same kind and features; spectrum keys are prefixed by the file."""
    tables = list(tables)
    if not tables:
        raise ValueError("`tables` is empty")
    first = tables[0]
    for t in tables[1:]:
        if t.kind != first.kind or t.feature_names != first.feature_names:
            raise RescoringInputError(f"{t.source[0]}: its features differ from {first.source[0]}'s; files "
                                      f"rescored together need the same columns")
    if len(tables) == 1:
        return first
    extra_keys = set.intersection(*(set(t.extra) for t in tables))
    return MatchTable(
        first.kind, sum((t.spec_ids for t in tables), []), np.concatenate([t.is_target for t in tables]),
        [f"{k}#{s}" for k, t in enumerate(tables) for s in t.spectrum],
        np.concatenate([t.features for t in tables]), first.feature_names, sum((t.peptides for t in tables), []),
        sum((t.proteins for t in tables), []), sum((t.source for t in tables), []),
        extra={k: np.concatenate([t.extra[k] for t in tables]) for k in extra_keys},
        default_direction=first.default_direction, notes=sum((t.notes for t in tables), []))
