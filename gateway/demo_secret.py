"""The demo's JWT secret: made once per data directory and kept there, readable by its owner alone.

Keeping it means a token minted for the demo (by the demo itself, or by `live-gateway token` with the
secret it prints) stays good across restarts of the same data directory.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from gateway.settings import MIN_JWT_SECRET_BYTES, ConfigurationError

#: the file under the data directory that holds the secret
SECRET_FILE = "jwt-secret"
#: random bytes in a new secret
SECRET_BYTES = 48


def demo_jwt_secret(data_dir: Path) -> str:
    """The secret kept in `data_dir`, made (mode 0600) when there is none yet."""
    path = data_dir / SECRET_FILE
    try:
        secret = _kept_secret(data_dir, path)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot keep the demo's JWT secret in {path} (LIVE_GATEWAY_DATA_DIR={data_dir}): {exc.strerror}"
        ) from None
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise ConfigurationError(
            f"{path} holds a JWT secret shorter than {MIN_JWT_SECRET_BYTES} bytes: "
            "delete it and the demo makes a new one"
        )
    return secret


def _kept_secret(data_dir: Path, path: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole under another name, then linked into place: of two demos starting on one
        # directory, the second finds the first one's secret, never a half-written file.
        draft = data_dir / f".{SECRET_FILE}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(SECRET_BYTES) + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    # A copy made readable by others (by hand, or by an archive tool) is made private again.
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
    return path.read_text().strip()
