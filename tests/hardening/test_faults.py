"""Fault injection on both sides of an association (in-process serve and client).

Every PDU type each side sends or receives is dropped, delayed, truncated, corrupted or
replaced by a close. Whatever the fault, the client ends with success or a clear NetDicomError
within its timeouts, serve ends the association within its own (no task, socket or association
left behind) and nothing is logged as an internal error. All scenarios run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from netdicom.core import errors
from netdicom.core.pdu import PDUType
from netdicom.services.echo import ECHO_CONTEXTS, echo
from netdicom.services.peer import Peer
from netdicom.services.serve import ServeApp, ServeConfig
from netdicom.services.session import ClientOptions, open_association
from netdicom.transport.config import Timeouts, TransportConfig
from netdicom.transport.faults import Direction, Fault, FaultAction, FaultInjector

T = 0.5  # every timeout on both sides
TIMEOUTS = Timeouts(connect=T, acse=T, dimse=T, artim=T, idle=T)
CLIENT_BOUND = 4 * T + 1.0  # association + 2 echoes + release, each bounded by T
SERVER_BOUND = 3 * T + 2.5  # idle/ARTIM, then the close grace for an unread A-ABORT

CLEAN_ERRORS = (
    errors.AssociationAborted,
    errors.AssociationRejected,
    errors.ConnectionClosed,
    errors.NoAcceptedContext,
    errors.RemoteProtocolError,
    errors.TimeoutExpired,
)

_VARIANTS = (
    Fault(FaultAction.DROP),
    Fault(FaultAction.DELAY, seconds=0.2),
    Fault(FaultAction.TRUNCATE, keep=3),
    Fault(FaultAction.TRUNCATE, keep=10),
    Fault(FaultAction.CORRUPT, offset=0),  # the PDU type
    Fault(FaultAction.CORRUPT, offset=2),  # the length's high byte
    Fault(FaultAction.CORRUPT, offset=5),  # the length's low byte
    Fault(FaultAction.CORRUPT, offset=12),  # the body
    Fault(FaultAction.CLOSE),
)

# What each side sends and receives in associate / C-ECHO x2 / release.
_CLIENT_SENDS = (PDUType.ASSOCIATE_RQ, PDUType.P_DATA_TF, PDUType.RELEASE_RQ)
_SERVER_SENDS = (PDUType.ASSOCIATE_AC, PDUType.P_DATA_TF, PDUType.RELEASE_RP)


@dataclass(frozen=True)
class Scenario:
    side: str  # "client" or "server"
    fault: Fault

    @property
    def name(self) -> str:
        f = self.fault
        detail = {
            FaultAction.DELAY: f"{f.seconds}s",
            FaultAction.TRUNCATE: f"keep{f.keep}",
            FaultAction.CORRUPT: f"at{f.offset}",
        }.get(f.action, "")
        pdu = f.pdu_type.name if f.pdu_type is not None else "any"
        return f"{self.side}-{f.direction.value}-{pdu}-{f.action.value}{detail}"


def _scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    for side, sends, receives in (
        ("client", _CLIENT_SENDS, _SERVER_SENDS),
        ("server", _SERVER_SENDS, _CLIENT_SENDS),
    ):
        for direction, types in ((Direction.SEND, sends), (Direction.RECEIVE, receives)):
            for pdu_type in types:
                for variant in _VARIANTS:
                    if (
                        direction is Direction.RECEIVE
                        and variant.action is FaultAction.TRUNCATE
                        and variant.keep != 3
                    ):
                        continue  # on receipt, truncation has no length parameter
                    # The second P-DATA-TF is the one hit (the first C-ECHO got through).
                    occurrence = 2 if pdu_type is PDUType.P_DATA_TF else 1
                    fault = Fault(
                        variant.action,
                        direction=direction,
                        pdu_type=pdu_type,
                        occurrence=occurrence,
                        seconds=variant.seconds,
                        keep=variant.keep,
                        offset=variant.offset,
                    )
                    out.append(Scenario(side, fault))
    return out


SCENARIOS = _scenarios()


@dataclass
class Outcome:
    scenario: Scenario
    error: BaseException | None
    client_seconds: float
    server_seconds: float
    leftover_tasks: int
    fired: bool


async def _run(scenario: Scenario, directory: Path) -> Outcome:
    server_faults: list[FaultInjector] = []

    def factory() -> FaultInjector | None:
        if scenario.side != "server":
            return None
        injector = FaultInjector(scenario.fault)
        server_faults.append(injector)
        return injector

    transport = TransportConfig(timeouts=TIMEOUTS)
    app = ServeApp(ServeConfig(directory=directory, port=0, transport=transport), faults=factory)
    await app.server.start()
    client_faults = FaultInjector(scenario.fault) if scenario.side == "client" else None
    options = ClientOptions(called_ae="NETDICOM", transport=transport)
    started = time.monotonic()
    error: BaseException | None = None
    try:
        assoc = await open_association(
            Peer("127.0.0.1", app.server.port), options, ECHO_CONTEXTS, faults=client_faults
        )
        try:
            replies = await echo(assoc, 2, T)
            assert [r.status for r in replies] == [0, 0]
            await assoc.release()
        except BaseException:
            assoc.abort()
            raise
        await assoc.wait_closed()
    except Exception as exc:
        error = exc
    client_seconds = time.monotonic() - started
    # Serve must be done with the association on its own, without being closed.
    deadline = time.monotonic() + SERVER_BOUND
    while (app.server.tasks or app.server.associations) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    server_seconds = time.monotonic() - started
    leftover = len(app.server.tasks) + len(app.server.associations)
    await app.server.close()
    injector = client_faults or (server_faults[0] if server_faults else None)
    return Outcome(
        scenario,
        error,
        client_seconds,
        server_seconds,
        leftover,
        bool(injector and injector.fired),
    )


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_every_fault_ends_cleanly_on_both_sides(tmp_path: Path) -> None:
    handler = _Errors()
    logging.getLogger("netdicom").addHandler(handler)
    asyncio_errors: list[dict[str, object]] = []

    async def main() -> tuple[list[Outcome], int, int]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: asyncio_errors.append(context))
        baseline = len(asyncio.all_tasks())
        outcomes = await asyncio.gather(*(_run(s, tmp_path) for s in SCENARIOS))
        await asyncio.sleep(0.1)
        return list(outcomes), baseline, len(asyncio.all_tasks())

    try:
        outcomes, baseline, after = asyncio.run(main())
    finally:
        logging.getLogger("netdicom").removeHandler(handler)

    problems: list[str] = []
    for o in outcomes:
        name = o.scenario.name
        if not o.fired:
            problems.append(f"{name}: the fault never fired")
        if o.error is not None and not isinstance(o.error, CLEAN_ERRORS):
            problems.append(f"{name}: unclean client error {o.error!r}")
        if o.scenario.fault.action is FaultAction.DELAY and o.error is not None:
            problems.append(f"{name}: a short delay must not fail: {o.error!r}")
        if o.client_seconds > CLIENT_BOUND:
            problems.append(f"{name}: client took {o.client_seconds:.2f} s")
        if o.leftover_tasks:
            problems.append(f"{name}: serve still held {o.leftover_tasks} tasks/associations")
        if o.server_seconds > CLIENT_BOUND + SERVER_BOUND:
            problems.append(f"{name}: serve took {o.server_seconds:.2f} s")
    assert not problems, "\n".join(problems)
    assert after == baseline, f"{after - baseline} tasks leaked"
    assert not handler.records, [r.getMessage() for r in handler.records]
    assert not asyncio_errors, asyncio_errors
    # The faults were not all harmless: most scenarios end in an error, as they should.
    failed = sum(1 for o in outcomes if o.error is not None)
    assert failed > len(outcomes) // 2, failed
