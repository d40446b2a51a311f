"""The outcome of importing dialogs."""

from __future__ import annotations

import uuid

import strawberry

from llm_gateway.schema.scalars import SafeInt
from llm_gateway.services.chat.transfer.importing import ImportReport


@strawberry.type
class ImportDialogsResult:
    dialogs_imported: SafeInt
    messages_imported: SafeInt
    dialog_ids: list[uuid.UUID] = strawberry.field(
        description="The new dialogs, in the order of the payload."
    )
    errors: list[str] = strawberry.field(
        description=(
            "One line per problem, naming the dialog by its index in data.dialogs: "
            "'dialogs[i] skipped: …' was not imported; "
            "'dialogs[i] imported with a change: …' was, as described."
        )
    )

    @staticmethod
    def from_report(report: ImportReport) -> ImportDialogsResult:
        return ImportDialogsResult(
            dialogs_imported=len(report.dialog_ids),
            messages_imported=report.messages_imported,
            dialog_ids=list(report.dialog_ids),
            errors=list(report.errors),
        )
