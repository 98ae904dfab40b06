"""A loopback stand-in for Kaggle's API, for the real kaggle client (kagglesdk).

KAGGLE_API_ENVIRONMENT=TEST makes kagglesdk call http://localhost:7777 (kagglesdk/kaggle_env.py),
a port nobody can choose: it is the one stand-in that cannot bind port 0. So one stand-in at a
time holds it on this machine, whoever runs it (another pytest-xdist worker, another checkout's
suite): `kaggle_port()` is an exclusive lock on a file named for the port, taken before binding
and by any test that needs the port silent; tests/conftest.py sends every test that takes it to
one xdist worker, so the others never wait for it.

Shaped from kagglesdk's DatasetApiClient: DownloadDataset answered with a redirect to the
archive, as Kaggle does, GetDataset and ListDatasetFiles (below).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.standins import LoopbackServer, StandInHandler

PORT = 7777  # fixed by the kaggle client's TEST environment
USERNAME, KEY = "pacer-tester", "s3cret-kaggle-key-0123456789"
TOKEN = "KGAT_made-up-access-token-9876543210"
"""An API token: kagglesdk sends it as `Authorization: Bearer …` (kaggle_http_client.BearerAuth);
a legacy key goes as HTTP Basic username:key."""
DOWNLOAD_RPC = "/api/v1/datasets.DatasetApiService/DownloadDataset"
GET_RPC = "/api/v1/datasets.DatasetApiService/GetDataset"
"""kagglesdk's DatasetApiClient.get_dataset: ApiGetDatasetRequest {ownerSlug, datasetSlug} in,
an ApiDataset (kagglesdk/datasets/types/dataset_api_service.py, its camelCase fields) out."""
LIST_RPC = "/api/v1/datasets.DatasetApiService/ListDatasetFiles"
"""kagglesdk's DatasetApiClient.list_dataset_files: ApiListDatasetFilesRequest {ownerSlug,
datasetSlug, pageToken, pageSize} in, ApiListDatasetFilesResponse {datasetFiles: [ApiDatasetFile
{ref, name, creationDate, totalBytes, …}], nextPageToken} out, one page at a time (both in
kagglesdk/datasets/types/dataset_api_service.py)."""
BIND_WAIT_S = 30
"""How long to wait for a port a stand-in just closed (a slow shutdown elsewhere)."""


@contextlib.contextmanager
def kaggle_port() -> Iterator[None]:
    """Holds localhost:7777 for the block: the machine's one Kaggle stand-in, or its silence."""
    with open(Path(tempfile.gettempdir()) / f"pacerid-kaggle-{PORT}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class KaggleStandIn(LoopbackServer):
    """Answers DownloadDataset with a redirect to a zip, as Kaggle does, and GetDataset with the
    dataset's ApiDataset; checks the key (401 when refused) and the dataset (404 when unknown).
    Tests set `archive` and read `requests`. Bind it only inside `kaggle_port()`."""

    allow_reuse_address = True

    def __init__(self) -> None:
        deadline = time.monotonic() + BIND_WAIT_S
        while True:
            try:
                super().__init__(KaggleHandler, PORT)
                break
            except OSError as err:
                if err.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.archive = b""
        self.requests: list[dict[str, object]] = []
        self.files: list[tuple[str, int]] = []
        """What ListDatasetFiles lists: (path in the dataset, bytes)."""
        self.page_size = 2
        """Files a page: small, so a test's few files take several pages."""


class KaggleHandler(StandInHandler):
    server: KaggleStandIn

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
        self.server.requests.append({"path": self.path, "auth": self.headers["Authorization"]})
        accepted = {
            "Basic " + base64.b64encode(f"{USERNAME}:{KEY}".encode()).decode(),
            f"Bearer {TOKEN}",
        }
        if self.path not in (DOWNLOAD_RPC, GET_RPC, LIST_RPC):
            self.reply(404, b'{"code": 404, "message": "no such RPC"}', "application/json")
        elif self.headers["Authorization"] not in accepted:
            self.reply(401, b'{"code": 401, "message": "Unauthenticated"}', "application/json")
        elif body.get("datasetSlug") != "pacemakers":
            self.reply(404, b'{"code": 404, "message": "Not found"}', "application/json")
        elif self.path == GET_RPC:
            found = {"id": 1, "ref": f"{body.get('ownerSlug')}/pacemakers", "title": "Pacemakers"}
            self.reply(200, json.dumps(found).encode(), "application/json")
        elif self.path == LIST_RPC:
            self.reply(200, json.dumps(self._page(body)).encode(), "application/json")
        else:
            self.reply(302, headers={"Location": "/files/pacemakers.zip"})

    def _page(self, body: dict[str, object]) -> dict[str, object]:
        """One page of the files, from the page token (here: the offset) on."""
        start = int(str(body.get("pageToken") or 0))
        size = self.server.page_size
        page = self.server.files[start : start + size]
        answer: dict[str, object] = {
            "datasetFiles": [
                {
                    "ref": f"{body.get('ownerSlug')}/pacemakers/{name}",
                    "name": name,
                    "creationDate": "2024-03-01T12:00:00Z",
                    "totalBytes": total,
                }
                for name, total in page
            ]
        }
        if start + size < len(self.server.files):
            answer["nextPageToken"] = str(start + size)
        return answer

    def do_GET(self) -> None:
        if self.path == "/files/pacemakers.zip":
            self.reply(200, self.server.archive, "application/zip")
        else:
            self.reply(404, b"", "text/plain")
