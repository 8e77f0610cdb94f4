"""What C-GET and C-MOVE share (PS3.4 C.4.2, C.4.3): SOP classes, identifiers of unique keys,
the guard against "retrieve everything", the C-FIND that resolves other keys to UIDs, and the
sub-operation counters of the responses.

A retrieve identifier holds the Query/Retrieve Level and unique keys only: single values for
the levels above, a single value or a UID list at the retrieve level (PS3.4 C.4.2.2.1,
C.4.3.2.1). A unique key that is empty or holds a wildcard would be a universal match to a
lenient SCP, so we never send one, and serve refuses one with A900.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from netdicom.archive.matching import UNIQUE_KEYS, Level, Model, level_of
from netdicom.core import uids
from netdicom.core.dimse import StatusCategory, category, status
from netdicom.core.errors import NetDicomError
from netdicom.core.printable import quoted
from netdicom.core.records import frozen

if TYPE_CHECKING:
    from netdicom.services.store_scp import StorageSCP, StoredInstance

Kind = Literal["get", "move"]

GET_SOP_CLASSES: Final = {
    Model.PATIENT_ROOT: uids.PATIENT_ROOT_GET,
    Model.STUDY_ROOT: uids.STUDY_ROOT_GET,
}
MOVE_SOP_CLASSES: Final = {
    Model.PATIENT_ROOT: uids.PATIENT_ROOT_MOVE,
    Model.STUDY_ROOT: uids.STUDY_ROOT_MOVE,
}
RETRIEVE_SOP_CLASSES: Final = frozenset({*GET_SOP_CLASSES.values(), *MOVE_SOP_CLASSES.values()})

FAILED_SOP_INSTANCE_UID_LIST: Final = 0x00080058
SOP_CLASSES_IN_STUDY: Final = 0x00080062
ISSUER_OF_PATIENT_ID: Final = 0x00100021
SOP_CLASS_UID: Final = 0x00080016
# Number of Study/Series Related Instances (PS3.4 C.3.4): how much a match stands for.
_INSTANCE_COUNTS: Final = {Level.STUDY: 0x00201208, Level.SERIES: 0x00201209}
# Counts in the responses are US (PS3.7 §9.3.3.2): capped rather than wrapped.
MAX_COUNT: Final = 0xFFFF
# An explicit VR UI element has a 16-bit length: the longest list we can send (even).
MAX_UID_LIST_BYTES: Final = 0xFFFE


def sop_class_for(kind: Kind, model: Model) -> str:
    return (GET_SOP_CLASSES if kind == "get" else MOVE_SOP_CLASSES)[model]


def model_of(sop_class: str) -> tuple[Model, Kind] | None:
    """The information model and service of a Q/R GET or MOVE SOP class UID."""
    for model, uid in GET_SOP_CLASSES.items():
        if uid == sop_class:
            return model, "get"
    for model, uid in MOVE_SOP_CLASSES.items():
        if uid == sop_class:
            return model, "move"
    return None


def _universal(value: str) -> bool:
    """Empty, or nothing but `*`: matches everything (`**` passed for a narrowing key, and
    retrieved everything, walkthrough 6d)."""
    return set(value.strip(" \x00")) <= {"*"}


class UnsafeRetrieve(NetDicomError):
    """A retrieve whose unique key is empty or a wildcard: refused, never sent."""


def is_safe_unique_value(value: str) -> bool:
    """A unique key value that names entities: no empty value, no `*` or `?`, no empty item
    in a `\\` list (an empty UID in a list would be universal matching to some SCPs)."""
    parts = value.strip(" \x00").split("\\")
    return all(part.strip(" \x00") and "*" not in part and "?" not in part for part in parts)


def unique_tags(model: Model, level: Level) -> list[tuple[Level, int]]:
    """The unique keys a retrieve at `level` carries, top level first."""
    return [(lv, UNIQUE_KEYS[lv]) for lv in model.levels if lv <= level]


@frozen
class RetrieveRequest:
    """One retrieve identifier: unique keys of the levels above (single values) and the
    UIDs at the retrieve level."""

    level: Level
    parents: tuple[tuple[int, str], ...]
    tag: int
    values: tuple[str, ...]

    def keys(self) -> dict[int, str]:
        return {**dict(self.parents), self.tag: "\\".join(self.values)}


def direct_requests(
    model: Model, level: Level, keys: Mapping[int, str], *, everything: bool = False
) -> list[RetrieveRequest] | None:
    """The request when the user's keys are exactly the unique keys of `level` and the levels
    above it in `model` (no C-FIND needed); None when other keys call for resolving first.

    Raises UnsafeRetrieve for an empty or wildcard unique key, a list above the level, or
    keys that are all universal unless `everything` (--all) asks for that: then None, and
    a C-FIND lists every entity, retrieved by its UIDs."""
    if not any(not _universal(value) for value in keys.values()):
        if everything:
            return None
        # Nothing but universal keys: "retrieve everything", whatever the peer makes of it.
        shown = ", ".join(f"{_keyword(tag)}={quoted(value)}" for tag, value in keys.items())
        raise UnsafeRetrieve(
            f"refusing to retrieve with {shown or 'no key'}: every key is empty or *, which "
            "a lenient peer could read as everything. Give the UIDs, a key that narrows the "
            "match (e.g. PatientName=DOE*) to resolve with a C-FIND first, or --all to "
            "retrieve every entity the peer lists"
        )
    wanted = unique_tags(model, level)
    if set(keys) != {tag for _, tag in wanted}:
        return None
    for tag, value in keys.items():
        if not is_safe_unique_value(value):
            raise UnsafeRetrieve(_unsafe_text(tag, value))
    parents = tuple((tag, keys[tag].strip()) for lv, tag in wanted if lv < level)
    for tag, value in parents:
        if "\\" in value:
            raise UnsafeRetrieve(
                f"{_keyword(tag)} holds a list, but a level above the retrieve level takes "
                "a single value (PS3.4 C.4.2.2.1): retrieve at that level, or one at a time"
            )
    tag = UNIQUE_KEYS[level]
    values = tuple(v.strip() for v in keys[tag].split("\\"))
    if level is _ONE_PER_REQUEST:
        return [RetrieveRequest(level, parents, tag, (value,)) for value in values]
    return [RetrieveRequest(level, parents, tag, values)]


def _keyword(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _unsafe_text(tag: int, value: str) -> str:
    shown = repr(value) if value else "empty"
    return (
        f"refusing to retrieve with {_keyword(tag)} {shown}: an empty or wildcard unique key "
        "could make a lenient peer send everything. Give the UIDs, or a key that narrows the "
        "match (e.g. PatientName=DOE*) to resolve with a C-FIND first"
    )


def build_identifier(request: RetrieveRequest, model: Model) -> Any:
    """The C-GET/C-MOVE identifier of `request` (a pydicom Dataset)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    if not all(value.isascii() for _, value in request.parents) or not all(
        value.isascii() for value in request.values
    ):
        # A Patient ID outside the default repertoire (PS3.4 C.4.2.1.4.1, C.4.3.1.3.1): it was
        # written as Latin-1 without a word, and dcmqrscp moved nothing (walkthrough 6d).
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = request.level.name
    for tag, value in request.parents:
        ds.add_new(tag, "LO" if tag == UNIQUE_KEYS[Level.PATIENT] else "UI", value)
    vr = "LO" if request.tag == UNIQUE_KEYS[Level.PATIENT] else "UI"
    values = list(request.values)
    ds.add_new(request.tag, vr, values if len(values) > 1 else values[0])
    return ds


def one_at_a_time(request: RetrieveRequest, outcome: RetrieveOutcome) -> bool:
    """The peer refused `request`, a list of UIDs, as a whole and did nothing: "unable to
    process" (Cxxx) or "identifier does not match SOP class" (A900), no sub-operation. Some
    SCPs cannot match a list (PS3.4 C.2.2.2.2 asks them to): sent one UID each, they serve."""
    final = outcome.final
    done = (final.completed or 0) + (final.failed or 0) + (final.warning or 0)
    refused = outcome.status >> 12 == 0xC or outcome.status == 0xA900
    return len(request.values) > 1 and refused and not done and not outcome.cancelled


def single_requests(request: RetrieveRequest) -> list[RetrieveRequest]:
    return [
        RetrieveRequest(request.level, request.parents, request.tag, (value,))
        for value in request.values
    ]


# --- resolving other keys with a C-FIND ------------------------------------------------------


@dataclass(slots=True)
class Resolution:
    """What a C-FIND found for the user's keys: the entities to retrieve, grouped into
    retrieve requests, how many instances they hold (when the peer said), and their SOP
    classes (SOP Classes in Study, or SOP Class UID at image level)."""

    level: Level
    requests: list[RetrieveRequest] = field(default_factory=list)
    entities: int = 0
    instances: int | None = None
    sop_classes: set[str] = field(default_factory=set)
    skipped: list[Unretrievable] = field(default_factory=list)  # matches left out, and why


NO_UNIQUE_KEY: Final = "not a usable unique key"


@frozen
class Unretrievable:
    """A match that is not retrieved: `what` names it (e.g. "StudyInstanceUID=''"), `why` it
    cannot be asked for without asking for something else too."""

    what: str
    why: str = NO_UNIQUE_KEY


def find_keys(model: Model, level: Level, keys: Mapping[int, str]) -> dict[int, str]:
    """The C-FIND keys that resolve `keys`: the user's, every unique key down to `level`,
    and what tells us the size and SOP classes of each match."""
    wanted = dict(keys)
    for _, tag in unique_tags(model, level):
        wanted.setdefault(tag, "")
    if level in _INSTANCE_COUNTS:
        wanted.setdefault(_INSTANCE_COUNTS[level], "")
    if level is Level.STUDY:
        wanted.setdefault(SOP_CLASSES_IN_STUDY, "")
    if level is Level.IMAGE:
        wanted.setdefault(SOP_CLASS_UID, "")
    return wanted


def _values(ds: Any, tag: int) -> list[str]:
    if tag not in ds:
        return []
    value = ds[tag].value
    if value is None or isinstance(value, bytes | bytearray):
        return []
    if isinstance(value, str):
        items: Iterable[object] = value.split("\\")
    elif isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        items = value
    else:
        items = [value]
    return [str(v).strip(" \x00") for v in items if str(v).strip(" \x00")]


# Above the study level a retrieve takes one unique key, not a list (PS3.4 C.4.2.2.1: lists
# are for UIDs at the study, series and image levels; Patient ID is LO, VM 1). Sent as a list,
# dcmqrscp matched no patient and answered success with nothing moved (walkthrough 6d): one
# request per patient.
_ONE_PER_REQUEST = Level.PATIENT


def resolve_matches(
    model: Model, level: Level, matches: Iterable[Any], *, max_list: int = 1000
) -> Resolution:
    """Group C-FIND matches into retrieve requests: one per parent entity, with at most
    `max_list` UIDs each. A match without a single, safe value for each unique key is skipped
    (listed in `skipped`): it could otherwise turn into a universal retrieve."""
    result = Resolution(level)
    groups: dict[tuple[tuple[int, str], ...], list[str]] = {}
    counted = 0
    total = 0
    tags = unique_tags(model, level)
    for ds in matches:
        found: list[tuple[int, str]] = []
        bad = False
        for _, tag in tags:
            values = _values(ds, tag)
            if len(values) != 1 or not is_safe_unique_value(values[0]):
                bad = True
                shown = "\\".join(values)
                result.skipped.append(Unretrievable(f"{_keyword(tag)}={quoted(shown)}"))
                break
            found.append((tag, values[0]))
        if bad:
            continue
        parents, own = tuple(found[:-1]), found[-1][1]
        uids_for = groups.setdefault(parents, [])
        if own in uids_for:
            continue  # some SCPs answer an entity once per instance below it
        uids_for.append(own)
        result.entities += 1
        if level is Level.IMAGE:
            counted += 1
            total += 1
        elif level in _INSTANCE_COUNTS:
            number = _values(ds, _INSTANCE_COUNTS[level])
            if number and number[0].isdigit():
                counted += 1
                total += int(number[0])
        if level is Level.STUDY:
            result.sop_classes.update(_values(ds, SOP_CLASSES_IN_STUDY))
        elif level is Level.IMAGE:
            result.sop_classes.update(_values(ds, SOP_CLASS_UID))
    if result.entities and counted == result.entities:
        result.instances = total
    tag = UNIQUE_KEYS[level]
    if level is _ONE_PER_REQUEST:
        max_list = 1  # one Patient ID per request (_ONE_PER_REQUEST)
    for parents, values in groups.items():
        for start in range(0, len(values), max_list):
            chunk = tuple(values[start : start + max_list])
            result.requests.append(RetrieveRequest(level, parents, tag, chunk))
    return result


# --- sub-operation counts ------------------------------------------------------------------


@frozen
class Progress:
    """The counts of a C-GET/C-MOVE response (any may be absent)."""

    remaining: int | None
    completed: int | None
    failed: int | None
    warning: int | None


def progress_of(response: Any) -> Progress:
    return Progress(
        response.number_of_remaining_suboperations,
        response.number_of_completed_suboperations,
        response.number_of_failed_suboperations,
        response.number_of_warning_suboperations,
    )


@dataclass(slots=True)
class Counters:
    """Sub-operation counters of an SCP (PS3.4 C.4.2.1.4, C.4.3.1.3)."""

    total: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.completed - self.failed - self.warning)

    def fail(self, sop_instance_uid: str) -> None:
        self.failed += 1
        self.failed_uids.append(sop_instance_uid)

    def capped(self) -> tuple[int, int, int, int]:
        """(remaining, completed, failed, warning), each at most 65535."""
        return (
            min(self.remaining, MAX_COUNT),
            min(self.completed, MAX_COUNT),
            min(self.failed, MAX_COUNT),
            min(self.warning, MAX_COUNT),
        )


def final_status(counters: Counters, *, cancelled: bool) -> int:
    """0000 all done, B000 some failed or warned, A702 all failed, FE00 cancelled."""
    from netdicom.core.dimse import status

    if cancelled:
        return status.CANCEL
    if counters.failed and not counters.completed and not counters.warning:
        return status.OUT_OF_RESOURCES_SUBOPERATIONS
    if counters.failed or counters.warning:
        return status.SUBOPERATIONS_WARNING
    return status.SUCCESS


def failed_uid_list(uids_: Sequence[str]) -> tuple[list[str], str | None]:
    """The Failed SOP Instance UID List (0008,0058) values that fit one element, and an error
    comment when some had to be left out."""
    kept: list[str] = []
    size = 0
    for uid in uids_:
        extra = len(uid) + (1 if kept else 0)
        if size + extra > MAX_UID_LIST_BYTES:
            return kept, f"failed UID list truncated: {len(kept)} of {len(uids_)}"
        kept.append(uid)
        size += extra
    return kept, None


OnProgress = Callable[[Progress], None]


@frozen
class Received:
    """One sub-operation C-STORE we answered; `status` None: one whose data set was cut off
    (the association ended midway), never answered and not stored (`error_comment` says
    why). It is listed all the same: its command named it, so it is not lost in silence."""

    sop_class_uid: str
    sop_instance_uid: str
    status: int | None
    error_comment: str | None
    # Answered as stored, but the file already there was kept and this copy let go
    # (--on-duplicate keep): what is on disk may be an older version than the peer's.
    kept_existing: bool = False

    @property
    def ok(self) -> bool:
        if self.status is None:
            return False
        return category(self.status) in (StatusCategory.SUCCESS, StatusCategory.WARNING)


def cut_off(message: Any, exc: BaseException) -> Received:
    """The Received of a C-STORE-RQ whose data set never fully came (`exc` ended it)."""
    return Received(
        message.affected_sop_class_uid,
        message.affected_sop_instance_uid,
        None,
        f"not stored: cut off during its data set ({exc})",
    )


class Kept:
    """The instances a StorageSCP put in place, recorded by its `on_placed` hook (called from
    the thread that placed each one; list.append is atomic). An instance whose C-STORE-RSP an
    A-ABORT kept from being sent (our second Ctrl-C, a receiver closed at the end of its
    grace) is on disk all the same: `count_in` adds those to what was answered, so the count
    reported is the count of files kept."""

    def __init__(self, storage: StorageSCP) -> None:
        self._uids: list[tuple[str, str]] = []
        self._kept_existing: set[str] = set()
        # Each instance's unique keys (tag -> value), to tell one that was not asked for.
        self._keys: dict[str, dict[int, str]] = {}
        storage.on_placed.append(self._record)

    def _record(self, stored: StoredInstance) -> None:
        from netdicom.archive.writer import Outcome

        uid = stored.sop_instance_uid
        # Kept in favour of a file this run had just written (the peer sent it twice): not
        # one that was there before (walkthrough 7c).
        if stored.outcome is Outcome.KEPT_EXISTING and uid not in self._keys:
            self._kept_existing.add(uid)
        self._keys[uid] = {
            tag: stored.values.get(tag, b"").decode("ascii", "replace").strip(" \x00")
            for tag in UNIQUE_KEYS.values()
            if tag != UNIQUE_KEYS[Level.IMAGE]
        } | {UNIQUE_KEYS[Level.IMAGE]: uid}
        self._uids.append((stored.sop_class_uid, uid))

    def not_asked_for(self, requests: Sequence[RetrieveRequest]) -> list[CountProblem]:
        """A problem (a warning) for the instances stored that none of `requests` named: a
        peer that sends another study's, or another patient's, instances put them in the
        folder without a word (walkthrough 7c). They stay: they were answered as stored."""
        wanted: dict[int, set[str]] = {}
        for request in requests:
            wanted.setdefault(request.tag, set()).update(request.values)
        stray = [
            (uid, tag, keys.get(tag, ""))
            for uid, keys in self._keys.items()
            for tag in wanted
            if keys.get(tag, "") not in wanted[tag]
        ]
        if not stray:
            return []
        uid, tag, value = stray[0]
        shown = quoted(value) if value else "none"
        return [
            CountProblem(
                f"{len({s[0] for s in stray})} instance(s) that no request named arrived and "
                f"were stored (e.g. {uid[:64]}, whose {_keyword(tag)} is {shown}): the peer "
                "sent more than was asked for",
                fails=False,
            )
        ]

    def count_in(self, received: list[Received]) -> None:
        """Add to `received` the instances in place that it lacks, as stored (one listed as
        cut off was placed all the same: its data set had come whole), and mark those whose
        file already there was kept (a second run with --on-duplicate keep said "stored"
        for files older than the peer's copies, walkthrough 6d)."""
        placed = {sop_instance for _, sop_instance in self._uids}
        received[:] = [
            r for r in received if r.status is not None or r.sop_instance_uid not in placed
        ]
        answered = {r.sop_instance_uid for r in received}
        for sop_class, sop_instance in list(self._uids):
            if sop_instance not in answered:
                answered.add(sop_instance)
                received.append(Received(sop_class, sop_instance, status.SUCCESS, None))
        kept = set(self._kept_existing)
        received[:] = [
            replace(r, kept_existing=True) if r.ok and r.sop_instance_uid in kept else r
            for r in received
        ]


@dataclass(slots=True)
class RetrieveOutcome:
    """The end of a C-GET or C-MOVE as the SCU saw it."""

    status: int
    final: Progress
    failed_uids: list[str] = field(default_factory=list)
    error_comment: str | None = None
    cancelled: bool = False  # we sent a C-CANCEL-RQ
    # C-GET only; out of repr() for the reason StoreReport.outcomes is.
    received: list[Received] = field(default_factory=list, repr=False)
    role_warnings: set[str] = field(default_factory=set)  # SOP classes sent without the role
    # Why the final response's identifier (Failed SOP Instance UID List) could not be read.
    unreadable_list: str | None = None
    # Sub-operations the pending responses announced (remaining + completed + failed +
    # warning): the first total, and the largest seen after it when it grew (it cannot: the
    # set of instances is fixed when the request is matched, PS3.4 C.4.2.3, C.4.3.3).
    announced: int | None = None
    grew_to: int | None = None
    after_cancel: int = 0  # C-STOREs that came after our C-CANCEL-RQ (C-GET)


# --- what the final responses claim, checked --------------------------------------------------


@frozen
class CountProblem:
    """Final response counts that contradict PS3.4 or what reached us."""

    text: str
    fails: bool  # part of the work failed (exit 1), not only an oddity of the peer


def check_counts(
    kind: Kind, outcomes: Sequence[RetrieveOutcome], arrived: int | None
) -> list[CountProblem]:
    """What is wrong with the counts of the final responses of `outcomes`.

    `arrived`: the instances stored here for these requests (those of a C-GET, or of a C-MOVE
    to our own receiver); None when they went to another AE, which we cannot check."""
    from netdicom.core.dimse import status

    problems: list[CountProblem] = []
    # PS3.4 C.4.2.2.1, C.4.3.2.1: Success means every sub-operation completed; failures or
    # warnings make it Warning (B000), none completed a failure. A peer that says Success with
    # failed sub-operations lost some of the work all the same.
    section = "C.4.2.2.1" if kind == "move" else "C.4.3.2.1"
    for number, outcome in enumerate(outcomes, 1):
        failed, warning = outcome.final.failed or 0, outcome.final.warning or 0
        if outcome.status != status.SUCCESS or not (failed or warning):
            continue
        prefix = f"request {number}: " if len(outcomes) > 1 else ""
        counts = [f"{failed} failed"] if failed else []
        counts += [f"{warning} with a warning"] if warning else []
        problems.append(
            CountProblem(
                f"{prefix}the peer answered Success (0x0000) but counts "
                f"{' and '.join(counts)} sub-operations: by PS3.4 {section} Success means "
                "every one completed",
                fails=failed > 0,
            )
        )
    for number, outcome in enumerate(outcomes, 1):
        prefix = f"request {number}: " if len(outcomes) > 1 else ""
        final = outcome.final
        if outcome.status == status.SUCCESS and outcome.failed_uids:
            # The list goes with Warning, Failure or Cancel only (PS3.4 C.4.2.3.1, C.4.3.3.1):
            # "no failures" was printed above the UIDs it named, exit 0 (walkthrough 7c).
            problems.append(
                CountProblem(
                    f"{prefix}the peer answered Success (0x0000) but lists "
                    f"{len(outcome.failed_uids)} failed SOP instance(s)",
                    fails=True,
                )
            )
        given = (final.completed, final.failed, final.warning)
        # A final Success may leave its counts out (PS3.7 9.1.3, 9.1.4): then it claims nothing.
        if outcome.status != status.CANCEL and not outcome.cancelled and given != (None,) * 3:
            accounted = sum(v or 0 for v in given)
            undone = final.remaining or 0
            missing = (outcome.announced or 0) - accounted
            if undone or (category(outcome.status) is not StatusCategory.FAILURE and missing > 0):
                # A final response ends every sub-operation (PS3.4 C.4.2.3.1, C.4.3.3.1): one
                # that leaves some remaining, or accounts for fewer than the pending responses
                # announced, lost them without a word (exit 0 with 1 of 10, walkthrough 7c).
                left = undone or missing
                problems.append(
                    CountProblem(
                        f"{prefix}the peer's final response leaves {left} of "
                        f"{max(outcome.announced or 0, accounted + undone)} sub-operations "
                        "neither completed nor failed",
                        fails=True,
                    )
                )
    for outcome in outcomes:
        if outcome.after_cancel:
            problems.append(
                CountProblem(
                    f"{outcome.after_cancel} instance(s) came after our C-CANCEL-RQ (stored "
                    "all the same): the peer went on",
                    fails=False,
                )
            )
        if outcome.grew_to is not None:
            problems.append(
                CountProblem(
                    f"the peer's pending responses announced {outcome.announced} "
                    f"sub-operations, then {outcome.grew_to}: its counts are not to be trusted",
                    fails=False,
                )
            )
        if outcome.unreadable_list is not None:
            problems.append(
                CountProblem(
                    "the peer's Failed SOP Instance UID List could not be read "
                    f"({outcome.unreadable_list}): the failed instances are not named",
                    fails=False,
                )
            )
    if arrived is not None:
        # A warning sub-operation stored its instance too (with a warning status).
        claimed = sum((o.final.completed or 0) + (o.final.warning or 0) for o in outcomes)
        if claimed > arrived:
            noun = "instance was" if arrived == 1 else "instances were"
            problems.append(
                CountProblem(
                    f"the peer reports {claimed} completed sub-operations, but {arrived} "
                    f"{noun} stored here",
                    fails=True,
                )
            )
    return problems


@contextlib.contextmanager
def tidy_incoming(root: Path) -> Iterator[None]:
    """Remove the archive's temporary folder (`root/.incoming`) at the end when it is empty,
    also one an earlier run left (a retrieve killed with SIGKILL kept an empty one for good).
    A non-empty one holds files still being written and stays; a serve or another retrieve on
    the same folder makes it again when it needs it (Archive.begin). `root` and the parents
    this run makes go too when nothing was put in them (the peer down, nothing sent: a cron
    job's dated folder was left empty each such day, walkthrough 7 verification)."""
    from netdicom.archive.writer import TEMP_DIR

    temp = root / TEMP_DIR
    made = [p for p in (root, *root.parents) if not p.exists()]
    try:
        yield
    finally:
        for folder in (temp, *made):
            with contextlib.suppress(OSError):  # not empty, or gone: left as it is
                folder.rmdir()


__all__ = [
    "FAILED_SOP_INSTANCE_UID_LIST",
    "GET_SOP_CLASSES",
    "MOVE_SOP_CLASSES",
    "RETRIEVE_SOP_CLASSES",
    "CountProblem",
    "Counters",
    "Kept",
    "Kind",
    "OnProgress",
    "Progress",
    "Received",
    "Resolution",
    "RetrieveOutcome",
    "RetrieveRequest",
    "Unretrievable",
    "UnsafeRetrieve",
    "build_identifier",
    "check_counts",
    "cut_off",
    "direct_requests",
    "failed_uid_list",
    "final_status",
    "find_keys",
    "is_safe_unique_value",
    "model_of",
    "one_at_a_time",
    "progress_of",
    "resolve",
    "resolve_matches",
    "single_requests",
    "sop_class_for",
    "tidy_incoming",
    "unique_tags",
]


async def resolve(
    peer: Any,
    options: Any,
    model: Model,
    level: Level,
    keys: Mapping[int, str],
    *,
    timeout: float | None = None,
) -> Resolution:
    """Run the C-FINDs that turn `keys` into retrieve requests, on an association of their
    own (PS3.4 C.4.2.2.1: a retrieve carries unique keys only). Top down, as a hierarchical
    SCP needs (see _find_down)."""
    from netdicom.services.find_scu import find_contexts
    from netdicom.services.session import open_association

    assoc = await open_association(peer, options, find_contexts(model))
    matches: list[Any] = []
    skipped: list[Unretrievable] = []
    try:
        await _find_down(assoc, model, level, dict(keys), {}, matches, skipped, timeout)
        resolution = resolve_matches(model, level, matches)
        if level is Level.PATIENT and _narrows_patients(model, keys):
            await _leave_out_shared_ids(assoc, model, resolution, matches, timeout)
    except BaseException:
        assoc.abort()
        raise
    await assoc.release()
    resolution.skipped[:0] = skipped
    return resolution


_PATIENT_NAME: Final = 0x00100010


def _narrows_patients(model: Model, keys: Mapping[int, str]) -> bool:
    """Whether a patient-level key other than Patient ID chose among patients (an issuer, a
    name, a birth date): then the patients matched may share their Patient ID with others."""
    patient_id = UNIQUE_KEYS[Level.PATIENT]
    return any(
        tag != patient_id and level_of(tag, model) is Level.PATIENT and not _universal(value)
        for tag, value in keys.items()
    )


async def _leave_out_shared_ids(
    assoc: Any, model: Model, resolution: Resolution, matches: Sequence[Any], timeout: float | None
) -> None:
    """Leave out the patient-level requests whose Patient ID also names a patient the C-FIND
    did not match. A retrieve carries unique keys only, and a Patient ID "cannot be qualified
    by the Issuer of Patient ID, and so a STUDY rather than PATIENT level retrieval should be
    used in such cases" (PS3.4 C.4.2.2.1, CP-1649): `--level patient PatientID=X
    IssuerOfPatientID=A` matched one patient and retrieved every patient with ID X, another
    issuer's images included (walkthrough 7b)."""
    patient_id = UNIQUE_KEYS[Level.PATIENT]

    def who(ds: Any) -> tuple[str, ...]:
        return tuple("\\".join(_values(ds, tag)) for tag in (ISSUER_OF_PATIENT_ID, _PATIENT_NAME))

    matched: dict[str, set[tuple[str, ...]]] = {}
    for ds in matches:
        for value in _values(ds, patient_id)[:1]:
            matched.setdefault(value, set()).add(who(ds))
    for request in list(resolution.requests):
        (value,) = request.values
        keys = {patient_id: value, ISSUER_OF_PATIENT_ID: "", _PATIENT_NAME: ""}
        everyone = {who(ds) for ds in await _find_once(assoc, model, Level.PATIENT, keys, timeout)}
        if len(everyone - matched.get(value, set())) > 0:
            resolution.requests.remove(request)
            resolution.skipped.append(
                Unretrievable(
                    f"PatientID={quoted(value)}",
                    f"{len(everyone)} patients on the peer share this Patient ID, and a "
                    "patient-level retrieve would bring them all (PS3.4 C.4.2.2.1): retrieve "
                    "at study level (--level study, same keys)",
                )
            )


async def _find_down(
    assoc: Any,
    model: Model,
    level: Level,
    keys: dict[int, str],
    parents: dict[int, str],
    matches: list[Any],
    skipped: list[Unretrievable],
    timeout: float | None,
) -> None:
    """The matches at `level` of `keys` under the entity `parents` names (unique keys).

    A key of a level above `level` that is not that level's unique key with a single value
    is asked at its own level first, then each match's unique keys narrow the next level:
    a hierarchical SCP (dcmqrscp; the baseline, PS3.4 C.4.1.3.1) takes the query level's
    keys and one unique key per level above, and ignores the rest. Asked in one C-FIND,
    `--model patient --level study PatientName=DOE*` matched every patient's studies (and
    retrieved them all), `--level series PatientID=P2` every patient's series (6d)."""
    step = _first_step(model, level, keys)
    if step is None:
        matches.extend(await _find_once(assoc, model, level, {**keys, **parents}, timeout))
        return
    here = {tag: value for tag, value in keys.items() if level_of(tag, model) <= step}
    below = {tag: value for tag, value in keys.items() if level_of(tag, model) > step}
    if step is Level.PATIENT:
        # A Patient ID is unique only within its issuer: two patients with one ID from two
        # issuers were merged, and the other's studies retrieved (walkthrough 6 verification).
        here.setdefault(ISSUER_OF_PATIENT_ID, "")
    seen: set[tuple[tuple[int, str], ...]] = set()
    for match in await _find_once(assoc, model, step, {**here, **parents}, timeout):
        found: dict[int, str] = {}
        for _, tag in unique_tags(model, step):
            values = _values(match, tag)
            if len(values) != 1 or not is_safe_unique_value(values[0]):
                skipped.append(Unretrievable(f"{_keyword(tag)}={quoted(chr(92).join(values))}"))
                break
            found[tag] = values[0]
        else:
            issuer = _values(match, ISSUER_OF_PATIENT_ID) if step is Level.PATIENT else []
            if len(issuer) == 1:
                found[ISSUER_OF_PATIENT_ID] = issuer[0]
            if tuple(found.items()) not in seen:
                seen.add(tuple(found.items()))
                await _find_down(assoc, model, level, below, found, matches, skipped, timeout)


def _first_step(model: Model, level: Level, keys: Mapping[int, str]) -> Level | None:
    """The highest level above `level` with a key a hierarchical C-FIND at `level` cannot
    carry (see _find_down); None when every key above is a single unique key."""
    uniques = {tag for _, tag in unique_tags(model, level)}
    steps = [
        where
        for tag, value in keys.items()
        if (where := level_of(tag, model)) < level
        and not (tag in uniques and "\\" not in value and is_safe_unique_value(value))
    ]
    return min(steps) if steps else None


async def _find_once(
    assoc: Any, model: Model, level: Level, keys: Mapping[int, str], timeout: float | None
) -> list[Any]:
    from netdicom.core.errors import DimseFailure
    from netdicom.services.find_scu import build_identifier as find_identifier
    from netdicom.services.find_scu import find

    identifier = find_identifier(level, find_keys(model, level, keys))
    matches: list[Any] = []
    result = await find(assoc, model, identifier, lambda ds, _: matches.append(ds), timeout=timeout)
    if category(result.status) not in (StatusCategory.SUCCESS, StatusCategory.WARNING):
        comment = f": {result.error_comment}" if result.error_comment else ""
        raise DimseFailure(
            result.status,
            f"the C-FIND resolving the keys failed: "
            f"{status.status_name(result.status, 'find')} (0x{result.status:04X}){comment}",
        )
    return matches
