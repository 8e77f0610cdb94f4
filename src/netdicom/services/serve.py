"""`netdicom serve`: the acceptor policy and the services a serve process offers."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path

from netdicom.archive.index import Index
from netdicom.archive.layout import DEFAULT_LAYOUT, Layout
from netdicom.archive.matching import FIND_SOP_CLASSES
from netdicom.archive.writer import Archive, DuplicatePolicy
from netdicom.core import uids
from netdicom.core.acse import (
    AcceptorPolicy,
    IdentityChecker,
    Negotiated,
    default_chooser,
    negotiate_acceptor,
)
from netdicom.core.dimse import (
    CEchoRQ,
    CFindRQ,
    CGetRQ,
    CMoveRQ,
    CStoreRQ,
)
from netdicom.core.pdu import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    ContextResult,
    UserIdentityRQ,
    UserIdentityType,
)
from netdicom.core.printable import quoted
from netdicom.core.records import frozen
from netdicom.services.dispatcher import Dispatcher
from netdicom.services.echo import answer_echo_now, handle_echo
from netdicom.services.events import emit
from netdicom.services.events import log as events_log
from netdicom.services.find_scp import FindSCP, extended_negotiation_answer
from netdicom.services.peer import Peer
from netdicom.services.responses import refuse
from netdicom.services.retrieve_common import RETRIEVE_SOP_CLASSES
from netdicom.services.retrieve_scp import RetrieveSCP
from netdicom.services.store_scp import (
    StorageSCP,
    StoredInstance,
    StoreLimits,
    choose_sending_syntax,
    storage_chooser,
)
from netdicom.transport.association import Association
from netdicom.transport.config import TransportConfig
from netdicom.transport.server import FaultFactory, Server

log = logging.getLogger("netdicom.serve")

# How long rows added by the store hook may wait for their commit (see _index_stored). Each
# commit writes the WAL, which the next per-file fsync then has to flush too (ext4 orders data
# before its journal): fewer commits, cheaper fsyncs. Queries flush first, so none is stale.
_FLUSH_DELAY = 1.0
# How often a refused store tries the index again while it cannot be written (_refusal).
_RETRY_INDEX = 1.0
# Operations a storage-only association may have outstanding with us (PS3.7 D.3.3.3): while
# instances are synced the next ones arrive, and the more arrive meanwhile the more share one
# group commit (2,000 instances of 2 KB: 0.66 and 0.96 s with 64 against 0.83 and 1.14 s
# with 16, medians of 4 in two runs; 256 against 64: 0.663 vs 0.735 s and 0.723 vs 0.697 s,
# medians of 8, and 500 CT images 0.98 vs 1.25 s, median of 6, with less CPU on both sides:
# fewer syncs, most when the disk is slow).
# What they hold is bounded: instances of up to 256 KiB wait in memory for their group, at
# most store_scp.HELD_LIMIT over all associations; larger ones, and any beyond that limit,
# have at most the spool's limit in flight.
ASYNC_STORE_WINDOW = 256
# Transfer syntaxes for services without a data set worth converting, in our preference.
_PLAIN_SYNTAXES = (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)


@frozen
class ServeConfig:
    directory: Path
    ae_title: str = "NETDICOM"
    host: str = "127.0.0.1"
    port: int = 11112
    transport: TransportConfig = field(default_factory=TransportConfig)
    max_associations: int | None = None
    # C-MOVE destinations (PS3.4 C.4.2.1.1): AE title -> where to connect (--remote, config).
    remotes: Mapping[str, Peer] = field(default_factory=dict)
    # Storage SCP (PS3.4 Annex B): see services/store_scp.py and archive/.
    layout: str = DEFAULT_LAYOUT
    on_duplicate: DuplicatePolicy = DuplicatePolicy.KEEP
    accept_unknown_sop_classes: bool = True
    prefer_transfer_syntaxes: tuple[str, ...] = ()
    fsync: bool = True
    store_limits: StoreLimits = field(default_factory=StoreLimits)
    # Access control (issue 8). `allow`: AE, AE@HOST or *@HOST; empty allows every caller,
    # otherwise others get A-ASSOCIATE-RJ (1, 1, 3). `strict_aet`: a called AE title other
    # than ours gets (1, 1, 7). `users_file`: every association must carry a username and
    # passcode found there (PS3.7 D.3.3.7), else (1, 2, 1).
    allow: tuple[str, ...] = ()
    strict_aet: bool = False
    users_file: Path | None = None
    # SIGTERM: seconds running associations get to finish before they are aborted.
    shutdown_grace: float = 10.0
    # TLS for associations serve opens (C-MOVE sub-associations to a destination configured
    # with tls = true): serve's own certificate, verified against the same CA.
    outbound_ssl_context: ssl.SSLContext | None = None
    # C-MOVE destinations (AE titles) dialled with TLS, using outbound_ssl_context.
    tls_remotes: frozenset[str] = frozenset()


class ServeApp:
    """Decides on association requests and serves the accepted ones."""

    def __init__(
        self,
        config: ServeConfig,
        *,
        faults: FaultFactory | None = None,
        index_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.config = config
        self.archive = Archive(
            config.directory, on_duplicate=config.on_duplicate, fsync=config.fsync
        )
        swept = self.archive.sweep()
        if swept:
            log.info("removed %d temporary files left by an earlier run", swept)
        self.storage = StorageSCP(
            self.archive,
            Layout.parse(config.layout),
            limits=config.store_limits,
            require_filing=True,
        )
        # Non-storage services: abstract syntax -> transfer syntaxes in our preference. Every
        # other abstract syntax is judged by the storage chooser.
        # Other services add theirs here before the server starts.
        self.service_syntaxes: dict[str, tuple[str, ...]] = {uids.VERIFICATION: _PLAIN_SYNTAXES}
        # Query/Retrieve FIND (PS3.4 C.4.1): the index of DIR, verified or rebuilt here.
        self.index = _open_index(
            config.directory,
            index_progress,
            copies_expected=config.on_duplicate is DuplicatePolicy.RENAME,
        )
        self._flush_timer: asyncio.TimerHandle | None = None
        self._index_gone = False
        self._flushing: set[asyncio.Future[None]] = set()
        self.find = FindSCP(self.index, config.ae_title)
        # Queued for the index where the file was placed (see _index_stored); the flush that
        # adds the queue is scheduled from the event loop.
        self.storage.on_placed.append(self._index_stored)
        self.storage.stored_at = self._stored_at
        self.storage.refusal = self._refusal
        self._retry_at = 0.0
        self.storage.on_stored.append(self._schedule_flush)
        # On placing (a worker thread), not after: an instance placed as the shutdown grace ran
        # out was kept and indexed, yet never logged (its coroutine was cancelled).
        self.storage.on_placed.append(self._log_stored)
        for sop_class in FIND_SOP_CLASSES:
            self.service_syntaxes[sop_class] = _PLAIN_SYNTAXES
        # Query/Retrieve GET and MOVE (PS3.4 C.4.2, C.4.3): sub-operations from the index.
        # Sub-associations are ours as requestor: never with the listening (server-side) TLS
        # context, which cannot open client connections; destinations configured with
        # tls = true get the client context.
        outbound = dataclasses.replace(config.transport, ssl_context=None)
        with_tls = dataclasses.replace(config.transport, ssl_context=config.outbound_ssl_context)

        def transport_for(destination: str) -> TransportConfig | None:
            if destination in config.tls_remotes and config.outbound_ssl_context is not None:
                return with_tls
            return None

        self.retrieve = RetrieveSCP(
            self.index,
            config.ae_title,
            remotes=config.remotes,
            transport=outbound,
            transport_for=transport_for,
        )
        for sop_class in RETRIEVE_SOP_CLASSES:
            self.service_syntaxes[sop_class] = _PLAIN_SYNTAXES
        self._storage_chooser = storage_chooser(
            accept_unknown=config.accept_unknown_sop_classes,
            prefer=config.prefer_transfer_syntaxes,
        )
        from netdicom.services.users import AllowList

        self.allow = AllowList.parse(config.allow)
        self.users = None
        self._users_stamp: tuple[int, int, int] | None = None
        if config.users_file is not None:
            from netdicom.services.users import load_users

            self._users_stamp = _stamp(config.users_file)
            self.users = load_users(config.users_file)
        self.policy = AcceptorPolicy(
            ae_title=config.ae_title,
            transfer_syntax_chooser=self._choose,
            sending_chooser=self._choose_sending,
            # C-GET: we send C-STOREs to a requestor that proposed the SCP role (PS3.7 D.3.3.4).
            can_act_as_scu=self._can_send_storage,
            max_pdu=config.transport.max_pdu,
            extended_negotiator=extended_negotiation_answer,
            require_called_ae=config.strict_aet,
            identity_checker=self._identity_checker(),
        )
        # Storage-only associations get an asynchronous operations window when they ask for
        # one: the Storage SCP answers several C-STOREs at once. Query/retrieve services read
        # their association while they answer (C-CANCEL) and stay synchronous.
        self.storage_policy = dataclasses.replace(
            self.policy, support_async=True, async_limit=ASYNC_STORE_WINDOW
        )
        self.dispatcher = Dispatcher(
            {
                CEchoRQ: handle_echo,
                CStoreRQ: self.storage.handle,
                CFindRQ: self.find.handle,
                CGetRQ: self.retrieve.handle,
                CMoveRQ: self.retrieve.handle,
            },
            refuse,
            inline={CEchoRQ: answer_echo_now},
        )
        self.server = Server(
            config.host,
            config.port,
            decide=self.decide,
            handler=self.dispatcher.serve,
            config=config.transport,
            on_done=self._log_association,
            faults=faults,  # tests only: a fault injector per connection
        )

    def _can_send_storage(self, sop_class: str) -> bool:
        from netdicom.services.store_scp import is_storage_sop_class

        accept_unknown = self.config.accept_unknown_sop_classes
        return is_storage_sop_class(sop_class, accept_unknown=accept_unknown)

    def _choose(self, abstract_syntax: str, offered: tuple[str, ...]) -> str | ContextResult:
        preference = self.service_syntaxes.get(abstract_syntax)
        if preference is not None:
            return default_chooser({abstract_syntax: preference})(abstract_syntax, offered)
        return self._storage_chooser(abstract_syntax, offered)

    def _choose_sending(
        self, abstract_syntax: str, offered: tuple[str, ...]
    ) -> str | ContextResult:
        # A storage context the requestor proposed to be SCP of (C-GET): we send on it, so
        # the syntax that carries most of what the archive holds of the class wins
        # (choose_sending_syntax). One query per such context, on the index's own covering
        # SQLite index: a few milliseconds at association time.
        if abstract_syntax in self.service_syntaxes or not self._can_send_storage(abstract_syntax):
            return self._choose(abstract_syntax, offered)
        return choose_sending_syntax(offered, self.index.transfer_syntaxes(abstract_syntax))

    def decide(
        self, rq: AssociateRQ, server: Server
    ) -> tuple[AssociateAC, Negotiated] | AssociateRJ:
        limit = self.config.max_associations
        peer = server.deciding.peer if server.deciding is not None else "?"
        answer: tuple[AssociateAC, Negotiated] | AssociateRJ
        if not self.allow.permits(rq.calling_ae_title.strip(" "), peer):
            # PS3.8 Table 9-21: permanent, service user, calling AE title not recognized.
            # Before the limit: a caller that is never allowed hears so, not "try later".
            answer = AssociateRJ(1, 1, 3)
        elif limit is not None and server.active_associations >= limit:
            # PS3.8 Table 9-21: transient, presentation provider, local limit exceeded.
            answer = AssociateRJ(2, 3, 2)
        elif self.users is not None and rq.user_information.user_identity_rq is None:
            # A users file makes identity mandatory; its absence is refused like a failed one
            # (PS3.7 D.3.3.7: permanent, ACSE provider).
            answer = AssociateRJ(1, 2, 1)
        else:
            answer = negotiate_acceptor(rq, self._policy_for(rq))
        if isinstance(answer, AssociateRJ):
            self._log_rejection(rq, peer, answer)
        return answer

    def _policy_for(self, rq: AssociateRQ) -> AcceptorPolicy:
        storage_only = all(
            item.abstract_syntax == uids.VERIFICATION
            or (
                item.abstract_syntax not in self.service_syntaxes
                and self._can_send_storage(item.abstract_syntax)
            )
            for item in rq.presentation_contexts
        )
        return self.storage_policy if storage_only else self.policy

    def _identity_checker(self) -> IdentityChecker | None:
        if self.users is None:
            # No users file: the item is ignored and no response is sent, as an acceptor that
            # does not support identity negotiation does (PS3.7 D.3.3.7).
            return None
        return self._check_identity

    def _check_identity(self, identity: UserIdentityRQ) -> bool:
        from netdicom.services.users import identity_checker

        self._reload_users()
        assert self.users is not None
        return identity_checker(self.users)(identity)

    def _reload_users(self) -> None:
        """Read the users file again when it changed (serve --add-user while serving: the new
        user was refused until a restart). One stat per association that must identify; a
        file that no longer reads keeps the users read before, with a warning."""
        from netdicom.services.users import UsersFileError, load_users

        path = self.config.users_file
        assert path is not None
        stamp = _stamp(path)
        if stamp == self._users_stamp:
            return
        self._users_stamp = stamp
        try:
            self.users = load_users(path)
        except UsersFileError as exc:
            log.warning(
                "users file changed but cannot be used (%s): the users read before stay", exc
            )
            return
        log.info("users file %s read again: %d users", path, len(self.users.entries))

    def _log_rejection(self, rq: AssociateRQ, peer: str, rj: AssociateRJ) -> None:
        from netdicom.core.acse.acceptor import title_problem
        from netdicom.core.acse.validation import peer_max_pdu_problem
        from netdicom.core.rejections import describe_rejection

        calling_problem = title_problem(rq.calling_ae_title)
        called_problem = title_problem(rq.called_ae_title)
        why = {
            (1, 3): f"calling AE title {calling_problem}"
            if calling_problem
            else self.allow.refusal(rq.calling_ae_title.strip(" ")),
            (1, 7): f"called AE title {called_problem}"
            if called_problem
            else f"called AE title is not ours ({self.config.ae_title}, --strict-aet)",
            (3, 2): f"{self.config.max_associations} associations already open "
            "(--max-associations): the peer may try again later",
        }.get((rj.source, rj.reason), describe_rejection(rj.result, rj.source, rj.reason))
        pdu_problem = peer_max_pdu_problem(rq.user_information.max_length)
        if (rj.source, rj.reason) == (1, 1) and pdu_problem is not None:
            why = f"A-ASSOCIATE-RQ unusable: {pdu_problem}"
        called = rq.called_ae_title.strip()
        if (rj.source, rj.reason) == (1, 7) and called.upper() == self.config.ae_title.upper():
            why += f"; it differs only in case: AE titles are case-sensitive ({quoted(called)})"
        if (rj.source, rj.reason) == (2, 1) and self.users is not None:
            identity = rq.user_information.user_identity_rq
            if identity is None:
                why = "no user identity sent"
            elif identity.identity_type in (
                UserIdentityType.USERNAME,
                UserIdentityType.USERNAME_AND_PASSCODE,
            ):
                who = identity.primary.decode("utf-8", "replace")
                why = f"user identity {quoted(who[:64])} refused"
            else:
                # A Kerberos ticket, a SAML assertion, a JWT: the primary field is the
                # credential itself (PS3.7 D.3.3.7), never written to a log.
                why = f"user identity of type {int(identity.identity_type)} refused"
        log.warning(
            "rejected association from %s: %s -> %s: %s (%d, %d, %d)",
            peer,
            rq.calling_ae_title.strip(" "),
            rq.called_ae_title.strip(" "),
            why,
            rj.result,
            rj.source,
            rj.reason,
        )

    def _stored_at(self, sop_instance_uid: str) -> str | None:
        # On the thread that places files, before this instance is queued for the index.
        return self.index.stored_path(sop_instance_uid)

    def _refusal(self) -> str | None:
        """Stores are refused (A700) while the index cannot be written (a full disk): the
        files would be on disk, success answered, and no C-FIND or retrieve would find them
        until space came back (walkthrough 6a). A refused store tries the index again, at
        most once a second, so that stores resume once it can be written."""
        if not self.index.write_failing:
            return None
        now = time.monotonic()
        if now >= self._retry_at and self._flush_timer is None and not self._flushing:
            self._retry_at = now + _RETRY_INDEX
            self._flush_in_background()
        return "the archive's index cannot be written (disk full?): try again later"

    def _index_stored(self, stored: StoredInstance) -> None:
        # After the file is durable, before success is answered. The instance is queued
        # (Index.add_later): SQLite runs in flush_index, within _FLUSH_DELAY and off the event
        # loop, and before any read of the index, so no query or retrieve ever misses it.
        from netdicom.archive.rebuild import captured_summary, index_file, relative_path
        from netdicom.archive.writer import Outcome

        keep_existing = stored.outcome is Outcome.RENAMED
        if stored.outcome is Outcome.KEPT_EXISTING or not stored.values:
            # The file in place is not the one received (or nothing was captured): read it.
            index_file(self.index, stored.path, keep_existing=keep_existing)
            return
        directory, path, values = self.index.directory, stored.path, stored.values
        syntax = stored.transfer_syntax
        self.index.add_later(
            lambda: captured_summary(directory, path, values, syntax),
            keep_existing=keep_existing,
            sop_instance_uid=stored.sop_instance_uid,
            path=relative_path(directory, path),  # as the summary has it
        )

    def _schedule_flush(self, stored: StoredInstance) -> None:
        if self._flush_timer is None and self.index.pending:
            loop = asyncio.get_running_loop()
            # A long burst is added in batches of about MAX_PENDING instances.
            delay = 0.0 if self.index.pending >= Index.MAX_PENDING else _FLUSH_DELAY
            self._flush_timer = loop.call_later(delay, self._flush_in_background)

    def _flush_in_background(self) -> None:
        # SQLite releases the GIL: the event loop goes on receiving while rows are added.
        self._flush_timer = None
        task = asyncio.ensure_future(asyncio.to_thread(self._flush))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    def flush_index(self) -> None:
        """Add and commit the instances the store hook queued (also done before every query
        and at shutdown)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._flush()

    def _flush(self) -> None:
        try:
            self.index.flush()
        except Exception:
            log.exception("committing the index failed; the start-up check will re-index")
        if not self._index_gone and not self.index.path.exists():
            # Removed while serving: rows go on into the unlinked file and no query finds
            # them (the files are on disk and indexed at the next start). Said once.
            self._index_gone = True
            log.error(
                "the index %s was removed: instances are stored but cannot be queried or "
                "retrieved until serve is restarted (the restart indexes them)",
                self.index.path,
            )

    def _log_association(self, assoc: Association) -> None:
        rq = assoc.associate_rq
        titles = f"{rq.calling_ae_title} -> {rq.called_ae_title}" if rq else "(no A-ASSOCIATE-RQ)"
        # Which presentation contexts were refused, and why: "the modality cannot send" is
        # answered here (storescp -v and dcmqrscp -v show it too).
        negotiated = assoc.negotiated
        rejected = [r.describe() for r in negotiated.rejected] if negotiated else []
        refused = ""
        if rejected:
            total = len(rejected) + len(negotiated.accepted) if negotiated else len(rejected)
            shown = "; ".join(rejected[:3]) + (
                f"; … {len(rejected) - 3} more" if len(rejected) > 3 else ""
            )
            refused = f" ({len(rejected)} of {total} contexts rejected: {shown})"
        seconds = time.monotonic() - assoc.began
        done = ""
        if assoc.requests:
            # What the association did, for accounting (storescp -v style): "3 C-STORE".
            counts = ", ".join(f"{n} {service}" for service, n in sorted(assoc.requests.items()))
            done = f"; {counts} in {seconds:.2f} s"
        emit(
            "association",
            f"{assoc.peer} {titles}: {assoc.outcome}{refused}{done}",
            peer=assoc.peer,
            calling_ae=rq.calling_ae_title if rq else None,
            called_ae=rq.called_ae_title if rq else None,
            outcome=assoc.outcome,
            rejected_contexts=rejected,
            requests=dict(assoc.requests),
            duration_s=round(seconds, 3),
        )

    def _log_stored(self, stored: StoredInstance) -> None:
        if not events_log.isEnabledFor(logging.INFO):
            return  # the hot path of a busy store: build nothing nobody will read
        emit(
            "stored",
            f"stored {stored.sop_instance_uid} from {stored.calling_ae} ({stored.outcome.value})",
            peer=stored.peer,
            calling_ae=stored.calling_ae,
            sop_class_uid=stored.sop_class_uid,
            sop_instance_uid=stored.sop_instance_uid,
            transfer_syntax=stored.transfer_syntax,
            path=str(stored.path),
            bytes=stored.size,
            outcome=stored.outcome.value,
        )


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file: its inode (a rename over it), size and modification time."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _open_index(
    directory: Path,
    bar: Callable[[int, int], None] | None = None,
    *,
    copies_expected: bool = False,
) -> Index:
    """Open DIR's index, rebuilding it from the files when missing or damaged, and reconcile
    it with the files (progress logged every few seconds)."""
    import sqlite3
    import time

    from netdicom.archive.index import IndexUnavailable, index_path
    from netdicom.archive.rebuild import open_index

    last = [time.monotonic()]

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar(done, total)
        now = time.monotonic()
        if total and (now - last[0] > 5 or done == total) and total > 1000:
            last[0] = now
            log.info("indexing %s: %d/%d files", directory, done, total)

    try:
        index, report = open_index(directory, progress, copies_expected=copies_expected)
    except sqlite3.OperationalError as exc:
        # Reconciling writes the index: a full or read-only file system says so here.
        raise IndexUnavailable(index_path(directory), exc) from exc
    if report.added or report.removed:
        log.info(
            "index: %d instance%s (%d added from files, %d removed, %d skipped)",
            report.total,
            "" if report.total == 1 else "s",
            report.added,
            report.removed,
            report.skipped,
        )
    return index
