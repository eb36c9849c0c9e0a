"""Livepush's data for the one account the simulator serves."""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import SimError
from .models import Destination, LivepushStream, Recording

# Fixed, so that seeded streams (which list these) come out the same on every run.
DESTINATIONS_CONNECTED_AT = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


def default_destinations() -> list[Destination]:
    """The account's connected destinations: one pinned YouTube channel and one Facebook page."""
    at = DESTINATIONS_CONNECTED_AT
    return [
        Destination("pb_youtube0001", "live2", "YouTube: Loop Health", "rtmp://a.rtmp.youtube.com", at, True),
        Destination("pb_facebook001", "rtmp", "Facebook: Loop Health", "rtmps://live-api-s.facebook.com", at),
    ]


class LivepushStore:
    def __init__(self) -> None:
        self.streams: dict[str, LivepushStream] = {}
        self.destinations: list[Destination] = default_destinations()
        self.recordings: list[Recording] = []

    def stream(self, stream_id: str) -> LivepushStream:
        stream = self.streams.get(stream_id)
        if stream is None:
            raise SimError(404, "NOT_FOUND", "Stream not found")
        return stream

    def delete(self, stream: LivepushStream) -> None:
        """Gone for good, with its recordings."""
        del self.streams[stream.id]
        self.recordings = [r for r in self.recordings if r.stream_id != stream.id]
