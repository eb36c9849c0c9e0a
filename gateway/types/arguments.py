"""Arguments that several root fields take, each described once."""

from __future__ import annotations

from typing import Annotated

import strawberry

from gateway.types.listing import LiveEventFilter

MAX_PAGE = 100
DEFAULT_PAGE = 20
#: the dashboard's windows unless asked otherwise: starting within the hour, ended within the day
STARTING_WITHIN = 3600
ENDED_WITHIN = 86400

EventId = Annotated[
    strawberry.ID, strawberry.argument(description="The event's global id (`LiveEvent.id`, as any listing gives it).")
]
Filter = Annotated[
    LiveEventFilter | None,
    strawberry.argument(description="Which events to select; every given field must match. Null selects all."),
]
First = Annotated[
    int | None,
    strawberry.argument(
        description=f"Page size from the start (or from `after`): 0 to {MAX_PAGE}. "
        f"With neither `first` nor `last`, a page holds {DEFAULT_PAGE}. Not together with `last`."
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(description="Start after this cursor (an edge's `cursor` or `pageInfo.endCursor`)."),
]
Last = Annotated[
    int | None,
    strawberry.argument(description=f"Page size from the end (or from `before`): 0 to {MAX_PAGE}. Not with `first`."),
]
Before = Annotated[
    str | None,
    strawberry.argument(description="End before this cursor (an edge's `cursor` or `pageInfo.startCursor`)."),
]
StartingWithin = Annotated[
    int,
    strawberry.argument(description="`startingSoon` counts events scheduled to start within this many seconds."),
]
EndedWithin = Annotated[
    int,
    strawberry.argument(description="`endedWith(out)Recording` count events that ended within this many seconds."),
]
