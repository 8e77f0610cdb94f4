"""`-v`: the negotiation as a table (proposed vs accepted contexts, max PDU, peer identity)."""

from __future__ import annotations

from netdicom.core.printable import printable
from netdicom.transport.association import Association


def print_negotiation(assoc: Association) -> None:
    from rich.console import Console
    from rich.table import Table

    from netdicom.core.acse.model import reason_text, syntax_name

    negotiated = assoc.negotiated
    rq = assoc.associate_rq
    if negotiated is None or rq is None:
        return
    console = Console(stderr=True)
    table = Table(title=f"Association with {assoc.peer}", show_lines=False)
    table.add_column("ID", justify="right")
    table.add_column("Abstract syntax")
    table.add_column("Proposed transfer syntaxes")
    table.add_column("Result")
    table.add_column("Our roles")
    rejected = {r.context_id: r for r in negotiated.rejected}
    for ctx in rq.presentation_contexts:
        accepted = negotiated.accepted.get(ctx.context_id)
        roles = ""
        if accepted is not None:
            result = f"accepted: {syntax_name(accepted.transfer_syntax)}"
            roles = "/".join(
                name
                for name, played in (("SCU", accepted.we_are_scu), ("SCP", accepted.we_are_scp))
                if played
            )
        elif ctx.context_id in rejected:
            result = reason_text(rejected[ctx.context_id].reason)
        else:
            result = "no answer"
        table.add_row(
            str(ctx.context_id),
            syntax_name(ctx.abstract_syntax),
            "\n".join(syntax_name(ts) for ts in ctx.transfer_syntaxes),
            result,
            roles,
        )
    console.print(table)
    peer_max = negotiated.max_pdu_to_peer or "no limit"
    # The implementation class UID and version name are the peer's: escaped, and printed
    # without markup, so that neither a control character nor "[...]" in them does anything.
    console.print(
        f"max PDU: we send up to {peer_max}, we receive up to {negotiated.max_pdu_from_peer or 'no limit'}; "
        f"peer implementation {printable(negotiated.peer_implementation_class_uid)} "
        f"{printable(negotiated.peer_implementation_version_name or '')}".rstrip(),
        markup=False,
    )
    proposed = assoc.associate_rq.user_information.async_ops_window if assoc.associate_rq else None
    if proposed is not None:
        # PS3.7 D.3.3.3: no answer means synchronous (one operation at a time).
        from netdicom.services.session import negotiated_window

        granted = negotiated_window(assoc)
        console.print(
            f"asynchronous operations: proposed {proposed.max_invoked} outstanding, "
            + (f"granted {granted}" if granted > 1 else "not granted (one at a time)")
        )
