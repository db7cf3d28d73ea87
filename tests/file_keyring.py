"""A tiny real keyring backend for the tests, chosen with PYTHON_KEYRING_BACKEND=file_keyring.FileKeyring:
it keeps (service, user) -> password in the JSON file named by $TEST_KEYRING_FILE."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend


class FileKeyring(KeyringBackend):
    priority = 1

    def _data(self) -> dict:
        path = Path(os.environ["TEST_KEYRING_FILE"])
        return json.loads(path.read_text()) if path.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._data().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._data()
        data[f"{service}/{username}"] = password
        Path(os.environ["TEST_KEYRING_FILE"]).write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._data()
        data.pop(f"{service}/{username}", None)
        Path(os.environ["TEST_KEYRING_FILE"]).write_text(json.dumps(data))
